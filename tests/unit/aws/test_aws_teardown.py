"""Ordered teardown: load balancers and volumes go while their controllers still run, the cluster goes
last, the audit decides; a failure in the middle stops before anything is orphaned, and a re-run
finishes the job. AWS is moto; kubectl is a fake cluster; eksctl is a recording runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_testkit import REGION, FakeHelm, FakeKube, Recorder, two_subnets

from gpu_inference.adapters.eksctl import Eksctl
from gpu_inference.adapters.kubectl import Kubectl
from gpu_inference.domain import versions
from gpu_inference.errors import WaitTimeoutError
from gpu_inference.services.eks.progress import LogReporter
from gpu_inference.services.eks.teardown import STEPS, Destroyer, DestroyOptions

pytestmark = pytest.mark.unit

CLUSTER = "gpu-inference"


class World:
    """An EKS cluster in moto with a tagged NLB behind a LoadBalancer Service and an EBS volume behind
    a PVC; the fake cluster's 'controllers' delete them when their Kubernetes objects go."""

    def __init__(self, clients: Any, tmp_path: Path) -> None:
        self.clients = clients
        self.events: list[str] = []
        self.kube = FakeKube(self.events)
        self.helm = FakeHelm(self.events)
        self.eksctl_runner = Recorder()
        self.lb_controller_works = True
        ec2 = clients.client("ec2")
        self.subnets = two_subnets(ec2)
        clients.client("eks").create_cluster(
            name=CLUSTER, version="1.36", roleArn="arn:aws:iam::123456789012:role/eks",
            resourcesVpcConfig={"subnetIds": self.subnets},
        )  # fmt: skip
        clients.client("cloudformation").create_stack(
            StackName=f"eksctl-{CLUSTER}-cluster",
            TemplateBody='{"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}',
        )
        self.lb_arn = clients.client("elbv2").create_load_balancer(
            Name="k8s-gpuinfer-web", Subnets=self.subnets, Type="network",
            Tags=[{"Key": "elbv2.k8s.aws/cluster", "Value": CLUSTER}],
        )["LoadBalancers"][0]["LoadBalancerArn"]  # fmt: skip
        self.volume = ec2.create_volume(
            AvailabilityZone=f"{REGION}a", Size=20, TagSpecifications=[{"ResourceType": "volume", "Tags": [
                {"Key": versions.CLUSTER_TAG, "Value": CLUSTER},
                {"Key": "kubernetes.io/created-for/pvc/name", "Value": "data"},
            ]}],
        )["VolumeId"]  # fmt: skip
        self.kube.add("service", "web", "gpu-inference", spec={"type": "LoadBalancer"})
        self.kube.add("service", "grafana", "gpu-inference", spec={"type": "ClusterIP"})
        self.kube.add("ingress", "web", "gpu-inference")
        self.kube.add("pvc", "data", "gpu-inference")
        self.kube.add("pv", "pvc-1", spec={"claimRef": {"namespace": "gpu-inference", "name": "data"}})
        self.kube.on_delete["services"] = self._lb_controller
        self.kube.on_delete["persistentvolumeclaims"] = self._ebs_csi
        self.eksctl_runner.handlers.append(self._eksctl)
        self.work = tmp_path

    def _lb_controller(self, svc: dict[str, Any]) -> None:
        if svc["spec"]["type"] == "LoadBalancer" and self.lb_controller_works:
            self.clients.client("elbv2").delete_load_balancer(LoadBalancerArn=self.lb_arn)
            self.events.append("aws: load balancer deleted")

    def _ebs_csi(self, pvc: dict[str, Any]) -> None:
        self.kube.objects["persistentvolumes"] = []
        self.clients.client("ec2").delete_volume(VolumeId=self.volume)
        self.events.append("aws: volume deleted")

    def _eksctl(self, tool: str, args: list[str]) -> str | None:
        self.events.append(f"eksctl {' '.join(args[:2])}")
        if args[:2] == ["delete", "cluster"]:  # like eksctl: the cluster if any, then its stacks
            if CLUSTER in self.clients.client("eks").list_clusters()["clusters"]:
                self.clients.client("eks").delete_cluster(name=CLUSTER)
            self.clients.client("cloudformation").delete_stack(StackName=f"eksctl-{CLUSTER}-cluster")
        return ""

    def destroyer(self, **kw: Any) -> Destroyer:
        opts = DestroyOptions(
            cluster=CLUSTER,
            region=REGION,
            release="gpu-inference",
            namespace="gpu-inference",
            work_dir=self.work,
            poll_interval_s=0.01,
            lb_timeout_s=0.3,
            volume_timeout_s=0.3,
            **kw,
        )

        def helm_factory(kc: Path) -> FakeHelm:
            self.helm.kubeconfig = kc
            return self.helm

        return Destroyer(
            opts=opts,
            clients=self.clients,
            eksctl=Eksctl(self.eksctl_runner),
            helm_factory=helm_factory,
            kubectl_factory=lambda kc: Kubectl(kc, runner=self.kube),
            reporter=LogReporter(),
            sleep=lambda s: None,
        )


