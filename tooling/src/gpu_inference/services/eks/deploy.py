"""`gpu-inference deploy`: the whole stack on EKS, idempotently.

Order: validate eksctl/cluster.yaml -> preflight -> eksctl create cluster (or reuse it and add
missing node groups) -> kubeconfig -> Cluster Autoscaler -> AWS Load Balancer Controller (if the
chart renders an Ingress) -> the chart (helm upgrade --install --wait) -> wait until the custom
metrics API answers and the HPA shows a number -> endpoint, Grafana access, cost estimate.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gpu_inference.adapters.aws import AwsClients, aws_call
from gpu_inference.adapters.eksctl import Eksctl
from gpu_inference.adapters.helm import Helm
from gpu_inference.adapters.kubectl import Kubectl
from gpu_inference.domain import eksctl_config
from gpu_inference.domain.deployment_state import DeploymentState, PrometheusAccess, save_state
from gpu_inference.errors import AwsError, GpuInferenceError, ToolFailedError, WaitTimeoutError
from gpu_inference.services.eks import addons
from gpu_inference.services.eks.audit import AuditReport, audit, describe_cluster
from gpu_inference.services.eks.preflight import CheckResult, PreflightContext, run_preflight
from gpu_inference.services.eks.progress import Reporter
from gpu_inference.services.eks.waits import Probe, poll

log = logging.getLogger(__name__)

CUSTOM_METRICS_PATH = "/apis/custom.metrics.k8s.io/v1beta2"
SPOT_OVERLAY = "gpu-spot-nodegroup.yaml"


class NotReusableError(GpuInferenceError):
    """An existing cluster of that name is not ACTIVE: deploy will not build on it."""

    def __init__(self, cluster: str, region: str, status: str) -> None:
        fix = (
            f"wait until it is ACTIVE (aws eks wait cluster-active --name {cluster} --region {region}), then "
            "deploy again"
            if status in ("CREATING", "UPDATING")
            else f"remove it (gpu-inference destroy --region {region}), then deploy again"
        )
        super().__init__(f"cluster {cluster} in {region} is {status}, not ACTIVE. Fix: {fix}")


class DeployFailedError(GpuInferenceError):
    """A deploy stopped after it had started creating: what bills now and how to remove it."""

    def __init__(self, step: str, error: str, billing: str, state: DeploymentState, config: str) -> None:
        self.step = step
        self.billing = billing
        self.destroy_command = state.destroy_command(config)
        super().__init__(
            f"deploy failed at step {step!r}: {error}\n"
            f"What bills now (it keeps billing until removed):\n{billing}\n"
            f"Remove it all with: {self.destroy_command}\n"
            f"  (or: {state.make_destroy()}); then deploy again, or re-run deploy to resume"
        )


def kubeconfig_context(kubeconfig: Path) -> str | None:
    """The current-context of the kubeconfig eksctl wrote (None when unreadable)."""
    try:
        data = yaml.safe_load(kubeconfig.read_text())
    except (OSError, yaml.YAMLError):
        return None
    ctx = data.get("current-context") if isinstance(data, dict) else None
    return str(ctx) if ctx else None


@dataclass(kw_only=True)
class StackOptions:
    """What deploy and destroy both take: the chart's release, the work dir, and how they wait."""

    release: str
    namespace: str
    #: Rendered config, kubeconfig, logs and the deploy record.
    work_dir: Path
    #: Print the plan; change nothing.
    dry_run: bool = False
    #: Seconds between two looks at the cluster or AWS while waiting for a state.
    poll_interval_s: float = 10.0


@dataclass(kw_only=True)
class DeployOptions(StackOptions):
    """`gpu-inference deploy`: the eksctl config, the chart and its values, and the waits' bounds."""

    config: Path
    chart: Path
    region: str | None = None
    #: The AWS profile the clients use (recorded for destroy; None: the default credential chain).
    profile: str | None = None
    kubernetes_version: str | None = None
    spot: bool = False
    values_files: Sequence[Path] = ()
    load_balancer_controller: bool | None = None  # None: install it when the chart renders an Ingress
    skip_quota_check: bool = False
    helm_timeout_s: int = 900
    metrics_timeout_s: int = 900
    endpoint_timeout_s: float = 300


@dataclass
class DeployResult:
    cluster: str
    region: str
    kubeconfig: Path
    rendered_config: Path
    preflight: list[CheckResult] = field(default_factory=list)
    created_cluster: bool = False
    added_nodegroups: list[str] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)
    endpoints: list[str] = field(default_factory=list)
    grafana: str = ""
    hpa_metrics: dict[str, str] = field(default_factory=dict)
    cost_estimate: str = ""
    planned: list[str] = field(default_factory=list)
    state_file: Path | None = None


