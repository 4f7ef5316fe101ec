"""The billing audit against moto: it finds a planted leftover of every kind, ignores other clusters'
resources, and passes on a clean account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aws_testkit import REGION

from gpu_inference.domain import versions
from gpu_inference.services.eks.audit import KINDS, audit, belongs_to

pytestmark = pytest.mark.unit

CLUSTER = "gpu-inference"
OTHER = "someone-elses-cluster"


def tagspec(resource: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": resource, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def lb_controller_owned(owner: str, suffix: str) -> dict[str, Any]:
    """The name and tag the AWS Load Balancer Controller gives a load balancer or target group it creates
    for cluster `owner`."""
    return {"Name": f"k8s-{owner[:10]}-{suffix}", "Tags": [{"Key": "elbv2.k8s.aws/cluster", "Value": owner}]}


class Account:
    """Plants resources the way eksctl, EKS and the controllers tag them."""

    def __init__(self, clients: Any) -> None:
        self.c = clients
        ec2 = clients.client("ec2")
        # infrastructure that belongs to nobody in particular (untagged)
        self.vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [
            ec2.create_subnet(
                VpcId=self.vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}"
            )["Subnet"]["SubnetId"]
            for i, az in enumerate("ab")
        ]

    def tags(self, owner: str) -> dict[str, str]:
        return {versions.CLUSTER_TAG: owner, "alpha.eksctl.io/cluster-name": owner}

    def eks_cluster(self, owner: str) -> None:
        self.c.client("eks").create_cluster(
            name=owner,
            version="1.36",
            roleArn="arn:aws:iam::123456789012:role/eks",
            resourcesVpcConfig={"subnetIds": self.subnets},
        )

    def cloudformation_stack(self, owner: str) -> None:
        template = '{"Resources": {"H": {"Type": "AWS::SNS::Topic"}}}'
        self.c.client("cloudformation").create_stack(
            StackName=f"eksctl-{owner}-cluster", TemplateBody=template
        )

    def autoscaling_group(self, owner: str) -> None:
        asg = self.c.client("autoscaling")
        asg.create_launch_configuration(
            LaunchConfigurationName=f"lc-{owner}", ImageId="ami-12c6146b", InstanceType="t3.micro"
        )
        asg.create_auto_scaling_group(
            AutoScalingGroupName=f"eks-gpu-{owner}",
            LaunchConfigurationName=f"lc-{owner}",
            MinSize=0,
            MaxSize=4,
            DesiredCapacity=0,
            VPCZoneIdentifier=self.subnets[0],
            Tags=[
                {"Key": "eks:cluster-name", "Value": owner, "PropagateAtLaunch": False},
                {"Key": f"k8s.io/cluster-autoscaler/{owner}", "Value": "owned", "PropagateAtLaunch": False},
            ],
        )

    def ec2_instance(self, owner: str) -> None:
        self.c.client("ec2").run_instances(
            ImageId="ami-12c6146b",
            MinCount=1,
            MaxCount=1,
            InstanceType="g4dn.xlarge",
            SubnetId=self.subnets[0],
            TagSpecifications=tagspec("instance", {"eks:cluster-name": owner}),
        )

    def load_balancer(self, owner: str) -> None:
        self.c.client("elbv2").create_load_balancer(
            Subnets=self.subnets, Type="network", **lb_controller_owned(owner, "web")
        )

    def classic_load_balancer(self, owner: str) -> None:
        self.c.client("elb").create_load_balancer(
            LoadBalancerName=f"a{abs(hash(owner)) % 10**8}",
            Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}],
            AvailabilityZones=[f"{REGION}a"],
            Tags=[{"Key": f"kubernetes.io/cluster/{owner}", "Value": "owned"}],
        )

    def target_group(self, owner: str) -> None:
        self.c.client("elbv2").create_target_group(
            Protocol="TCP", Port=80, VpcId=self.vpc_id, TargetType="ip", **lb_controller_owned(owner, "tg")
        )

    def ebs_volume(self, owner: str) -> None:
        self.c.client("ec2").create_volume(
            AvailabilityZone=f"{REGION}a",
            Size=20,
            VolumeType="gp3",
            TagSpecifications=tagspec(
                "volume",
                {versions.CLUSTER_TAG: owner, "kubernetes.io/created-for/pvc/name": "data-prometheus-0"},
            ),
        )

    def network_interface(self, owner: str) -> None:
        self.c.client("ec2").create_network_interface(
            SubnetId=self.subnets[0],
            TagSpecifications=tagspec("network-interface", {"cluster.k8s.amazonaws.com/name": owner}),
        )

    def security_group(self, owner: str) -> None:
        self.c.client("ec2").create_security_group(
            GroupName=f"k8s-elb-{owner}",
            Description="lb",
            VpcId=self.vpc_id,
            TagSpecifications=tagspec("security-group", {f"kubernetes.io/cluster/{owner}": "owned"}),
        )

    def nat_gateway(self, owner: str) -> None:
        ec2 = self.c.client("ec2")
        alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
        ec2.create_nat_gateway(
            SubnetId=self.subnets[0],
            AllocationId=alloc,
            TagSpecifications=tagspec("natgateway", self.tags(owner)),
        )

    def elastic_ip(self, owner: str) -> None:
        self.c.client("ec2").allocate_address(
            Domain="vpc", TagSpecifications=tagspec("elastic-ip", self.tags(owner))
        )

    def vpc_endpoint(self, owner: str) -> None:
        self.c.client("ec2").create_vpc_endpoint(
            VpcId=self.vpc_id,
            ServiceName=f"com.amazonaws.{REGION}.ecr.dkr",
            VpcEndpointType="Interface",
            SubnetIds=self.subnets,
            TagSpecifications=tagspec("vpc-endpoint", self.tags(owner)),
        )

    def efs_file_system(self, owner: str) -> None:
        self.c.client("efs").create_file_system(
            CreationToken=f"models-{owner}", Tags=[{"Key": versions.CLUSTER_TAG, "Value": owner}]
        )

    def log_group(self, owner: str) -> None:
        # EKS control-plane logging writes here; the group outlives the cluster (and bills storage)
        self.c.client("logs").create_log_group(logGroupName=f"/aws/eks/{owner}/cluster")

    def kms_key(self, owner: str) -> None:
        self.c.client("kms").create_key(
            Description="secrets encryption", Tags=[{"TagKey": versions.CLUSTER_TAG, "TagValue": owner}]
        )

    def vpc(self, owner: str) -> None:
        self.c.client("ec2").create_vpc(
            CidrBlock="10.9.0.0/16", TagSpecifications=tagspec("vpc", self.tags(owner))
        )

    def tagged_resource(self, owner: str) -> None:
        # nothing above lists SNS topics: only the tagging-API sweep can find this one
        self.c.client("sns").create_topic(
            Name=f"alerts-{owner}", Tags=[{"Key": versions.CLUSTER_TAG, "Value": owner}]
        )

    def plant(self, kind: str, owner: str) -> None:
        plant: Callable[[str], None] = getattr(self, kind.replace("-", "_"))
        plant(owner)


def test_clean_account_passes(clients: Any) -> None:
    Account(clients)
    report = audit(clients, CLUSTER)
    assert report.clean, report.summary()
    assert report.checked == KINDS
    assert "nothing billable left" in report.summary()


@pytest.mark.parametrize("kind", KINDS)
def test_finds_a_planted_leftover_of_each_kind(clients: Any, kind: str) -> None:
    acct = Account(clients)
    acct.plant(kind, OTHER)  # negative control: another cluster's resource in the same account
    assert audit(clients, CLUSTER).clean, "another cluster's resources must not count"
    acct.plant(kind, CLUSTER)
    report = audit(clients, CLUSTER)
    assert not report.clean
    assert kind in {item.kind for item in report.leftovers}, report.summary()
    found = report.by_kind()[kind]
    assert all(item.delete_hint for item in found), "every leftover says how to delete it"
    assert f"still tagged for cluster {CLUSTER}" in report.summary()


def test_a_deleted_leftover_no_longer_counts(clients: Any) -> None:
    acct = Account(clients)
    acct.load_balancer(CLUSTER)
    report = audit(clients, CLUSTER)
    (lb,) = report.by_kind()["load-balancer"]
    clients.client("elbv2").delete_load_balancer(LoadBalancerArn=lb.id)
    assert audit(clients, CLUSTER).clean


def test_enis_in_the_clusters_vpc_count_even_untagged(clients: Any) -> None:
    ec2 = clients.client("ec2")
    vpc = ec2.create_vpc(
        CidrBlock="10.1.0.0/16", TagSpecifications=tagspec("vpc", {versions.CLUSTER_TAG: CLUSTER})
    )
    subnet = ec2.create_subnet(VpcId=vpc["Vpc"]["VpcId"], CidrBlock="10.1.0.0/24")["Subnet"]["SubnetId"]
    ec2.create_network_interface(SubnetId=subnet, Description="ELB app/k8s-leftover")
    report = audit(clients, CLUSTER)
    assert [i.kind for i in report.leftovers] == ["network-interface", "vpc"]


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({versions.CLUSTER_TAG: CLUSTER}, True),
        ({f"kubernetes.io/cluster/{CLUSTER}": "shared"}, True),
        ({"elbv2.k8s.aws/cluster": CLUSTER}, True),
        ({"aws:eks:cluster-name": CLUSTER}, True),
        ({"cluster.k8s.amazonaws.com/name": CLUSTER}, True),
        ({f"k8s.io/cluster-autoscaler/{CLUSTER}": "owned"}, True),
        ({versions.CLUSTER_TAG: OTHER, f"kubernetes.io/cluster/{OTHER}": "owned"}, False),
        ({f"kubernetes.io/cluster/{CLUSTER}-2": "owned"}, False),
        ({}, False),
    ],
)
def test_belongs_to(tags: dict[str, str], expected: bool) -> None:
    assert belongs_to(tags, CLUSTER) is expected


def test_every_summary_names_the_account_it_searched(clients: Any) -> None:
    """A clean audit of the wrong account proves nothing: the summary says which account it was."""
    acct = Account(clients)
    assert audit(clients, CLUSTER).account == "123456789012"  # moto's default account
    assert "account 123456789012" in audit(clients, CLUSTER).summary()
    acct.elastic_ip(CLUSTER)
    assert "in us-east-1, account 123456789012:" in audit(clients, CLUSTER).summary()


def test_the_sweep_does_not_report_twice_what_a_kind_found(clients: Any) -> None:
    acct = Account(clients)
    acct.efs_file_system(CLUSTER)
    acct.kms_key(CLUSTER)
    report = audit(clients, CLUSTER)
    assert sorted(i.kind for i in report.leftovers) == ["efs-file-system", "kms-key"], report.summary()
