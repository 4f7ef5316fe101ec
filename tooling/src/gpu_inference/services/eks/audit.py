"""Audit: is anything billable still there for a cluster?

Finds resources by the tags that eksctl, EKS, the AWS cloud provider, the AWS Load Balancer
Controller, the EBS CSI driver and the VPC CNI put on what they create, plus this project's own
`gpu-inference.io/cluster` tag, and by eksctl's stack names. Read-only: it never deletes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import botocore.exceptions
from pydantic import BaseModel, ConfigDict

from gpu_inference.adapters.aws import AwsClients, aws_call, chunks, error_code, paginate
from gpu_inference.domain import versions

log = logging.getLogger(__name__)

#: Every kind the audit looks at, in the order it reports them.
KINDS = (
    "eks-cluster",
    "cloudformation-stack",
    "autoscaling-group",
    "ec2-instance",
    "load-balancer",
    "classic-load-balancer",
    "target-group",
    "ebs-volume",
    "network-interface",
    "security-group",
    "nat-gateway",
    "elastic-ip",
)


class Leftover(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: str
    id: str
    detail: str = ""
    delete_hint: str = ""


class AuditReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    cluster: str
    region: str
    checked: tuple[str, ...]
    leftovers: tuple[Leftover, ...]

    @property
    def clean(self) -> bool:
        return not self.leftovers

    def by_kind(self) -> dict[str, list[Leftover]]:
        out: dict[str, list[Leftover]] = {k: [] for k in self.checked}
        for item in self.leftovers:
            out.setdefault(item.kind, []).append(item)
        return out

    def summary(self) -> str:
        if self.clean:
            return (
                f"audit: nothing billable left for cluster {self.cluster} in {self.region} "
                f"({len(self.checked)} kinds checked)"
            )
        lines = [
            f"audit: {len(self.leftovers)} billable resource(s) still tagged for cluster {self.cluster} "
            f"in {self.region}:"
        ]
        for item in self.leftovers:
            lines.append(f"  - {item.kind} {item.id} {item.detail}".rstrip())
            if item.delete_hint:
                lines.append(f"      delete: {item.delete_hint}")
        return "\n".join(lines)


def describe_cluster(clients: AwsClients, name: str) -> dict[str, Any] | None:
    """The EKS cluster description, or None if there is no such cluster."""
    eks = clients.client("eks")
    try:
        return dict(eks.describe_cluster(name=name)["cluster"])
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        with aws_call("eks:DescribeCluster"):
            raise


def belongs_to(tags: Mapping[str, str], cluster: str) -> bool:
    """True if the tags say the resource was created for `cluster`."""
    value_tags = (
        versions.CLUSTER_TAG,
        "elbv2.k8s.aws/cluster",
        "alpha.eksctl.io/cluster-name",
        "eksctl.cluster.k8s.io/v1alpha1/cluster-name",
        "eks:cluster-name",
        "aws:eks:cluster-name",
        "cluster.k8s.amazonaws.com/name",
        "KubernetesCluster",
    )
    if any(tags.get(k) == cluster for k in value_tags):
        return True
    return f"kubernetes.io/cluster/{cluster}" in tags or f"k8s.io/cluster-autoscaler/{cluster}" in tags


def _tags(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in items or []}


class Auditor:
    """Runs every check; each returns the leftovers of one kind."""

    def __init__(self, clients: AwsClients, cluster: str) -> None:
        self.clients = clients
        self.cluster = cluster
        self.region = clients.region
        self._vpcs: set[str] | None = None

    def _hint(self, cmd: str) -> str:
        return f"aws {cmd} --region {self.region}"

    # -- helpers

    def cluster_vpcs(self) -> set[str]:
        if self._vpcs is None:
            ec2 = self.clients.client("ec2")
            with aws_call("ec2:DescribeVpcs"):
                vpcs = paginate(ec2, "describe_vpcs", "Vpcs")
            self._vpcs = {v["VpcId"] for v in vpcs if belongs_to(_tags(v.get("Tags")), self.cluster)}
        return self._vpcs

    # -- checks

    def eks_cluster(self) -> list[Leftover]:
        c = describe_cluster(self.clients, self.cluster)
        if c is None:
            return []
        return [
            Leftover(
                kind="eks-cluster",
                id=self.cluster,
                detail=f"status {c.get('status')}",
                delete_hint=f"eksctl delete cluster --name {self.cluster} --region {self.region} --wait",
            )
        ]

    def cloudformation_stacks(self) -> list[Leftover]:
        cfn = self.clients.client("cloudformation")
        with aws_call("cloudformation:ListStacks"):
            stacks = paginate(cfn, "list_stacks", "StackSummaries")
        prefix = f"eksctl-{self.cluster}-"
        return [
            Leftover(
                kind="cloudformation-stack",
                id=s["StackName"],
                detail=s["StackStatus"],
                delete_hint=self._hint(f"cloudformation delete-stack --stack-name {s['StackName']}"),
            )
            for s in stacks
            if s["StackName"].startswith(prefix) and s["StackStatus"] != "DELETE_COMPLETE"
        ]

    def autoscaling_groups(self) -> list[Leftover]:
        asg = self.clients.client("autoscaling")
        with aws_call("autoscaling:DescribeAutoScalingGroups"):
            groups = paginate(asg, "describe_auto_scaling_groups", "AutoScalingGroups")
        return [
            Leftover(
                kind="autoscaling-group",
                id=g["AutoScalingGroupName"],
                detail=f"desired {g.get('DesiredCapacity')}, {len(g.get('Instances', []))} instance(s)",
                delete_hint=self._hint(
                    "autoscaling delete-auto-scaling-group --force-delete --auto-scaling-group-name "
                    f"{g['AutoScalingGroupName']}"
                ),
            )
            for g in groups
            if belongs_to(_tags(g.get("Tags")), self.cluster)
        ]

    def ec2_instances(self) -> list[Leftover]:
        ec2 = self.clients.client("ec2")
        states = ["pending", "running", "stopping", "stopped", "shutting-down"]
        with aws_call("ec2:DescribeInstances"):
            reservations = paginate(
                ec2,
                "describe_instances",
                "Reservations",
                Filters=[{"Name": "instance-state-name", "Values": states}],
            )
        return [
            Leftover(
                kind="ec2-instance",
                id=i["InstanceId"],
                detail=f"{i.get('InstanceType')} {i['State']['Name']}",
                delete_hint=self._hint(f"ec2 terminate-instances --instance-ids {i['InstanceId']}"),
            )
            for r in reservations
            for i in r.get("Instances", [])
            if belongs_to(_tags(i.get("Tags")), self.cluster)
        ]

    def _elbv2_tagged(self, arns: list[str]) -> dict[str, dict[str, str]]:
        elbv2 = self.clients.client("elbv2")
        out: dict[str, dict[str, str]] = {}
        for batch in chunks(arns, 20):
            with aws_call("elasticloadbalancing:DescribeTags"):
                descs = elbv2.describe_tags(ResourceArns=batch)["TagDescriptions"]
            for d in descs:
                out[d["ResourceArn"]] = _tags(d.get("Tags"))
        return out

    def load_balancers(self) -> list[Leftover]:
        elbv2 = self.clients.client("elbv2")
        with aws_call("elasticloadbalancing:DescribeLoadBalancers"):
            lbs = paginate(elbv2, "describe_load_balancers", "LoadBalancers")
        tags = self._elbv2_tagged([lb["LoadBalancerArn"] for lb in lbs])
        return [
            Leftover(
                kind="load-balancer",
                id=lb["LoadBalancerArn"],
                detail=f"{lb.get('Type')} {lb.get('DNSName', '')}",
                delete_hint=self._hint(
                    f"elbv2 delete-load-balancer --load-balancer-arn {lb['LoadBalancerArn']}"
                ),
            )
            for lb in lbs
            if belongs_to(tags.get(lb["LoadBalancerArn"], {}), self.cluster)
        ]

    def target_groups(self) -> list[Leftover]:
        elbv2 = self.clients.client("elbv2")
        with aws_call("elasticloadbalancing:DescribeTargetGroups"):
            tgs = paginate(elbv2, "describe_target_groups", "TargetGroups")
        tags = self._elbv2_tagged([tg["TargetGroupArn"] for tg in tgs])
        return [
            Leftover(
                kind="target-group",
                id=tg["TargetGroupArn"],
                detail=tg.get("TargetGroupName", ""),
                delete_hint=self._hint(
                    f"elbv2 delete-target-group --target-group-arn {tg['TargetGroupArn']}"
                ),
            )
            for tg in tgs
            if belongs_to(tags.get(tg["TargetGroupArn"], {}), self.cluster)
        ]

    def classic_load_balancers(self) -> list[Leftover]:
        elb = self.clients.client("elb")
        with aws_call("elasticloadbalancing:DescribeLoadBalancers"):
            lbs = paginate(elb, "describe_load_balancers", "LoadBalancerDescriptions")
        names = [lb["LoadBalancerName"] for lb in lbs]
        tags: dict[str, dict[str, str]] = {}
        for batch in chunks(names, 20):
            with aws_call("elasticloadbalancing:DescribeTags"):
                for d in elb.describe_tags(LoadBalancerNames=batch)["TagDescriptions"]:
                    tags[d["LoadBalancerName"]] = _tags(d.get("Tags"))
        return [
            Leftover(
                kind="classic-load-balancer",
                id=name,
                delete_hint=self._hint(f"elb delete-load-balancer --load-balancer-name {name}"),
            )
            for name in names
            if belongs_to(tags.get(name, {}), self.cluster)
        ]

    def ebs_volumes(self) -> list[Leftover]:
        ec2 = self.clients.client("ec2")
        with aws_call("ec2:DescribeVolumes"):
            vols = paginate(ec2, "describe_volumes", "Volumes")
        return [
            Leftover(
                kind="ebs-volume",
                id=v["VolumeId"],
                detail=f"{v.get('Size')} GiB {v.get('VolumeType')} {v.get('State')}",
                delete_hint=self._hint(f"ec2 delete-volume --volume-id {v['VolumeId']}"),
            )
            for v in vols
            if belongs_to(_tags(v.get("Tags")), self.cluster)
        ]

    def network_interfaces(self) -> list[Leftover]:
        ec2 = self.clients.client("ec2")
        with aws_call("ec2:DescribeNetworkInterfaces"):
            enis = paginate(ec2, "describe_network_interfaces", "NetworkInterfaces")
        vpcs = self.cluster_vpcs()
        eks_desc = f"Amazon EKS {self.cluster}"
        return [
            Leftover(
                kind="network-interface",
                id=n["NetworkInterfaceId"],
                detail=f"{n.get('Status')} {n.get('Description', '')}".strip(),
                delete_hint=self._hint(
                    f"ec2 delete-network-interface --network-interface-id {n['NetworkInterfaceId']}"
                ),
            )
            for n in enis
            if belongs_to(_tags(n.get("TagSet")), self.cluster)
            or n.get("VpcId") in vpcs
            or str(n.get("Description", "")).startswith(eks_desc)
        ]

    def security_groups(self) -> list[Leftover]:
        ec2 = self.clients.client("ec2")
        with aws_call("ec2:DescribeSecurityGroups"):
            groups = paginate(ec2, "describe_security_groups", "SecurityGroups")
        return [
            Leftover(
                kind="security-group",
                id=g["GroupId"],
                detail=g.get("GroupName", ""),
                delete_hint=self._hint(f"ec2 delete-security-group --group-id {g['GroupId']}"),
            )
            for g in groups
            if g.get("GroupName") != "default" and belongs_to(_tags(g.get("Tags")), self.cluster)
        ]

    def nat_gateways(self) -> list[Leftover]:
        ec2 = self.clients.client("ec2")
        with aws_call("ec2:DescribeNatGateways"):
            nats = paginate(ec2, "describe_nat_gateways", "NatGateways")
        vpcs = self.cluster_vpcs()
        return [
            Leftover(
                kind="nat-gateway",
                id=n["NatGatewayId"],
                detail=str(n.get("State")),
                delete_hint=self._hint(f"ec2 delete-nat-gateway --nat-gateway-id {n['NatGatewayId']}"),
            )
            for n in nats
            if n.get("State") not in ("deleted", "failed")
            and (belongs_to(_tags(n.get("Tags")), self.cluster) or n.get("VpcId") in vpcs)
        ]

    def elastic_ips(self) -> list[Leftover]:
        ec2 = self.clients.client("ec2")
        with aws_call("ec2:DescribeAddresses"):
            addrs = ec2.describe_addresses().get("Addresses", [])
        return [
            Leftover(
                kind="elastic-ip",
                id=a.get("AllocationId") or a.get("PublicIp", "?"),
                detail=str(a.get("PublicIp", "")),
                delete_hint=self._hint(f"ec2 release-address --allocation-id {a.get('AllocationId')}"),
            )
            for a in addrs
            if belongs_to(_tags(a.get("Tags")), self.cluster)
        ]

    def checks(self) -> dict[str, Callable[[], list[Leftover]]]:
        return {
            "eks-cluster": self.eks_cluster,
            "cloudformation-stack": self.cloudformation_stacks,
            "autoscaling-group": self.autoscaling_groups,
            "ec2-instance": self.ec2_instances,
            "load-balancer": self.load_balancers,
            "classic-load-balancer": self.classic_load_balancers,
            "target-group": self.target_groups,
            "ebs-volume": self.ebs_volumes,
            "network-interface": self.network_interfaces,
            "security-group": self.security_groups,
            "nat-gateway": self.nat_gateways,
            "elastic-ip": self.elastic_ips,
        }


def audit(clients: AwsClients, cluster: str, kinds: Iterable[str] = KINDS) -> AuditReport:
    """Check every kind; an AWS error in any check propagates (an audit that could not look is not clean)."""
    auditor = Auditor(clients, cluster)
    checks = auditor.checks()
    wanted = list(kinds)
    leftovers: list[Leftover] = []
    for kind in wanted:
        found = checks[kind]()
        log.debug("audit %s: %d", kind, len(found))
        leftovers.extend(found)
    return AuditReport(
        cluster=cluster, region=clients.region, checked=tuple(wanted), leftovers=tuple(leftovers)
    )