def kubeconfig_path(work_dir: Path, cluster: str, region: str) -> Path:
    return work_dir / f"{cluster}-{region}" / "kubeconfig"


@dataclass
class Deployer:
    opts: DeployOptions
    clients_factory: Callable[[str], AwsClients]
    eksctl: Eksctl
    helm_factory: Callable[[Path | None], Helm]
    kubectl_factory: Callable[[Path], Kubectl]
    kubectl_version: Callable[[], str]
    reporter: Reporter
    sleep: Callable[[float], None] = time.sleep
    today: Callable[[], dt.date] = dt.date.today

    # ------------------------------------------------------------------ steps

    def load_config(self) -> tuple[dict[str, Any], eksctl_config.ClusterConfig]:
        overlays = [self.opts.config.parent / SPOT_OVERLAY] if self.opts.spot else []
        return eksctl_config.load_and_check(
            self.opts.config,
            region=self.opts.region,
            version=self.opts.kubernetes_version,
            overlays=overlays,
            today=self.today(),
            check_version=False,  # preflight asks EKS itself
        )

    def run(self) -> DeployResult:
        with self.reporter.step("config", f"validate {self.opts.config}"):
            raw, cfg = self.load_config()
        name, region = cfg.metadata.name, cfg.metadata.region
        clients = self.clients_factory(region)
        run_dir = self.opts.work_dir / f"{name}-{region}"
        kubeconfig = kubeconfig_path(self.opts.work_dir, name, region)
        rendered = eksctl_config.write_rendered(raw, run_dir / "cluster.rendered.yaml")
        result = DeployResult(cluster=name, region=region, kubeconfig=kubeconfig, rendered_config=rendered)

        ctx = PreflightContext(
            cfg=cfg,
            clients=clients,
            eksctl=self.eksctl,
            helm=lambda: self.helm_factory(None),
            kubectl_version=self.kubectl_version,
            chart=self.opts.chart,
            release=self.opts.release,
            namespace=self.opts.namespace,
            values_files=self.opts.values_files,
            today=self.today(),
            skip_quota=self.opts.skip_quota_check,
        )
        with self.reporter.step("preflight", "AWS identity/region/quota, tools, Kubernetes version, chart"):
            result.preflight = run_preflight(ctx)
        want_lbc = self.opts.load_balancer_controller
        if want_lbc is None:
            want_lbc = bool(ctx.chart_facts and ctx.chart_facts.ingresses)

        existing = describe_cluster(clients, name)
        if self.opts.dry_run:
            result.planned = self.plan(cfg, existing, rendered, kubeconfig, want_lbc)
            return result
        if existing is not None and existing.get("status") != "ACTIVE":
            raise NotReusableError(name, region, str(existing.get("status")))

        state = DeploymentState(
            cluster=name,
            region=region,
            account=ctx.account or "unknown",
            profile=self.opts.profile,
            status="creating",
            config=str(rendered),
            kubeconfig=str(kubeconfig),
            namespace=self.opts.namespace,
            release=self.opts.release,
        )
        result.state_file = save_state(state, self.opts.work_dir)
        try:
            self.create_and_install(
                clients,
                cfg=cfg,
                existing=existing,
                rendered=rendered,
                kubeconfig=kubeconfig,
                want_lbc=want_lbc,
                result=result,
            )
        except GpuInferenceError as exc:
            raise self.failed(clients, state, exc) from exc
        result.state_file = save_state(
            state.model_copy(
                update={
                    "status": "deployed",
                    "context": kubeconfig_context(kubeconfig),
                    "hpa": next(iter(result.hpa_metrics), None),
                    "prometheus": self.prometheus_access(self.kubectl_factory(kubeconfig)),
                }
            ),
            self.opts.work_dir,
        )
        return result

    def failed(
        self, clients: AwsClients, state: DeploymentState, exc: GpuInferenceError
    ) -> DeployFailedError:
        """Record the failure; say what is billing now and the exact command that removes it."""
        records = self.reporter.records
        step = next((r.name for r in reversed(records) if not r.ok), None) or (
            f"after {records[-1].name}" if records else "?"
        )
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        save_state(
            state.model_copy(update={"status": "failed", "failure": f"{step}: {first}"}), self.opts.work_dir
        )
        try:
            report: AuditReport | None = audit(clients, state.cluster)
            billing = report.summary() if report is not None else ""
        except GpuInferenceError as audit_exc:
            report, billing = None, f"could not audit what is billing ({audit_exc})"
        return DeployFailedError(step, first, billing, state, str(self.opts.config))

    def create_and_install(
        self,
        clients: AwsClients,
        *,
        cfg: eksctl_config.ClusterConfig,
        existing: Mapping[str, Any] | None,
        rendered: Path,
        kubeconfig: Path,
        want_lbc: bool,
        result: DeployResult,
    ) -> None:
        """Every step that creates something: cluster, add-ons, chart, then the waits."""
        name, region = cfg.metadata.name, cfg.metadata.region

        def progress(line: str) -> None:
            self.reporter.info(f"eksctl: {line}")

        with self.reporter.step("cluster", f"EKS cluster {name} in {region} (eksctl; 15-25 min when new)"):
            if existing is None:
                self.eksctl.create_cluster(
                    rendered, kubeconfig=kubeconfig, install_nvidia_plugin=False, on_line=progress
                )
                result.created_cluster = True
            else:
                result.added_nodegroups = self.add_missing_nodegroups(clients, cfg, rendered, progress)
        with self.reporter.step("kubeconfig", f"write {kubeconfig}"):
            self.eksctl.write_kubeconfig(cluster=name, region=region, kubeconfig=kubeconfig)

        helm = self.helm_factory(kubeconfig)
        ca = addons.cluster_autoscaler(cfg)
        with self.reporter.step("cluster-autoscaler", f"helm {ca.chart} {ca.version} into {ca.namespace}"):
            helm.install(ca)
            result.releases.append(ca.release)
        if want_lbc:
            vpc_id = self.cluster_vpc(clients, name)
            lbc = addons.aws_load_balancer_controller(cfg, vpc_id)
            with self.reporter.step(
                "aws-load-balancer-controller", f"helm {lbc.chart} {lbc.version} (Ingress on)"
            ):
                helm.install(lbc)
                result.releases.append(lbc.release)
        else:
            self.reporter.skip(
                "aws-load-balancer-controller", "AWS Load Balancer Controller", "the chart renders no Ingress"
            )
        with self.reporter.step(
            "chart", f"helm upgrade --install {self.opts.release} --wait (GPU node, image pull)"
        ):
            helm.upgrade_install(
                self.opts.release,
                self.opts.chart,
                namespace=self.opts.namespace,
                values_files=self.opts.values_files,
                wait=True,
                timeout_s=self.opts.helm_timeout_s,
            )
            result.releases.append(self.opts.release)

        kubectl = self.kubectl_factory(kubeconfig)
        with self.reporter.step("custom-metrics", f"wait until {CUSTOM_METRICS_PATH} answers"):
            self.wait_custom_metrics(kubectl)
        with self.reporter.step("hpa", "wait until the HPA shows a metric value"):
            result.hpa_metrics = self.wait_hpa_value(kubectl)
        with self.reporter.step("endpoint", "find the service endpoint and Grafana"):
            result.endpoints = self.endpoints(kubectl)
            result.grafana = self.grafana_hint(kubectl, kubeconfig)
        result.cost_estimate = cost_estimate_text(rendered, self.opts.chart, self.opts.values_files)

    def prometheus_access(self, kubectl: Kubectl) -> PrometheusAccess | None:
        """The chart's Prometheus Service, for a port-forward (verify-scaleup --eks reads it)."""
        try:
            svcs = kubectl.get(
                "services", namespace=self.opts.namespace, selector="app.kubernetes.io/name=prometheus"
            ).get("items", [])
        except GpuInferenceError as exc:
            log.warning("cannot find the Prometheus Service: %s", exc)
            return None
        if not svcs:
            return None
        svc = svcs[0]
        port = int((svc["spec"].get("ports") or [{}])[0].get("port", 9090))
        return PrometheusAccess(service=svc["metadata"]["name"], namespace=self.opts.namespace, port=port)

    def plan(
        self,
        cfg: eksctl_config.ClusterConfig,
        existing: Mapping[str, Any] | None,
        rendered: Path,
        kubeconfig: Path,
        want_lbc: bool,
    ) -> list[str]:
        name, region = cfg.metadata.name, cfg.metadata.region
        lines = []
        if existing is None:
            lines.append(
                f"eksctl create cluster --config-file {rendered} --install-nvidia-plugin=false "
                f"--kubeconfig {kubeconfig}"
            )
        else:
            lines.append(
                f"reuse cluster {name} ({existing.get('status')}); create node groups missing from it"
            )
        lines.append(
            f"eksctl utils write-kubeconfig --cluster {name} --region {region} --kubeconfig {kubeconfig}"
        )
        ca = addons.cluster_autoscaler(cfg)
        lines.append(
            f"helm upgrade --install {ca.release} {ca.chart} --repo {ca.repo} --version {ca.version} -n "
            f"{ca.namespace}"
        )
        if want_lbc:
            lbc = addons.aws_load_balancer_controller(cfg, "<cluster vpc>")
            lines.append(
                f"helm upgrade --install {lbc.release} {lbc.chart} --repo {lbc.repo} --version "
                f"{lbc.version} -n {lbc.namespace}"
            )
        lines.append(
            f"helm upgrade --install {self.opts.release} {self.opts.chart} -n {self.opts.namespace} --wait"
        )
        lines.append(f"wait for {CUSTOM_METRICS_PATH} and a value on the HPA")
        return lines

    def add_missing_nodegroups(
        self,
        clients: AwsClients,
        cfg: eksctl_config.ClusterConfig,
        rendered: Path,
        progress: Callable[[str], None] | None = None,
    ) -> list[str]:
        with aws_call("eks:ListNodegroups"):
            have = set(
                clients.client("eks").list_nodegroups(clusterName=cfg.metadata.name).get("nodegroups", [])
            )
        missing = [ng.name for ng in cfg.managedNodeGroups if ng.name not in have]
        if missing:
            self.reporter.info(f"cluster exists; adding node group(s) {missing}")
            self.eksctl.create_nodegroups(
                rendered, include=missing, install_nvidia_plugin=False, on_line=progress
            )
        else:
            self.reporter.info("cluster exists with every node group; reusing it")
        return missing

    def cluster_vpc(self, clients: AwsClients, name: str) -> str:
        cluster = describe_cluster(clients, name)
        vpc_cfg = (cluster or {}).get("resourcesVpcConfig") or {}
        vpc = vpc_cfg.get("vpcId")
        if not vpc and vpc_cfg.get("subnetIds"):
            with aws_call("ec2:DescribeSubnets"):
                subnets = clients.client("ec2").describe_subnets(SubnetIds=vpc_cfg["subnetIds"][:1])[
                    "Subnets"
                ]
            vpc = subnets[0]["VpcId"] if subnets else None
        if not vpc:
            raise AwsError(
                "eks:DescribeCluster", f"cluster {name} has no VPC id", "check the cluster in the EKS console"
            )
        return str(vpc)

    # ------------------------------------------------------------------ waits

    def _poll(self, what: str, timeout_s: float, probe: Probe, fix: str) -> str:
        """Poll until done; a failed kubectl call or an unreadable answer counts as not yet."""
        interval_s = self.opts.poll_interval_s
        return poll(what, timeout_s, probe, fix, interval_s=interval_s, sleep=self.sleep, tolerate=_not_yet)

    def wait_custom_metrics(self, kubectl: Kubectl) -> None:
        def probe() -> tuple[bool, str]:
            data = json.loads(kubectl.get_raw(CUSTOM_METRICS_PATH))
            names = [r.get("name", "") for r in data.get("resources") or []]
            return bool(names), f"{len(names)} metric(s)"

        self._poll(
            "the custom metrics API",
            self.opts.metrics_timeout_s,
            probe,
            "check the prometheus-adapter pods and its APIService (kubectl get apiservice | grep "
            "custom.metrics) "
            f"in namespace {self.opts.namespace}",
        )

    def wait_hpa_value(self, kubectl: Kubectl) -> dict[str, str]:
        values: dict[str, str] = {}

        def probe() -> tuple[bool, str]:
            hpas = kubectl.get(
                "horizontalpodautoscalers",
                namespace=self.opts.namespace,
                selector=f"app.kubernetes.io/instance={self.opts.release}",
            ).get("items", [])
            if not hpas:
                return False, "no HPA yet"
            values.clear()
            states = []
            for h in hpas:
                name = h["metadata"]["name"]
                current = hpa_current_values(h)
                active = any(
                    c.get("type") == "ScalingActive" and c.get("status") == "True"
                    for c in (h.get("status") or {}).get("conditions") or []
                )
                if current and active:
                    values[name] = ", ".join(current)
                states.append(f"{name}: {', '.join(current) or '<unknown>'} (ScalingActive={active})")
            return len(values) == len(hpas), "; ".join(states)

        self._poll(
            "the HPA to show a metric value",
            self.opts.metrics_timeout_s,
            probe,
            f"kubectl describe hpa -n {self.opts.namespace} (look for FailedGetPodsMetric) and check "
            "that the GPU pods run",
        )
        return dict(values)

    def _endpoints(self, kubectl: Kubectl) -> tuple[list[str], list[str]]:
        """(URLs, objects still waiting for a load balancer address)."""
        out: list[str] = []
        pending: list[str] = []
        svcs = kubectl.get("services", namespace=self.opts.namespace).get("items", [])
        ingresses = kubectl.get("ingresses", namespace=self.opts.namespace).get("items", [])
        for obj in [s for s in svcs if (s.get("spec") or {}).get("type") == "LoadBalancer"] + ingresses:
            is_svc = obj in svcs
            addrs = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if not addrs:
                pending.append(f"{'Service' if is_svc else 'Ingress'}/{obj['metadata']['name']}")
            for a in addrs:
                host = a.get("hostname") or a.get("ip")
                if is_svc:
                    out.extend(f"http://{host}:{p.get('port')}" for p in obj["spec"].get("ports") or [])
                else:
                    out.append(f"http://{host}/")
        return out, pending

    def endpoints(self, kubectl: Kubectl) -> list[str]:
        """Wait (up to endpoint_timeout_s) for load balancer addresses; a late one is logged, not fatal."""
        urls: list[str] = []

        def probe() -> tuple[bool, str]:
            found, pending = self._endpoints(kubectl)
            urls[:] = found
            return not pending, ", ".join(pending)

        try:
            poll(
                "load balancer addresses",
                self.opts.endpoint_timeout_s,
                probe,
                f"check later with kubectl -n {self.opts.namespace} get svc,ingress",
                interval_s=self.opts.poll_interval_s,
                sleep=self.sleep,
            )
        except WaitTimeoutError as exc:
            log.warning(
                "no load balancer address yet for %s; check later with kubectl -n %s get svc,ingress",
                exc.last_state,
                self.opts.namespace,
            )
        return urls

    def grafana_hint(self, kubectl: Kubectl, kubeconfig: Path) -> str:
        svcs = kubectl.get(
            "services", namespace=self.opts.namespace, selector="app.kubernetes.io/name=grafana"
        ).get("items", [])
        if not svcs:
            return "Grafana: no Service labelled app.kubernetes.io/name=grafana in the release namespace"
        svc = svcs[0]
        port = (svc["spec"].get("ports") or [{}])[0].get("port", 80)
        return (
            f"kubectl --kubeconfig {kubeconfig} -n {self.opts.namespace} port-forward "
            f"svc/{svc['metadata']['name']} "
            f"3000:{port}  # then open http://localhost:3000"
        )