@pytest.fixture
def world(clients: Any, tmp_path: Path) -> World:
    return World(clients, tmp_path)


def test_full_teardown_runs_in_order_and_ends_clean(world: World) -> None:
    d = world.destroyer()
    result = d.run()
    assert result.report is not None
    assert result.report.clean, result.report.summary()
    assert world.events == [
        "eksctl utils write-kubeconfig",
        "helm uninstall gpu-inference -n gpu-inference",
        f"helm uninstall {versions.CLUSTER_AUTOSCALER_RELEASE} -n kube-system",
        "kubectl delete services gpu-inference/web",
        "aws: load balancer deleted",
        "kubectl delete ingresses gpu-inference/web",
        "kubectl delete persistentvolumeclaims gpu-inference/data",
        "aws: volume deleted",
        f"helm uninstall {versions.AWS_LB_CONTROLLER_RELEASE} -n kube-system",
        "eksctl delete cluster",
    ]
    ran = [r.name for r in d.reporter.records if not r.skipped]
    assert ran == ["kubeconfig", *[name for name, _ in STEPS]], "every step ran, in the declared order"
    assert [s for s, _ in STEPS].index("wait-load-balancers-gone") < [s for s, _ in STEPS].index(
        "helm-uninstall-aws-load-balancer-controller"
    ), "the LB controller must outlive the load balancers it deletes"
    # only LoadBalancer Services are deleted; the kubeconfig is the one eksctl wrote
    assert any(o["metadata"]["name"] == "grafana" for o in world.kube.objects["services"])
    assert all(c[:2] == ["--kubeconfig", str(world.helm.kubeconfig)] for c in world.kube.calls)
    assert world.eksctl_runner.lines()[-1] == (
        f"eksctl delete cluster --name {CLUSTER} --region {REGION} --wait --disable-nodegroup-eviction "
        "--timeout 40m"
    )


def test_load_balancer_that_does_not_go_away_stops_before_the_cluster_is_deleted(world: World) -> None:
    world.lb_controller_works = False
    with pytest.raises(WaitTimeoutError, match="load balancers tagged for the cluster") as info:
        world.destroyer().run()
    assert world.lb_arn in str(info.value)
    assert "eksctl delete cluster" not in world.events, (
        "deleting the cluster now would orphan the load balancer"
    )
    assert not any(e.startswith("kubectl delete persistentvolumeclaims") for e in world.events)

    # someone fixes it (here: the load balancer is deleted by hand); re-running finishes the job
    world.clients.client("elbv2").delete_load_balancer(LoadBalancerArn=world.lb_arn)
    world.events.clear()
    result = world.destroyer().run()
    assert result.report is not None
    assert result.report.clean
    assert world.events[-1] == "eksctl delete cluster"


