"""Paths a real install takes that the default scenario does not: an external Prometheus with the
chart's exporter, the GPU Operator's exporter, Alertmanager, cold-start rollouts, the adapter's
availability and certificate, the Ingress, and the escape hatches. Each test fails on the chart
as it was before the fix it covers."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from .conftest import (
    CHART,
    NAMESPACE,
    RELEASE,
    SCENARIOS,
    Rendered,
    helm,
    pod_spec,
    render,
    render_error,
    render_notes,
)

pytestmark = pytest.mark.unit

AGENTS_NS = f"{NAMESPACE}-gpu-agents"
KPS = SCENARIOS["10-kube-prometheus-stack-own-exporter"]
GPU_OPERATOR = SCENARIOS["07-gpu-operator-own-prometheus"]


def component(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def container(obj: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return dict(pod_spec(obj)["containers"][index])


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


def notes(*values: str, sets: tuple[str, ...] = ()) -> str:
    """NOTES.txt as `helm install` prints it (`helm template` skips it: rendered through tpl in a copy)."""
    return render_notes(values, sets)


# --- 1. the GPU Operator's exporter --------------------------------------------------------


def test_gpu_operator_scenario_matches_the_operators_container_port() -> None:
    r = render((str(GPU_OPERATOR),))
    cfg = yaml.safe_load(r.one("ConfigMap", "prometheus")["data"]["prometheus.yml"])
    job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "dcgm-exporter")
    keep_port = next(
        rc
        for rc in job["relabel_configs"]
        if rc.get("source_labels") == ["__meta_kubernetes_pod_container_port_name"]
    )
    # The operator's DaemonSet container port is `metrics`; `gpu-metrics` names only its Service port.
    assert keep_port["regex"] == "metrics"
    assert job["kubernetes_sd_configs"][0]["namespaces"]["names"] == ["gpu-operator"]


def test_the_service_port_name_is_refused(helm_binary: str) -> None:
    out = render_error(values=(str(GPU_OPERATOR),), sets=("wiring.dcgmExporter.port=gpu-metrics",))
    assert "wiring.dcgmExporter.port=gpu-metrics is the GPU Operator's Service port name" in out
    assert "Fix: set wiring.dcgmExporter.port=metrics" in out


# --- 2. external Prometheus + the chart's exporter -----------------------------------------


#: No chart Prometheus (nor its Grafana): the chart reads an external one, as with kube-prometheus-stack.
EXTERNAL_PROMETHEUS = (
    "prometheus.enabled=false",
    "grafana.enabled=false",
    "wiring.prometheusUrl=http://kube-prometheus-stack-prometheus.monitoring.svc:9090",
)


def dcgm_pod_monitor(r: Rendered) -> dict[str, Any]:
    found = [m for m in r.of_kind("PodMonitor") if component(m) == "dcgm-exporter"]
    assert len(found) == 1, [m["metadata"]["name"] for m in r.of_kind("PodMonitor")]
    return found[0]


def test_external_prometheus_gets_a_pod_monitor_for_the_chart_exporter() -> None:
    r = render((str(KPS),))
    pm = dcgm_pod_monitor(r)
    ds = r.one("DaemonSet", "dcgm-exporter")
    assert pm["metadata"]["namespace"] == ds["metadata"]["namespace"] == AGENTS_NS
    assert pm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert pm["spec"]["selector"]["matchLabels"] == ds["spec"]["selector"]["matchLabels"]
    assert pm["spec"]["namespaceSelector"] == {"matchNames": [AGENTS_NS]}
    endpoint = pm["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] in {p["name"] for p in container(ds)["ports"]}
    assert endpoint["honorLabels"] is True
    # The operator's pod/namespace/container target labels (the exporter pod) are dropped, so the
    # series' own labels (the pod holding the GPU) survive even with honor_labels forced false.
    drops = [rl for rl in endpoint["relabelings"] if rl.get("action") == "labeldrop"]
    assert len(drops) == 1
    for label in ("pod", "namespace", "container"):
        assert re.fullmatch(drops[0]["regex"], label), label
    assert {rl.get("targetLabel") for rl in endpoint["relabelings"]} >= {"node", "exporter_pod"}
    # No chart Prometheus in this mode; the adapter reads the external one with the default labels.
    assert not r.by_component("Deployment", "prometheus")
    rule = yaml.safe_load(r.one("ConfigMap", "prometheus-adapter")["data"]["config.yaml"])["rules"][0]
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}


def test_external_prometheus_without_a_monitor_is_refused(helm_binary: str) -> None:
    out = render_error(sets=EXTERNAL_PROMETHEUS)
    assert "dcgm-exporter.enabled=true with an external Prometheus (prometheus.enabled=false)" in out
    assert "Fix: set monitors.dcgmExporter.enabled=true" in out
    assert "release=<its release>" in out


def test_scraped_elsewhere_is_the_explicit_opt_out() -> None:
    r = render(sets=(*EXTERNAL_PROMETHEUS, "monitors.dcgmExporter.scrapedElsewhere=true"))
    assert not [m for m in r.of_kind("PodMonitor") if component(m) == "dcgm-exporter"]


# --- 3. XID counter ------------------------------------------------------------------------


def test_exporter_emits_the_windowed_xid_count(default: Rendered) -> None:
    counters = default.one("ConfigMap", "dcgm-exporter")["data"]["counters.csv"]
    assert "DCGM_EXP_XID_ERRORS_COUNT" in {
        line.split(",")[0].strip() for line in counters.splitlines() if line
    }
    env = env_of(container(default.one("DaemonSet", "dcgm-exporter")))
    assert env["DCGM_EXPORTER_XID_COUNT_WINDOW_SIZE"]["value"] == "300000"


# --- 4. Alertmanager -----------------------------------------------------------------------


def test_alertmanager_targets_reach_prometheus_yml() -> None:
    r = render((str(GPU_OPERATOR),))
    cfg = yaml.safe_load(r.one("ConfigMap", "prometheus")["data"]["prometheus.yml"])
    am = cfg["alerting"]["alertmanagers"]
    assert am[0]["static_configs"] == [{"targets": ["alertmanager-operated.monitoring.svc:9093"]}]
    assert am[0]["api_version"] == "v2"
    assert cfg["global"]["external_labels"] == {"cluster": "gpu-prod"}


def test_notes_say_where_alerts_go(helm_binary: str) -> None:
    assert "Alerts are evaluated but sent nowhere: set prometheus.alertmanager.targets" in notes(
        str(SCENARIOS["01-default"])
    )
    assert "Alerts go to Alertmanager alertmanager-operated.monitoring.svc:9093" in notes(str(GPU_OPERATOR))
    assert "loaded into your Prometheus as a PrometheusRule" in notes(str(KPS))


# --- 5. rollout deadline -------------------------------------------------------------------


def startup_budget(deployment: dict[str, Any]) -> int:
    probe = container(deployment)["startupProbe"]
    return int(probe["periodSeconds"]) * int(probe["failureThreshold"])


def test_progress_deadline_covers_the_startup_probe(scenario: tuple[str, Rendered]) -> None:
    name, r = scenario
    deployment = r.one("Deployment", "inference")
    deadline = deployment["spec"]["progressDeadlineSeconds"]
    assert deadline > startup_budget(deployment), name
    if name == "01-default":
        # 15 min of startup probe plus 10 min for a new GPU node and the image pull.
        assert (startup_budget(deployment), deadline) == (900, 1500)


def test_progress_deadline_follows_the_probe() -> None:
    r = render(sets=("inference.probes.startup.failureThreshold=180",))
    assert r.one("Deployment", "inference")["spec"]["progressDeadlineSeconds"] == 1800 + 600


def test_notes_wait_as_long_as_the_deadline(helm_binary: str) -> None:
    text = notes(str(SCENARIOS["01-default"]))
    assert "rollout status deployment/gpu-inference --timeout=1560s" in text


def test_a_deadline_inside_the_probe_budget_is_refused(helm_binary: str) -> None:
    out = render_error(("inference.progressDeadlineSeconds=600",))
    assert "inference.progressDeadlineSeconds=600 is not longer than the startup probe's budget (900 s" in out
    assert "Fix: remove inference.progressDeadlineSeconds" in out


# --- 6. prometheus-adapter availability and certificate -------------------------------------


def test_adapter_runs_two_replicas_with_a_pdb(default: Rendered) -> None:
    deployment = default.one("Deployment", "prometheus-adapter")
    assert deployment["spec"]["replicas"] == 2
    pdb = default.one("PodDisruptionBudget", "prometheus-adapter")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    spread = pod_spec(deployment)["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"


def test_one_adapter_replica_has_no_pdb() -> None:
    r = render(sets=("prometheus-adapter.replicas=1",))
    assert not r.by_component("PodDisruptionBudget", "prometheus-adapter")


def test_cert_manager_issues_the_adapter_certificate() -> None:
    r = render((str(KPS),))
    assert not r.by_component("Secret", "prometheus-adapter")  # nothing generated at render time
    cert = r.one("Certificate", "prometheus-adapter")
    issuer = r.one("Issuer", "prometheus-adapter")
    assert issuer["spec"] == {"selfSigned": {}}
    assert cert["spec"]["issuerRef"] == {
        "name": issuer["metadata"]["name"],
        "kind": "Issuer",
        "group": "cert-manager.io",
    }
    service = r.one("Service", "prometheus-adapter")["metadata"]["name"]
    assert f"{service}.{NAMESPACE}.svc" in cert["spec"]["dnsNames"]
    volumes = {v["name"]: v for v in pod_spec(r.one("Deployment", "prometheus-adapter"))["volumes"]}
    assert volumes["serving-cert"]["secret"]["secretName"] == cert["spec"]["secretName"]
    for api in r.of_kind("APIService"):
        assert api["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
            f"{NAMESPACE}/{cert['metadata']['name']}"
        )
        assert "caBundle" not in api["spec"]
        assert not api["spec"].get("insecureSkipTLSVerify")


def _adapter_tls(*sets: str) -> str:
    result = helm(
        "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *[x for s in sets for x in ("--set", s)]
    )
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    return yaml.safe_dump(
        [
            d
            for d in docs
            if d["kind"] in ("APIService", "Secret", "Certificate")
            and d["metadata"]["labels"].get("app.kubernetes.io/component") == "prometheus-adapter"
        ]
    )


def test_cert_manager_renders_the_same_on_every_sync(helm_binary: str) -> None:
    # What Argo CD and Flux do: render without a cluster, twice. The generated CA differs every
    # time (control); with cert-manager the output is identical.
    assert _adapter_tls() != _adapter_tls()
    on = "prometheus-adapter.tls.certManager.enabled=true"
    assert _adapter_tls(on) == _adapter_tls(on)


def test_cert_manager_with_an_existing_secret_is_refused(helm_binary: str) -> None:
    out = render_error(
        (
            "prometheus-adapter.tls.certManager.enabled=true",
            "prometheus-adapter.tls.existingSecret=mine",
            "prometheus-adapter.tls.caBundle=Zm9v",
        )
    )
    assert "tls.certManager.enabled=true and prometheus-adapter.tls.existingSecret are both set" in out


def test_notes_name_the_port_the_control_plane_must_reach(helm_binary: str) -> None:
    text = notes(str(SCENARIOS["01-default"]))
    assert "security group must allow TCP 6443 from the control plane to the nodes" in text
    assert "use prometheus-adapter.tls.certManager.enabled there" in text


# --- 7. priority of the GPU agents ---------------------------------------------------------


def test_gpu_agents_are_node_critical(default: Rendered) -> None:
    for part in ("dcgm-exporter", "device-plugin"):
        assert pod_spec(default.one("DaemonSet", part))["priorityClassName"] == "system-node-critical", part


# --- 8. Ingress ----------------------------------------------------------------------------


def test_ingress_defaults_to_an_internal_alb_for_the_api_only() -> None:
    r = render(sets=("inference.ingress.enabled=true",))
    ingress = r.one("Ingress", "inference")
    ann = ingress["metadata"]["annotations"]
    assert ann["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert ann["alb.ingress.kubernetes.io/load-balancer-attributes"] == "idle_timeout.timeout_seconds=600"
    paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert paths == ["/v1"]  # no /metrics, no /
    assert all(p["pathType"] == "Prefix" for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"])


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ("inference.apiKey.existingSecret=key",),
            "inference.ingress.scheme=internet-facing without inference.ingress.certificateArn",
        ),
        (
            ("inference.ingress.certificateArn=arn:aws:acm:us-east-1:123456789012:certificate/x",),
            "inference.ingress.scheme=internet-facing without inference.apiKey.existingSecret",
        ),
    ],
)
def test_internet_facing_needs_tls_and_a_key(sets: tuple[str, ...], message: str, helm_binary: str) -> None:
    out = render_error(("inference.ingress.enabled=true", "inference.ingress.scheme=internet-facing", *sets))
    assert message in out
    assert "or keep inference.ingress.scheme=internal" in out


def test_internet_facing_with_tls_and_a_key_wires_the_key_into_vllm() -> None:
    r = render((str(KPS),))
    ann = r.one("Ingress", "inference")["metadata"]["annotations"]
    assert ann["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert json.loads(ann["alb.ingress.kubernetes.io/listen-ports"]) == [{"HTTP": 80}, {"HTTPS": 443}]
    env = env_of(container(r.one("Deployment", "inference")))
    assert env["VLLM_API_KEY"]["valueFrom"] == {
        "secretKeyRef": {"name": "inference-api-key", "key": "api-key"}
    }
    # The helm test sends the key, or /v1/models would answer 401.
    test_pod = next(
        p for p in r.of_kind("Pod") if p["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
    )
    c = container(test_pod)
    assert env_of(c)["API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "inference-api-key"
    assert "Authorization: Bearer $(API_KEY)" in c["args"]


def test_no_key_by_default(default: Rendered) -> None:
    assert "VLLM_API_KEY" not in env_of(container(default.one("Deployment", "inference")))


# --- 9. escape hatches, GPU resource name, dashboard ----------------------------------------

WORKLOADS = {
    "inference": "Deployment",
    "device-plugin": "DaemonSet",
    "dcgm-exporter": "DaemonSet",
    "prometheus": "Deployment",
    "prometheus-adapter": "Deployment",
    "grafana": "Deployment",
}


@pytest.mark.parametrize("part", sorted(WORKLOADS))
def test_every_workload_takes_args_env_runtime_class_and_annotations(part: str) -> None:
    r = render(
        sets=(
            f"{part}.extraArgs[0]=--extra-flag=1",
            f"{part}.extraEnv[0].name=EXTRA_ENV",
            f"{part}.extraEnv[0].value=x",
            f"{part}.runtimeClassName=nvidia",
            f"{part}.podAnnotations.example\\.com/note=yes",
        )
    )
    w = r.one(WORKLOADS[part], part)
    spec = pod_spec(w)
    c = container(w)
    assert spec["runtimeClassName"] == "nvidia"
    assert "--extra-flag=1" in c["args"]
    assert env_of(c)["EXTRA_ENV"]["value"] == "x"
    assert w["spec"]["template"]["metadata"]["annotations"]["example.com/note"] == "yes"


def test_gpu_resource_name_is_used_where_gpus_are_requested() -> None:
    r = render(
        sets=(
            "global.gpu.resourceName=nvidia.com/gpu.shared",
            "device-plugin.extraArgs[0]=--config-file=/config/time-slicing.yaml",
        )
    )
    res = container(r.one("Deployment", "inference"))["resources"]
    assert res["limits"] == {"memory": "12Gi", "nvidia.com/gpu.shared": 1}
    assert "nvidia.com/gpu" not in res["requests"]
    env = env_of(container(r.one("DaemonSet", "dcgm-exporter")))
    assert env["NVIDIA_RESOURCE_NAMES"]["value"] == "nvidia.com/gpu.shared"


def test_a_renamed_gpu_with_the_stock_device_plugin_is_refused(helm_binary: str) -> None:
    out = render_error(("global.gpu.resourceName=nvidia.com/gpu.shared",))
    assert "resourceName=nvidia.com/gpu.shared but the chart's device plugin advertises nvidia.com/gpu" in out


def _dashboard(r: Rendered) -> dict[str, Any]:
    cm = next(c for c in r.of_kind("ConfigMap") if "gpu-inference.json" in c.get("data", {}))
    return dict(json.loads(cm["data"]["gpu-inference.json"]))


def test_dashboard_uid_is_unique_per_release() -> None:
    a = _dashboard(render(namespace="team-a"))
    b = _dashboard(render(namespace="team-b"))
    assert a["uid"] != b["uid"]
    assert a["uid"] != "gpu-inference"
    assert len(a["uid"]) <= 40  # Grafana's limit
    assert "team-a" in a["title"]


def test_dashboard_has_namespace_pod_and_gpu_variables(default: Rendered) -> None:
    d = _dashboard(default)
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert {"namespace", "pod", "gpu"} <= set(variables)
    assert variables["namespace"]["current"]["value"] == NAMESPACE
    util = next(p for p in d["panels"] if p["title"] == "GPU utilization per pod")["targets"][0]["expr"]
    for matcher in ('namespace="$namespace"', 'pod=~"$pod"', 'gpu=~"$gpu"'):
        assert matcher in util
