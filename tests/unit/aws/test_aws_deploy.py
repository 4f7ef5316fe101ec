"""`gpu-inference deploy`: preflight stops before anything is created, a new cluster is created with the
right eksctl command line, an existing one is reused, the add-ons and the chart go in through the helm
adapter, and deploy waits for a real number on the HPA. AWS is moto (Service Quotas and
DescribeClusterVersions, which moto lacks, via botocore's Stubber); kubectl is a fake cluster."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from aws_testkit import CLUSTER_YAML, REGION, TODAY, FakeBin, FakeHelm, FakeKube, Recorder, two_subnets
from botocore.stub import Stubber

from gpu_inference.adapters.aws import AwsClients
from gpu_inference.adapters.eksctl import Eksctl
from gpu_inference.adapters.kubectl import Kubectl
from gpu_inference.domain import versions
from gpu_inference.errors import PreflightError, WaitTimeoutError
from gpu_inference.services.eks.deploy import (
    CUSTOM_METRICS_PATH,
    Deployer,
    DeployFailedError,
    DeployOptions,
    hpa_current_values,
)
from gpu_inference.services.eks.progress import LogReporter

pytestmark = pytest.mark.unit

GPU_POD = {
    "nodeSelector": {"gpu-inference.io/node-pool": "gpu"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "containers": [{"name": "server", "image": "vllm", "resources": {"limits": {"nvidia.com/gpu": 1}}}],
}
PLUGIN_POD = {
    "nodeSelector": {"gpu-inference.io/node-pool": "gpu"},
    "tolerations": [{"operator": "Exists"}],
    "containers": [{"name": "nvidia-device-plugin", "image": "nvcr.io/nvidia/k8s-device-plugin:v0.17.4"}],
}


def chart_objects(max_replicas: int = 4, ingress: bool = True) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = [
        {"kind": "Deployment", "metadata": {"name": "inference"}, "spec": {"template": {"spec": GPU_POD}}},
        {
            "kind": "DaemonSet",
            "metadata": {"name": "device-plugin"},
            "spec": {"template": {"spec": PLUGIN_POD}},
        },
        {
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "inference"},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "inference"},
                "minReplicas": 1,
                "maxReplicas": max_replicas,
            },
        },
    ]
    if ingress:
        objs.append({"kind": "Ingress", "metadata": {"name": "inference"}, "spec": {}})
    return objs


HPA_READY = {
    "metadata": {
        "name": "inference",
        "namespace": "gpu-inference",
        "labels": {"app.kubernetes.io/instance": "gpu-inference"},
    },
    "status": {
        "currentMetrics": [
            {
                "type": "Pods",
                "pods": {"metric": {"name": "gpu_utilization"}, "current": {"averageValue": "37"}},
            }
        ],
        "conditions": [{"type": "ScalingActive", "status": "True"}],
    },
}


class Setup:
    def __init__(self, boto_session: Any, tmp_path: Path) -> None:
        self.events: list[str] = []
        self.clients = AwsClients(REGION, session=boto_session)
        self.helm = FakeHelm(self.events, objects=chart_objects())
        self.kube = FakeKube(self.events)
        self.kube.raw[CUSTOM_METRICS_PATH] = json.dumps({"resources": [{"name": "pods/gpu_utilization"}]})
        self.kube.add(
            "hpa", "inference", "gpu-inference", **{k: v for k, v in HPA_READY.items() if k != "metadata"}
        )
        self.kube.objects["horizontalpodautoscalers"][0]["metadata"] = HPA_READY["metadata"]
        self.kube.add(
            "service", "inference", "gpu-inference", spec={"type": "LoadBalancer", "ports": [{"port": 80}]},
            status={"loadBalancer": {"ingress": [{"hostname": "k8s-web-123.elb.us-east-1.amazonaws.com"}]}},
        )  # fmt: skip
        self.kube.add_app_service("gpu-inference-grafana", "grafana", 80)
        self.eksctl = Recorder()
        self.eksctl.handlers.append(self._eksctl)
        self.chart = tmp_path / "chart"
        self.chart.mkdir()
        (self.chart / "Chart.yaml").write_text("apiVersion: v2\nname: gpu-inference\nversion: 0.1.0\n")
        self.work = tmp_path / "work"
        ec2 = self.clients.client("ec2")
        self.subnets = two_subnets(ec2)
        self.quotas = {versions.QUOTA_ON_DEMAND_G_VT: 64.0, versions.QUOTA_SPOT_G_VT: 64.0}
        self.network_quotas = {
            versions.QUOTA_VPCS: 5.0,
            versions.QUOTA_EIPS: 5.0,
            versions.QUOTA_NAT_PER_AZ: 5.0,
        }
        self.eksctl_supports = ["1.33", "1.34", "1.35", "1.36"]

    def _eksctl(self, tool: str, args: list[str]) -> str | None:
        if args == ["version"]:
            return "0.215.0"
        if args == ["version", "-o", "json"]:
            return json.dumps({"Version": "0.215.0", "EKSServerSupportedVersions": self.eksctl_supports})
        self.events.append("eksctl " + " ".join(a for a in args[:2]))
        if args[:2] == ["create", "cluster"]:
            self.create_cluster()
        return ""

    def create_cluster(self, nodegroups: tuple[str, ...] = ()) -> None:
        eks = self.clients.client("eks")
        eks.create_cluster(
            name="gpu-inference", version="1.36", roleArn="arn:aws:iam::123456789012:role/eks",
            resourcesVpcConfig={"subnetIds": self.subnets},
        )  # fmt: skip
        for ng in nodegroups:
            eks.create_nodegroup(
                clusterName="gpu-inference", nodegroupName=ng, subnets=self.subnets,
                nodeRole="arn:aws:iam::123456789012:role/node",
            )  # fmt: skip

    def stub_quotas(self, spot: bool = False) -> Stubber:
        sq = self.clients.client("service-quotas")
        stub = Stubber(sq)
        codes = [versions.QUOTA_ON_DEMAND_G_VT] + ([versions.QUOTA_SPOT_G_VT] if spot else [])
        for code in codes:
            stub.add_response(
                "get_service_quota",
                {"Quota": {"QuotaCode": code, "Value": self.quotas[code]}},
                {"ServiceCode": "ec2", "QuotaCode": code},
            )
        if "gpu-inference" not in self.clients.client("eks").list_clusters()["clusters"]:
            for (service, code, _), value in self.network_quotas.items():  # a new cluster's VPC, EIP, NAT
                stub.add_response(
                    "get_service_quota",
                    {"Quota": {"QuotaCode": code, "Value": value}},
                    {"ServiceCode": service, "QuotaCode": code},
                )
        stub.activate()
        return stub

    def deployer(self, eksctl: Eksctl | None = None, **kw: Any) -> Deployer:
        opts = DeployOptions(
            config=CLUSTER_YAML, release="gpu-inference", namespace="gpu-inference", chart=self.chart,
            work_dir=self.work, poll_interval_s=0.01, metrics_timeout_s=0.3, endpoint_timeout_s=0.2, **kw,
        )  # fmt: skip

        def helm_factory(kc: Path | None) -> FakeHelm:
            self.helm.kubeconfig = kc
            return self.helm

        return Deployer(
            opts=opts,
            clients_factory=lambda region: self.clients,
            eksctl=eksctl or Eksctl(self.eksctl),
            helm_factory=helm_factory,
            kubectl_factory=lambda kc: Kubectl(kc, runner=self.kube),
            kubectl_version=lambda: "v1.36.3",
            reporter=LogReporter(),
            sleep=lambda s: None,
            today=lambda: TODAY,
        )


@pytest.fixture
def setup(boto_session: Any, tmp_path: Path) -> Setup:
    return Setup(boto_session, tmp_path)


def test_fresh_deploy_creates_installs_and_waits_in_order(setup: Setup) -> None:
    stub = setup.stub_quotas()
    result = setup.deployer().run()
    stub.assert_no_pending_responses()
    assert setup.events == [
        "helm lint chart",
        "eksctl create cluster",
        "eksctl utils write-kubeconfig",
        f"helm upgrade --install {versions.CLUSTER_AUTOSCALER_RELEASE} -n kube-system",
        f"helm upgrade --install {versions.AWS_LB_CONTROLLER_RELEASE} -n kube-system",
        "helm upgrade --install gpu-inference -n gpu-inference",
    ]
    create = next(args for tool, args in setup.eksctl.calls if args[:2] == ["create", "cluster"])
    rendered = Path(create[create.index("--config-file") + 1])
    assert "--install-nvidia-plugin=false" in create, "the chart ships the one device plugin"
    assert rendered.is_file()
    assert rendered != CLUSTER_YAML
    assert rendered.parent.parent == setup.work
    assert create[create.index("--kubeconfig") + 1] == str(result.kubeconfig)
    ca, lbc, app = setup.helm.installs
    assert (ca["repo"], ca["version"], ca["wait"]) == (
        versions.CLUSTER_AUTOSCALER_REPO, versions.CLUSTER_AUTOSCALER_CHART_VERSION, True
    )  # fmt: skip
    assert lbc["values"]["vpcId"].startswith("vpc-")
    assert lbc["version"] == versions.AWS_LB_CONTROLLER_CHART_VERSION
    assert app["chart"] == str(setup.chart)
    assert app["wait"]
    assert app["repo"] is None
    assert app["kubeconfig"] == result.kubeconfig
    assert result.created_cluster
    assert result.hpa_metrics == {"inference": "gpu_utilization=37"}
    assert result.endpoints == ["http://k8s-web-123.elb.us-east-1.amazonaws.com:80"]
    assert "port-forward svc/gpu-inference-grafana 3000:80" in result.grafana
    assert result.cost_estimate.startswith("cost estimate")
    assert all(c.ok for c in result.preflight)
    assert {c.name for c in result.preflight} >= {
        "eksctl", "helm", "kubectl", "aws identity", "aws region", "kubernetes version",
        "on-demand G vCPU quota", "existing cluster", "chart lint", "chart vs node groups",
    }  # fmt: skip


def test_no_ingress_means_no_load_balancer_controller(setup: Setup) -> None:
    setup.helm.objects = chart_objects(ingress=False)
    setup.stub_quotas()
    setup.deployer().run()
    assert versions.AWS_LB_CONTROLLER_RELEASE not in {i["release"] for i in setup.helm.installs}


def test_existing_cluster_is_reused_and_only_missing_node_groups_are_added(setup: Setup) -> None:
    setup.create_cluster(nodegroups=("system", "gpu"))
    setup.stub_quotas(spot=True)
    result = setup.deployer(spot=True).run()
    assert not result.created_cluster
    assert "eksctl create cluster" not in setup.events
    (create_ng,) = [args for _, args in setup.eksctl.calls if args[:2] == ["create", "nodegroup"]]
    assert create_ng[create_ng.index("--include") + 1] == "gpu-spot"
    assert "--install-nvidia-plugin=false" in create_ng
    assert result.added_nodegroups == ["gpu-spot"]


def test_existing_complete_cluster_creates_nothing(setup: Setup) -> None:
    setup.create_cluster(nodegroups=("system", "gpu"))
    setup.stub_quotas()
    setup.deployer().run()
    assert not [a for _, a in setup.eksctl.calls if a[0] == "create"]


def test_too_small_gpu_quota_fails_preflight_and_creates_nothing(setup: Setup) -> None:
    setup.quotas[versions.QUOTA_ON_DEMAND_G_VT] = 8.0  # a new account: 2 x g4dn.xlarge at most
    setup.stub_quotas()
    with pytest.raises(PreflightError) as info:
        setup.deployer().run()
    msg = str(info.value)
    assert "L-DB2E81BA" in msg
    assert "is 8 vCPUs" in msg
    assert "can grow to 16" in msg
    assert "request-service-quota-increase" in msg
    assert not [a for _, a in setup.eksctl.calls if a[0] == "create"]
    assert setup.helm.installs == []


def test_spot_quota_is_checked_with_spot(setup: Setup) -> None:
    setup.quotas[versions.QUOTA_SPOT_G_VT] = 0.0
    setup.stub_quotas(spot=True)
    with pytest.raises(PreflightError, match="L-3819A6DF"):
        setup.deployer(spot=True).run()


def test_missing_eksctl_fails_preflight_clearly(setup: Setup, fake_bin: FakeBin) -> None:
    setup.stub_quotas()
    with pytest.raises(PreflightError) as info:
        setup.deployer(eksctl=Eksctl()).run()
    assert "eksctl: FAILED: eksctl is not installed" in str(info.value)
    assert "https://eksctl.io/installation/" in str(info.value)


def test_old_eksctl_fails_preflight(setup: Setup) -> None:
    setup.eksctl.handlers.insert(0, lambda tool, args: "0.190.0" if args == ["version"] else None)
    setup.stub_quotas()
    with pytest.raises(PreflightError, match=r"older than 0\.204\.0"):
        setup.deployer().run()


def test_chart_that_does_not_fit_the_node_groups_fails_preflight(setup: Setup) -> None:
    setup.helm.objects = chart_objects(max_replicas=8)
    setup.stub_quotas()
    with pytest.raises(PreflightError, match=r"maxReplicas.*8 GPUs") as info:
        setup.deployer().run()
    assert "lower maxReplicas to <= 4" in str(info.value)


def test_chart_lint_failure_fails_preflight(setup: Setup) -> None:
    setup.helm.lint_error = "[ERROR] templates/: template: gpu-inference/templates/x.yaml: bad"
    setup.stub_quotas()
    with pytest.raises(PreflightError, match="chart lint: FAILED"):
        setup.deployer().run()


def test_half_deleted_cluster_fails_preflight(setup: Setup) -> None:
    setup.clients.client("cloudformation").create_stack(
        StackName="eksctl-gpu-inference-cluster",
        TemplateBody='{"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}',
    )
    setup.stub_quotas()
    with pytest.raises(PreflightError, match="run `make destroy`"):
        setup.deployer().run()


@pytest.mark.parametrize(
    ("status", "end", "ok"),
    [
        ("STANDARD_SUPPORT", dt.datetime(2027, 8, 2), True),
        ("EXTENDED_SUPPORT", dt.datetime(2026, 7, 29), False),
        ("STANDARD_SUPPORT", dt.datetime(2026, 12, 2), False),  # ends within the margin
    ],
)
def test_kubernetes_version_asks_eks(setup: Setup, status: str, end: dt.datetime, ok: bool) -> None:
    eks = setup.clients.client("eks")
    stub = Stubber(eks)
    stub.add_response(
        "describe_cluster_versions",
        {
            "clusterVersions": [
                {"clusterVersion": "1.36", "versionStatus": status, "endOfStandardSupportDate": end}
            ]
        },
        {"clusterVersions": ["1.36"]},
    )
    stub.activate()
    from gpu_inference.services.eks.preflight import PreflightContext, check_kubernetes_version

    cfg = setup.deployer().load_config()[1]
    ctx = PreflightContext(
        cfg=cfg, clients=setup.clients, eksctl=Eksctl(setup.eksctl), helm=lambda: setup.helm,
        kubectl_version=lambda: "v1.36.0", chart=setup.chart, release="r", namespace="n", today=TODAY,
    )  # fmt: skip
    result = check_kubernetes_version(ctx)
    assert result.ok is ok, result
    assert "EKS DescribeClusterVersions" in result.detail


def test_hpa_without_a_number_times_out_with_a_hint(setup: Setup) -> None:
    setup.kube.objects["horizontalpodautoscalers"][0]["status"] = {
        "conditions": [{"type": "ScalingActive", "status": "False", "reason": "FailedGetPodsMetric"}]
    }
    setup.stub_quotas()
    with pytest.raises(DeployFailedError, match="HPA to show a metric value") as info:
        setup.deployer().run()
    assert isinstance(info.value.__cause__, WaitTimeoutError)
    assert "inference: <unknown> (ScalingActive=False)" in str(info.value)
    assert "FailedGetPodsMetric" in str(info.value)


def test_custom_metrics_api_missing_times_out(setup: Setup) -> None:
    del setup.kube.raw[CUSTOM_METRICS_PATH]
    setup.stub_quotas()
    with pytest.raises(DeployFailedError, match="custom metrics API") as info:
        setup.deployer().run()
    assert isinstance(info.value.__cause__, WaitTimeoutError)


def test_dry_run_creates_nothing_and_prints_the_plan(setup: Setup) -> None:
    setup.stub_quotas()
    result = setup.deployer(dry_run=True).run()
    assert [e for e in setup.events if not e.startswith("helm lint")] == []
    assert result.planned[0].startswith("eksctl create cluster --config-file")
    assert "--install-nvidia-plugin=false" in result.planned[0]
    assert any(f"--version {versions.CLUSTER_AUTOSCALER_CHART_VERSION}" in line for line in result.planned)


def test_region_and_version_overrides_reach_eksctl(setup: Setup, boto_session: Any) -> None:
    setup.clients = AwsClients("eu-west-1", session=boto_session)
    stub = setup.stub_quotas()
    setup.deployer(region="eu-west-1", kubernetes_version="1.35", dry_run=True).run()
    stub.assert_no_pending_responses()
    import yaml

    rendered = yaml.safe_load((setup.work / "gpu-inference-eu-west-1" / "cluster.rendered.yaml").read_text())
    assert rendered["metadata"]["region"] == "eu-west-1"
    assert rendered["metadata"]["version"] == "1.35"


def test_hpa_current_values_reads_every_metric_type() -> None:
    hpa = {
        "status": {
            "currentMetrics": [
                {"type": "Pods", "pods": {"metric": {"name": "gpu"}, "current": {"averageValue": "81"}}},
                {"type": "External", "external": {"metric": {"name": "queue"}, "current": {"value": "3"}}},
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 20}}},
            ]
        }
    }
    assert hpa_current_values(hpa) == ["gpu=81", "queue=3", "cpu=20"]


def test_endpoint_pending_is_reported_not_fatal(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    svc = next(s for s in setup.kube.objects["services"] if s["metadata"]["name"] == "inference")
    svc["status"] = {"loadBalancer": {}}
    setup.kube.add(
        "ingress", "inference", "gpu-inference", status={"loadBalancer": {"ingress": [{"hostname": "alb-1"}]}}
    )
    setup.stub_quotas()
    result = setup.deployer().run()
    assert result.endpoints == ["http://alb-1/"]
    assert "no load balancer address yet for Service/inference" in caplog.text


def _preflight_ctx(setup: Setup) -> Any:
    from gpu_inference.services.eks.preflight import PreflightContext

    cfg = setup.deployer().load_config()[1]
    return PreflightContext(
        cfg=cfg, clients=setup.clients, eksctl=Eksctl(setup.eksctl), helm=lambda: setup.helm,
        kubectl_version=lambda: "v1.36.0", chart=setup.chart, release="r", namespace="n", today=TODAY,
    )  # fmt: skip


CLUSTER_DESC = {
    "name": "gpu-inference",
    "arn": "arn:aws:eks:us-east-1:123456789012:cluster/gpu-inference",
    "version": "1.36",
}


@pytest.mark.parametrize(
    ("status", "fix"), [("CREATING", "aws eks wait cluster-active"), ("FAILED", "make destroy")]
)
def test_only_an_active_cluster_is_reused(setup: Setup, status: str, fix: str) -> None:
    """Before, a CREATING or UPDATING cluster passed as 'it will be reused'."""
    from gpu_inference.services.eks.preflight import check_leftover_stacks

    stub = Stubber(setup.clients.client("eks"))
    stub.add_response(
        "describe_cluster", {"cluster": {**CLUSTER_DESC, "status": status}}, {"name": "gpu-inference"}
    )
    stub.activate()
    result = check_leftover_stacks(_preflight_ctx(setup))
    assert not result.ok
    assert f"is {status}; only an ACTIVE cluster is reused" in result.detail
    assert fix in result.fix


def test_a_degraded_node_group_fails_preflight(setup: Setup) -> None:
    from gpu_inference.services.eks.preflight import check_leftover_stacks

    stub = Stubber(setup.clients.client("eks"))
    stub.add_response(
        "describe_cluster", {"cluster": {**CLUSTER_DESC, "status": "ACTIVE"}}, {"name": "gpu-inference"}
    )
    stub.add_response("list_nodegroups", {"nodegroups": ["system", "gpu"]}, {"clusterName": "gpu-inference"})
    stub.add_response(
        "describe_nodegroup", {"nodegroup": {"nodegroupName": "system", "status": "ACTIVE"}},
        {"clusterName": "gpu-inference", "nodegroupName": "system"},
    )  # fmt: skip
    issue = {"code": "AsgInstanceLaunchFailures", "message": "InsufficientInstanceCapacity"}
    stub.add_response(
        "describe_nodegroup",
        {"nodegroup": {"nodegroupName": "gpu", "status": "DEGRADED", "health": {"issues": [issue]}}},
        {"clusterName": "gpu-inference", "nodegroupName": "gpu"},
    )
    stub.activate()
    result = check_leftover_stacks(_preflight_ctx(setup))
    assert not result.ok
    assert (
        "node group gpu is DEGRADED (AsgInstanceLaunchFailures: InsufficientInstanceCapacity)"
        in result.detail
    )
    assert "eksctl delete nodegroup --cluster gpu-inference" in result.fix


def test_a_stack_left_in_rollback_complete_fails_preflight(setup: Setup) -> None:
    from gpu_inference.services.eks.preflight import check_leftover_stacks

    setup.create_cluster()
    stub = Stubber(setup.clients.client("cloudformation"))
    stub.add_response(
        "list_stacks",
        {"StackSummaries": [{
            "StackName": "eksctl-gpu-inference-nodegroup-gpu", "StackStatus": "ROLLBACK_COMPLETE",
            "CreationTime": dt.datetime(2026, 11, 29),
        }]},
        {},
    )  # fmt: skip
    stub.activate()
    result = check_leftover_stacks(_preflight_ctx(setup))
    assert not result.ok
    assert "eksctl-gpu-inference-nodegroup-gpu is ROLLBACK_COMPLETE" in result.detail
    assert "delete-stack" in result.fix


def test_a_failed_deploy_says_what_bills_and_how_to_remove_it(setup: Setup) -> None:
    """The chart install fails after eksctl created the cluster: the error lists what is billing (from
    the audit, in the account deploy ran in) and the exact destroy command; the record says 'failed'."""
    from gpu_inference.domain.deployment_state import load_state
    from gpu_inference.errors import ToolFailedError

    def broken_install(release: str, *a: Any, **kw: Any) -> int:
        if release == "gpu-inference":
            raise ToolFailedError("helm", ["upgrade"], 1, "Error: context deadline exceeded")
        return 1

    setup.helm.upgrade_install = broken_install  # type: ignore[method-assign]
    setup.stub_quotas()
    with pytest.raises(DeployFailedError) as info:
        setup.deployer(profile="lab").run()
    text = str(info.value)
    assert "deploy failed at step 'chart'" in text
    assert "What bills now" in text
    assert "eks-cluster gpu-inference status ACTIVE" in text
    assert "account 123456789012" in text
    assert (
        f"gpu-inference destroy --config {CLUSTER_YAML} --region us-east-1 --profile lab "
        "--release gpu-inference --namespace gpu-inference"
    ) in text
    assert "make destroy REGION=us-east-1 PROFILE=lab" in text
    state = load_state(setup.work, "gpu-inference")
    assert state is not None
    assert (state.status, state.account, state.profile) == ("failed", "123456789012", "lab")
    assert state.failure.startswith("chart: ")


def test_a_deploy_records_what_destroy_and_verify_scaleup_need(setup: Setup, caplog: Any) -> None:
    import logging

    from gpu_inference.domain.deployment_state import load_state

    setup.kube.add_app_service("gpu-inference-prometheus", "prometheus", 9090)

    def eksctl(tool: str, args: list[str]) -> str | None:
        if args[:2] != ["create", "cluster"]:
            return None
        setup._eksctl(tool, args)
        return 'building cluster stack "eksctl-gpu-inference-cluster"\n'

    setup.eksctl.handlers.insert(0, eksctl)
    setup.stub_quotas()
    with caplog.at_level(logging.INFO):
        result = setup.deployer().run()
    assert 'eksctl: building cluster stack "eksctl-gpu-inference-cluster"' in caplog.text  # progress shown
    state = load_state(setup.work, "gpu-inference")
    assert state is not None
    assert result.state_file == setup.work / "gpu-inference" / "deploy.json"
    assert (state.status, state.cluster, state.region, state.account) == (
        "deployed", "gpu-inference", "us-east-1", "123456789012"
    )  # fmt: skip
    assert (state.namespace, state.release, state.hpa) == ("gpu-inference", "gpu-inference", "inference")
    assert state.kubeconfig == str(result.kubeconfig)
    assert state.prometheus is not None
    assert state.prometheus.port_forward(state.kubeconfig, None) == [
        "--kubeconfig", state.kubeconfig, "-n", "gpu-inference", "port-forward",
        "svc/gpu-inference-prometheus", "9090:9090",
    ]  # fmt: skip


def test_eksctl_that_cannot_create_the_version_fails_preflight(setup: Setup) -> None:
    setup.eksctl_supports = ["1.33", "1.34", "1.35"]
    setup.stub_quotas()
    with pytest.raises(PreflightError, match=r"eksctl 0\.215\.0 cannot create Kubernetes 1\.36") as info:
        setup.deployer().run()
    assert "supports 1.33, 1.34, 1.35" in str(info.value)
    assert "eksctl create" not in " ".join(setup.events)


def test_running_g_instances_count_against_the_quota(setup: Setup) -> None:
    """The gpu group can grow to 4 x g4dn.xlarge = 16 vCPUs; the quota is 20, but another workload's
    g4dn.2xlarge already uses 8 of them. Before, 20 >= 16 passed and the scale-up failed at run time."""
    ec2 = setup.clients.client("ec2")
    ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="g4dn.2xlarge")
    ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="m6i.large")  # not G
    setup.quotas[versions.QUOTA_ON_DEMAND_G_VT] = 20.0
    setup.stub_quotas()
    with pytest.raises(PreflightError, match="on-demand G vCPU quota") as info:
        setup.deployer().run()
    assert "20 vCPUs in us-east-1, 8 already used by 1 running G/VT instance(s) outside this cluster" in str(
        info.value
    )
    assert "--desired-value 24" in str(info.value)


def test_vpc_quota_full_fails_preflight_for_a_new_cluster(setup: Setup) -> None:
    used = len(setup.clients.client("ec2").describe_vpcs()["Vpcs"])  # moto's default VPC and the test's
    setup.network_quotas[versions.QUOTA_VPCS] = float(used)
    setup.stub_quotas()
    with pytest.raises(PreflightError, match="VPCs per Region quota") as info:
        setup.deployer().run()
    assert f"{used} in us-east-1, {used} in use, the new cluster needs 1" in str(info.value)
    assert "--quota-code L-F678F1CE" in str(info.value)


def test_elastic_ip_quota_counts_addresses_in_use(setup: Setup) -> None:
    ec2 = setup.clients.client("ec2")
    for _ in range(5):
        ec2.allocate_address(Domain="vpc")
    setup.stub_quotas()
    with pytest.raises(PreflightError, match="EC2-VPC Elastic IPs quota: FAILED: 5 in us-east-1, 5 in use"):
        setup.deployer().run()