def test_rerun_after_the_cluster_is_gone_only_cleans_up_and_audits(world: World) -> None:
    world.destroyer().run()
    world.events.clear()
    result = world.destroyer().run()
    assert world.events == [], "nothing left to do: no cluster, no stacks"
    assert set(result.skipped) == {name for name, _ in STEPS[:-1]}
    assert result.report is not None
    assert result.report.clean


def test_stacks_without_a_cluster_still_get_eksctl_delete(world: World) -> None:
    world.clients.client("eks").delete_cluster(name=CLUSTER)
    result = world.destroyer().run()
    assert world.events == ["eksctl delete cluster"]
    assert "helm-uninstall-chart" in result.skipped
    assert "eksctl-delete-cluster" not in result.skipped
    # the LB and volume were never cleaned by in-cluster controllers: the audit must say so
    assert result.report is not None
    assert not result.report.clean
    kinds = {i.kind for i in result.report.leftovers}
    assert {"load-balancer", "ebs-volume"} <= kinds


def test_dry_run_changes_nothing_and_shows_the_plan(world: World) -> None:
    result = world.destroyer(dry_run=True).run()
    assert world.events == []
    assert world.eksctl_runner.calls == []
    assert [line.split(":")[0] for line in result.planned][:2] == [
        "helm-uninstall-chart",
        "helm-uninstall-cluster-autoscaler",
    ]
    assert result.planned[-2].startswith("eksctl delete cluster --name gpu-inference")
    assert result.report is not None
    assert {"eks-cluster", "load-balancer", "ebs-volume"} <= {i.kind for i in result.report.leftovers}


def test_waits_for_the_load_balancer_controllers_security_groups(world: World) -> None:
    """The controller deletes its security groups after the load balancer; until they are gone the VPC
    cannot be deleted, so teardown waits for them too (and stops before the cluster if they stay)."""
    ec2 = world.clients.client("ec2")
    vpc = ec2.describe_subnets(SubnetIds=world.subnets[:1])["Subnets"][0]["VpcId"]
    sg = ec2.create_security_group(
        GroupName="k8s-traffic-gpuinference", Description="lb", VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [
            {"Key": "elbv2.k8s.aws/cluster", "Value": CLUSTER}]}],
    )["GroupId"]  # fmt: skip
    with pytest.raises(WaitTimeoutError, match="load balancers tagged for the cluster") as info:
        world.destroyer().run()
    assert sg in str(info.value)
    assert "eksctl delete cluster" not in world.events
    ec2.delete_security_group(GroupId=sg)  # what the controller does once its load balancer is gone
    world.events.clear()
    result = world.destroyer().run()
    assert result.report is not None
    assert result.report.clean, result.report.summary()


def test_unreachable_api_names_the_escape_hatch_and_skip_in_cluster_uses_it(world: World) -> None:
    """A destroy run by an identity the cluster does not know (or with the API unreachable) stops with
    the fix; --skip-in-cluster goes straight to eksctl delete and the audit lists what stays."""
    from gpu_inference.adapters import process
    from gpu_inference.errors import ToolFailedError
    from gpu_inference.services.eks.teardown import ClusterUnreachableError

    def denied(tool: str, args: Any, **kw: Any) -> process.Result:
        raise ToolFailedError(
            "kubectl", list(args), 1, "error: You must be logged in to the server (Unauthorized)"
        )

    world.kube.__class__ = type("Denied", (FakeKube,), {"__call__": lambda self, t, a, **kw: denied(t, a)})
    world.helm.uninstall = lambda *a, **kw: denied("helm", ["uninstall"])  # type: ignore[method-assign]
    with pytest.raises(ClusterUnreachableError, match="--skip-in-cluster"):
        world.destroyer().run()
    assert "eksctl delete cluster" not in world.events

    world.events.clear()
    result = world.destroyer(skip_in_cluster=True).run()
    assert world.events == ["eksctl delete cluster"]
    assert all("--skip-in-cluster" in result.skipped[name] for name, _ in STEPS[:8])
    assert result.report is not None
    assert {"load-balancer", "ebs-volume"} <= {i.kind for i in result.report.leftovers}