def _not_yet(exc: Exception) -> str | None:
    """What a wait reports for an error that counts as not yet (None: the error ends the wait)."""
    if isinstance(exc, ToolFailedError):
        return str(exc).strip().splitlines()[-1]
    if isinstance(exc, json.JSONDecodeError):
        return f"unexpected answer: {exc}"
    return None


def hpa_current_values(hpa: Mapping[str, Any]) -> list[str]:
    """The numbers `kubectl get hpa` shows in TARGETS, from status.currentMetrics."""
    out = []
    for m in (hpa.get("status") or {}).get("currentMetrics") or []:
        body = m.get(str(m.get("type", "")).lower().replace("containerresource", "containerResource")) or {}
        current = body.get("current") or {}
        value = current.get("averageValue") or current.get("value") or current.get("averageUtilization")
        if value is not None:
            metric = (body.get("metric") or {}).get("name") or body.get("name") or m.get("type")
            out.append(f"{metric}={value}")
    return out


def cost_estimate_text(rendered_config: Path, chart: Path, values_files: Sequence[Path]) -> str:
    """The cost estimate of what was deployed (a failure here never fails the deploy)."""
    from gpu_inference.domain.prices import load_price_book
    from gpu_inference.domain.stack import load_stack
    from gpu_inference.services.cost.estimate import estimate_cost

    try:
        stack = load_stack(
            rendered_config, chart if (chart / "values.yaml").is_file() else None, list(values_files)
        )
        est = estimate_cost(stack, load_price_book(stack.region))
    except GpuInferenceError as exc:
        log.debug("cost estimate failed", exc_info=True)
        return (
            f"cost estimate unavailable ({exc}); run `gpu-inference cost estimate --config {rendered_config}`"
        )
    lines = [f"cost estimate for {est.cluster} in {est.region} (prices as of {est.prices.as_of}):"]
    lines += [
        f"  {s.name:>8}: {s.gpu_nodes} GPU node(s), ${s.usd_per_hour:.2f}/h, ${s.usd_per_month:,.0f}/month"
        for s in est.scenarios
    ]
    return "\n".join(lines)
