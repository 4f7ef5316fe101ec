"""What the rendered chart must mean, not only parse as: the HPA, the one label mapping from the
DCGM exporter through Prometheus and the adapter to the HPA, scheduling, security and wiring."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .conftest import (
    GPU_SIGNAL,
    NAMESPACE,
    RELEASE,
    SCENARIOS,
    Rendered,
    pod_spec,
    render,
    render_notes,
    scale_target_ref,
)

pytestmark = pytest.mark.unit

GPU = "nvidia.com/gpu"
GPU_PARTS = {"inference", "device-plugin", "dcgm-exporter"}
AGENTS_NS = f"{NAMESPACE}-gpu-agents"


def component(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(obj)
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def prometheus_config(r: Rendered) -> dict[str, Any]:
    cm = r.one("ConfigMap", "prometheus")
    return dict(yaml.safe_load(cm["data"]["prometheus.yml"]))


def adapter_rules(r: Rendered) -> list[dict[str, Any]]:
    cm = r.one("ConfigMap", "prometheus-adapter")
    return list(yaml.safe_load(cm["data"]["config.yaml"])["rules"])


def adapter_args(r: Rendered) -> dict[str, str]:
    args = r.one("Deployment", "prometheus-adapter")["spec"]["template"]["spec"]["containers"][0]["args"]
    return dict(a.removeprefix("--").split("=", 1) for a in args)


def hpa(r: Rendered) -> dict[str, Any]:
    found = r.of_kind("HorizontalPodAutoscaler")
    assert len(found) == 1
    return found[0]


# --- the seven parts -------------------------------------------------------------------------


def test_default_renders_all_seven_parts(default: Rendered) -> None:
    assert default.one("Deployment", "inference")
    assert default.one("Service", "inference")
    assert default.one("DaemonSet", "device-plugin")
    assert default.one("DaemonSet", "dcgm-exporter")
    assert default.one("Deployment", "prometheus")
    assert default.one("Deployment", "prometheus-adapter")
    assert {a["metadata"]["name"] for a in default.of_kind("APIService")} == {
        "v1beta1.custom.metrics.k8s.io",
        "v1beta2.custom.metrics.k8s.io",
    }
    assert default.one("Deployment", "grafana")
    assert hpa(default)["apiVersion"] == "autoscaling/v2"


# --- HPA -------------------------------------------------------------------------------------


def test_hpa_scales_the_inference_deployment_on_gpu_utilization(gpu_default: Rendered) -> None:
    default = gpu_default
    h = hpa(default)
    deployment = default.one("Deployment", "inference")
    assert h["spec"]["scaleTargetRef"] == scale_target_ref(deployment)
    assert h["spec"]["minReplicas"] == 1
    assert h["spec"]["maxReplicas"] == 4
    assert h["spec"]["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "DCGM_FI_DEV_GPU_UTIL"},
                "target": {"type": "AverageValue", "averageValue": "80"},
            },
        }
    ]


def test_hpa_behavior_is_explicit_fast_up_stabilised_down(default: Rendered) -> None:
    behavior = hpa(default)["spec"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 60
    assert behavior["scaleUp"]["policies"]
    assert behavior["scaleDown"]["policies"]


def test_queue_depth_is_a_second_hpa_metric_the_adapter_serves() -> None:
    r = render((str(SCENARIOS["04-queue-depth"]),))
    metrics = hpa(r)["spec"]["metrics"]
    assert [m["pods"]["metric"]["name"] for m in metrics] == ["DCGM_FI_DEV_GPU_UTIL", "inference_queue_depth"]
    assert metrics[1]["pods"]["target"] == {"type": "AverageValue", "averageValue": "4"}
    queue_rule = next(rule for rule in adapter_rules(r) if rule["name"]["as"] == "inference_queue_depth")
    assert queue_rule["seriesQuery"].startswith("vllm:num_requests_waiting{")
    assert queue_rule["resources"]["overrides"] == {
        "namespace": {"resource": "namespace"},
        "pod": {"resource": "pod"},
    }


def test_no_replicas_while_the_hpa_owns_them(scenario: tuple[str, Rendered]) -> None:
    name, r = scenario
    deployment = r.one("Deployment", "inference")
    if r.of_kind("HorizontalPodAutoscaler") or r.of_kind("ScaledObject"):
        assert "replicas" not in deployment["spec"], name
    else:
        assert deployment["spec"]["replicas"] == 2, name


def test_local_overlay_values_reach_the_objects() -> None:
    r = render((str(SCENARIOS["05-local-overlay"]),))
    cfg = prometheus_config(r)
    assert cfg["global"]["scrape_interval"] == "5s"
    assert cfg["global"]["scrape_timeout"] == "5s"  # never longer than the interval
    assert adapter_args(r)["metrics-relist-interval"] == "10s"
    h = hpa(r)["spec"]
    assert (h["minReplicas"], h["maxReplicas"]) == (1, 3)
    assert h["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 60
    startup = r.one("Deployment", "inference")["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    assert (startup["periodSeconds"], startup["failureThreshold"]) == (2, 30)


# --- one label mapping: DCGM exporter -> Prometheus -> adapter -> HPA ------------------------


def test_dcgm_exporter_attributes_gpus_to_pods(default: Rendered) -> None:
    ds = default.one("DaemonSet", "dcgm-exporter")
    c = ds["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["DCGM_EXPORTER_KUBERNETES"] == "true"
    assert int(env["DCGM_EXPORTER_INTERVAL"]) < 30000  # shorter than upstream's 30 s
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert "/var/lib/kubelet/pod-resources" in mounts
    counters = default.one("ConfigMap", "dcgm-exporter")["data"]["counters.csv"]
    fields = {
        line.split(",")[0].strip() for line in counters.splitlines() if line and not line.startswith("#")
    }
    for needed in (
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_FB_FREE",
        "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_SM_CLOCK",
        "DCGM_FI_DEV_MEM_CLOCK",
        "DCGM_FI_DEV_XID_ERRORS",
        "DCGM_FI_DEV_THERMAL_VIOLATION",
    ):
        assert needed in fields
    service = default.one("Service", "dcgm-exporter")
    assert service["spec"]["ports"][0]["port"] == 9400
    assert c["ports"][0] == {"name": "metrics", "containerPort": 9400, "protocol": "TCP"}


def test_prometheus_keeps_the_exporters_pod_labels(default: Rendered) -> None:
    jobs = {j["job_name"]: j for j in prometheus_config(default)["scrape_configs"]}
    dcgm = jobs["dcgm-exporter"]
    assert dcgm["honor_labels"] is True
    assert [sd["role"] for sd in dcgm["kubernetes_sd_configs"]] == ["pod"]
    assert dcgm["kubernetes_sd_configs"][0]["namespaces"]["names"] == [AGENTS_NS]
    targets = {rc.get("target_label") for rc in dcgm["relabel_configs"]}
    # Target labels named pod/namespace would turn the series' own into exported_pod/exported_namespace.
    assert not targets & {"pod", "namespace"}
    keep_port = [
        rc
        for rc in dcgm["relabel_configs"]
        if rc.get("source_labels") == ["__meta_kubernetes_pod_container_port_name"]
    ]
    assert keep_port[0]["regex"] == "metrics"
    inference = jobs["inference"]
    assert inference["metrics_path"] == "/metrics"
    assert [sd["role"] for sd in inference["kubernetes_sd_configs"]] == ["pod"]
    assert {"pod", "namespace"} <= {rc.get("target_label") for rc in inference["relabel_configs"]}


def _gpu_rule_mapping(r: Rendered, namespace_label: str, pod_label: str) -> dict[str, Any]:
    """The adapter's GPU rule, checked: it selects and maps these labels and serves the HPA's metric."""
    gpu_rule = adapter_rules(r)[0]
    assert gpu_rule["seriesQuery"] == f'DCGM_FI_DEV_GPU_UTIL{{{namespace_label}!="",{pod_label}!=""}}'
    assert gpu_rule["resources"]["overrides"] == {
        namespace_label: {"resource": "namespace"},
        pod_label: {"resource": "pod"},
    }
    assert gpu_rule["name"]["as"] == hpa(r)["spec"]["metrics"][0]["pods"]["metric"]["name"]
    return dict(gpu_rule)


def test_adapter_maps_the_same_labels_and_exposes_the_hpa_metric(gpu_default: Rendered) -> None:
    default = gpu_default
    gpu_rule = _gpu_rule_mapping(default, "namespace", "pod")
    # Averaged over a pod's GPUs, never summed.
    assert gpu_rule["metricsQuery"].startswith("avg by (<<.GroupBy>>)")


def test_existing_cluster_maps_gpu_operator_label_names(existing: Rendered) -> None:
    _gpu_rule_mapping(existing, "exported_namespace", "exported_pod")
    rule = existing.of_kind("PrometheusRule")[0]
    recorded = {r["record"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"] if "record" in r}
    assert "label_replace(" in recorded["gpu_inference:gpu_utilization:avg"]
    assert '"exported_pod"' in recorded["gpu_inference:gpu_utilization:avg"]


def test_adapter_is_wired_to_the_chart_prometheus(default: Rendered) -> None:
    args = adapter_args(default)
    service = default.one("Service", "prometheus")
    assert args["prometheus-url"] == f"http://{service['metadata']['name']}.{NAMESPACE}.svc:9090"
    assert args["metrics-relist-interval"] == "30s"
    assert args["config"] == "/etc/adapter/config.yaml"


def test_lead_contract_configmaps(default: Rendered) -> None:
    prom = default.one("ConfigMap", "prometheus")
    assert set(prom["data"]) == {"prometheus.yml", "recording_rules.yml", "alerting_rules.yml"}
    cfg = prometheus_config(default)
    assert cfg["rule_files"] == ["/etc/prometheus/recording_rules.yml", "/etc/prometheus/alerting_rules.yml"]
    assert cfg["global"]["scrape_interval"] == "15s"
    for job in cfg["scrape_configs"]:
        for sd in job.get("kubernetes_sd_configs", []):
            assert sd["role"] == "pod"
    adapter = default.one("ConfigMap", "prometheus-adapter")
    assert set(adapter["data"]) == {"config.yaml"}
    deployment = default.one("Deployment", "prometheus")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == prom["metadata"]["name"]


def test_alerts_cover_the_issue(default: Rendered) -> None:
    rules = yaml.safe_load(default.one("ConfigMap", "prometheus")["data"]["alerting_rules.yml"])
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert names == {
        "GPUUtilizationHighSustained",
        "GPUMemoryNearFull",
        "GPUTemperatureHigh",
        "GPUThermalThrottling",
        "GPUXidHardwareError",
        "GPUXidApplicationError",
        "GPUXidOtherError",
        "InferenceHPAAtMaxReplicas",
        "InferenceCustomMetricMissing",
    }


def test_adapter_rolls_when_its_rules_change(gpu_default: Rendered) -> None:
    default = gpu_default
    other = render(sets=(*GPU_SIGNAL, "wiring.labels.pod=exported_pod"))

    def checksum(r: Rendered) -> str:
        return str(
            r.one("Deployment", "prometheus-adapter")["spec"]["template"]["metadata"]["annotations"][
                "checksum/config"
            ]
        )

    assert checksum(default) != checksum(other)


# --- existing-cluster mode -------------------------------------------------------------------


def test_existing_cluster_renders_only_what_it_needs(existing: Rendered) -> None:
    assert not existing.of_kind("DaemonSet")
    assert not existing.of_kind("Namespace")
    deployments = {component(d) for d in existing.of_kind("Deployment")}
    assert deployments == {"inference", "prometheus-adapter"}
    assert not [c for c in existing.of_kind("ConfigMap") if component(c) == "prometheus"]
    assert (
        adapter_args(existing)["prometheus-url"]
        == "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
    )
    assert adapter_args(existing)["metrics-relist-interval"] == "1m"
    assert hpa(existing)


def test_existing_cluster_ships_monitors_and_a_sidecar_dashboard(existing: Rendered) -> None:
    pm = existing.of_kind("PodMonitor")[0]
    assert pm["apiVersion"] == "monitoring.coreos.com/v1"
    assert pm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert pm["spec"]["podMetricsEndpoints"][0]["port"] == "http"
    deployment = existing.one("Deployment", "inference")
    assert pm["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    pr = existing.of_kind("PrometheusRule")[0]
    assert pr["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    dashboards = [
        c for c in existing.of_kind("ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    assert len(dashboards) == 1
    assert dashboards[0]["metadata"]["namespace"] == "monitoring"
    dashboard = json.loads(dashboards[0]["data"]["gpu-inference.json"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert any("exported_pod" in e for e in exprs)


# --- dashboards and Grafana ------------------------------------------------------------------


def test_dashboard_panels_and_no_placeholders_left(default: Rendered) -> None:
    cm = default.get("ConfigMap", f"{RELEASE}-dashboards")
    text = cm["data"]["gpu-inference.json"]
    assert "__" not in text.replace("__name__", "")
    dashboard = json.loads(text)
    titles = {p["title"] for p in dashboard["panels"]}
    assert {
        "GPU utilization per pod",
        "VRAM used per pod",
        "GPU temperature per pod",
        "GPU power per pod",
        "Replicas and GPU nodes",
        "Requests per second",
        "Request latency",
        "GPU nodes cost per hour",
    } <= titles
    cost = next(p for p in dashboard["panels"] if p["title"] == "GPU nodes cost per hour")
    assert cost["targets"][0]["expr"].endswith("* 0.526")


def test_grafana_is_wired_and_keeps_its_password_in_a_secret(default: Rendered) -> None:
    provisioning = default.get("ConfigMap", f"{RELEASE}-grafana-provisioning")
    ds = yaml.safe_load(provisioning["data"]["datasources.yaml"])["datasources"][0]
    assert ds["url"] == adapter_args(default)["prometheus-url"]
    deployment = default.one("Deployment", "grafana")
    spec = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"]["value"] == "/etc/grafana/admin/admin-password"
    volumes = {v["name"]: v for v in spec["volumes"]}
    secret = default.get("Secret", volumes["admin"]["secret"]["secretName"])
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert len(base64.b64decode(secret["data"]["admin-password"])) == 32
    assert volumes["dashboards"]["configMap"]["name"] == f"{RELEASE}-dashboards"


def test_grafana_existing_secret_is_used_as_is() -> None:
    r = render(sets=("grafana.admin.existingSecret=my-grafana",))
    assert not [s for s in r.of_kind("Secret") if component(s) == "grafana"]
    volumes = {v["name"]: v for v in r.one("Deployment", "grafana")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["admin"]["secret"]["secretName"] == "my-grafana"


# --- adapter TLS and RBAC --------------------------------------------------------------------


def test_apiservices_verify_the_adapter_with_a_ca_bundle(default: Rendered) -> None:
    secret = default.one("Secret", "prometheus-adapter")
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    service = default.one("Service", "prometheus-adapter")
    dns = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )
    assert f"{service['metadata']['name']}.{NAMESPACE}.svc" in dns
    for api in default.of_kind("APIService"):
        assert not api["spec"].get("insecureSkipTLSVerify")
        assert api["spec"]["service"] == {
            "name": service["metadata"]["name"],
            "namespace": NAMESPACE,
            "port": 443,
        }
        ca = x509.load_pem_x509_certificate(base64.b64decode(api["spec"]["caBundle"]))
        assert cert.issuer == ca.subject
        key = ca.public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        assert cert.signature_hash_algorithm is not None
        key.verify(
            cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm
        )


def test_rbac_is_least_privilege(default: Rendered) -> None:
    for role in default.of_kind("ClusterRole") + default.of_kind("Role"):
        for rule in role["rules"]:
            assert "secrets" not in rule.get("resources", []), role["metadata"]["name"]
            assert "*" not in rule.get("resources", []), role["metadata"]["name"]
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, role["metadata"]["name"]
    reader = default.get("ClusterRole", f"{RELEASE}-prometheus-adapter-resource-reader")
    assert reader["rules"] == [
        {"apiGroups": [""], "resources": ["namespaces", "pods"], "verbs": ["get", "list", "watch"]}
    ]
    bindings = {
        b["roleRef"]["name"] for b in default.of_kind("ClusterRoleBinding") + default.of_kind("RoleBinding")
    }
    assert {"system:auth-delegator", "extension-apiserver-authentication-reader"} <= bindings
    auth_reader = next(
        b
        for b in default.of_kind("RoleBinding")
        if b["roleRef"]["name"] == "extension-apiserver-authentication-reader"
    )
    assert auth_reader["metadata"]["namespace"] == "kube-system"
    # Prometheus discovers pods only in the namespaces it scrapes, with namespaced Roles.
    prom_roles = [r for r in default.of_kind("Role") if component(r) == "prometheus"]
    assert {r["metadata"]["namespace"] for r in prom_roles} == {NAMESPACE, AGENTS_NS}
    assert not [r for r in default.of_kind("ClusterRole") if component(r) == "prometheus"]


# --- scheduling ------------------------------------------------------------------------------


def tolerates_gpu(obj: dict[str, Any]) -> bool:
    return any(t.get("key") == GPU for t in pod_spec(obj).get("tolerations", []))


def test_gpu_toleration_only_where_needed(scenario: tuple[str, Rendered]) -> None:
    name, r = scenario
    for w in r.workloads():
        part = component(w)
        assert tolerates_gpu(w) == (part in GPU_PARTS), f"{name}: {w['kind']}/{w['metadata']['name']}"
        if part in GPU_PARTS:
            assert pod_spec(w)["nodeSelector"], f"{name}: {part} has no GPU node selector"


def test_gpu_pods_select_the_eksctl_gpu_node_group(default: Rendered) -> None:
    for part in GPU_PARTS:
        kind = "Deployment" if part == "inference" else "DaemonSet"
        assert pod_spec(default.one(kind, part))["nodeSelector"] == {"gpu-inference.io/node-pool": "gpu"}
        assert {"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in pod_spec(
            default.one(kind, part)
        )["tolerations"]
    for part in ("prometheus", "prometheus-adapter", "grafana"):
        assert pod_spec(default.one("Deployment", part))["nodeSelector"] == {
            "gpu-inference.io/node-pool": "system"
        }


def test_the_gpu_is_a_whole_limit(scenario: tuple[str, Rendered]) -> None:
    name, r = scenario
    res = r.one("Deployment", "inference")["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert res["limits"][GPU] == 1, name
    assert res["requests"].get(GPU, 1) == res["limits"][GPU], name


def test_pdb_never_blocks_a_drain(default: Rendered) -> None:
    pdb = default.one("PodDisruptionBudget", "inference")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in pdb["spec"]
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert (
        pdb["spec"]["selector"]["matchLabels"]
        == default.one("Deployment", "inference")["spec"]["selector"]["matchLabels"]
    )


# --- the inference server --------------------------------------------------------------------


def test_vllm_preset_runs_on_a_t4(default: Rendered) -> None:
    c = default.one("Deployment", "inference")["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "docker.io/vllm/vllm-openai:v0.11.2"
    assert c["command"] == ["vllm", "serve"]
    assert "--dtype=half" in c["args"]
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["HF_HOME"].startswith("/models/")
    assert {m["mountPath"] for m in c["volumeMounts"]} >= {"/models", "/dev/shm", "/tmp"}
    # Probes sized for model load: the startup probe allows >= 10 minutes before liveness starts.
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}


def test_custom_image_mode_with_shared_cache_and_https_ingress() -> None:
    r = render((str(SCENARIOS["03-custom-image"]),))
    deployment = r.one("Deployment", "inference")
    c = deployment["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == (
        "registry.example.com/mirror/example/llama-server:b4500@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    )
    assert c["command"] == ["/app/llama-server"]
    assert c["ports"][0]["containerPort"] == 8080
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    claim = volumes["model-cache"]["persistentVolumeClaim"]["claimName"]
    pvc = r.get("PersistentVolumeClaim", claim)
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    ingress = r.one("Ingress", "inference")
    ann = ingress["metadata"]["annotations"]
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert ann["alb.ingress.kubernetes.io/scheme"] == "internal"  # the default
    assert json.loads(ann["alb.ingress.kubernetes.io/listen-ports"]) == [{"HTTP": 80}, {"HTTPS": 443}]
    assert ann["alb.ingress.kubernetes.io/certificate-arn"].startswith("arn:aws:acm:")
    assert ann["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    rule = next(x for x in adapter_rules(r) if x["name"]["as"] == "inference_queue_depth")
    assert rule["seriesQuery"].startswith("llamacpp:requests_deferred{")


def test_every_image_is_pinned_and_the_registry_overridable(scenario: tuple[str, Rendered]) -> None:
    name, r = scenario
    for w in r.workloads():
        for c in containers(w):
            image = c["image"]
            last = image.rsplit("/", 1)[-1]
            assert "@sha256:" in image or (":" in last and not last.endswith(":latest")), f"{name}: {image}"
            if name == "03-custom-image":
                assert image.startswith("registry.example.com/mirror/"), image
                assert pod_spec(w)["imagePullSecrets"] == [{"name": "regcred"}]


# --- security --------------------------------------------------------------------------------

RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def restricted_violations(obj: dict[str, Any]) -> list[str]:
    """Pod Security Standards, profile restricted.

    Source: kubernetes.io/docs/concepts/security/pod-security-standards (baseline + restricted).
    """
    spec = pod_spec(obj)
    psc = spec.get("securityContext", {})
    out = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            out.append(field)
    for v in spec.get("volumes", []):
        kinds = set(v) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            out.append(f"volume {v['name']}: {kinds}")
    allowed = ("RuntimeDefault", "Localhost")
    if psc.get("seccompProfile", {}).get("type") not in allowed and any(
        c.get("securityContext", {}).get("seccompProfile", {}).get("type") not in allowed
        for c in containers(obj)
    ):
        out.append("seccompProfile")
    for c in containers(obj):
        sc = c.get("securityContext", {})
        if sc.get("privileged"):
            out.append(f"{c['name']}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{c['name']}: allowPrivilegeEscalation")
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            out.append(f"{c['name']}: runAsNonRoot")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            out.append(f"{c['name']}: runAsUser 0")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            out.append(f"{c['name']}: capabilities.drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            out.append(f"{c['name']}: capabilities.add {caps['add']}")
        for p in c.get("ports", []):
            if p.get("hostPort"):
                out.append(f"{c['name']}: hostPort")
    return out


def test_release_namespace_pods_meet_pod_security_restricted(scenario: tuple[str, Rendered]) -> None:
    name, r = scenario
    for w in r.workloads():
        ns = w["metadata"].get("namespace")
        if ns == NAMESPACE:
            assert not restricted_violations(w), (
                f"{name}: {w['kind']}/{w['metadata']['name']}: {restricted_violations(w)}"
            )


def test_host_access_only_for_gpu_agents_in_a_privileged_namespace(default: Rendered) -> None:
    privileged = [w for w in default.workloads() if restricted_violations(w)]
    assert {component(w) for w in privileged} == {"device-plugin", "dcgm-exporter"}
    for w in privileged:
        assert w["metadata"]["namespace"] == AGENTS_NS
        host_paths = [v["hostPath"]["path"] for v in pod_spec(w)["volumes"] if "hostPath" in v]
        assert (
            host_paths
            == {
                "device-plugin": ["/var/lib/kubelet/device-plugins"],
                "dcgm-exporter": ["/var/lib/kubelet/pod-resources"],
            }[component(w)]
        )
        for c in containers(w):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert not sc.get("privileged")
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert not sc["capabilities"].get("add")
    ns = default.get("Namespace", AGENTS_NS)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert {w["metadata"].get("namespace") for w in default.workloads()} == {NAMESPACE, AGENTS_NS}


def test_the_pss_checker_catches_a_violation(default: Rendered) -> None:
    # The checker above must be able to fail: a root container with a hostPath volume.
    assert restricted_violations(default.one("DaemonSet", "dcgm-exporter"))


def test_network_policies_keep_the_adapter_reachable_by_the_api_server() -> None:
    r = render((str(SCENARIOS["04-queue-depth"]),))
    policies = {component(p): p for p in r.of_kind("NetworkPolicy")}
    assert set(policies) == {"inference", "prometheus", "prometheus-adapter", "grafana", "dcgm-exporter"}
    adapter = policies["prometheus-adapter"]["spec"]
    assert adapter["ingress"] == [{"ports": [{"port": "https", "protocol": "TCP"}]}]  # from anywhere
    prom_from = [
        p["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for p in policies["prometheus"]["spec"]["ingress"][0]["from"]
    ]
    assert sorted(prom_from) == ["grafana", "prometheus-adapter"]
    dcgm = policies["dcgm-exporter"]
    assert dcgm["metadata"]["namespace"] == AGENTS_NS
    peer = dcgm["spec"]["ingress"][0]["from"][0]
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "prometheus"
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": NAMESPACE}


# --- helm test -------------------------------------------------------------------------------


def test_helm_test_hook_checks_the_inference_service(default: Rendered) -> None:
    pods = [
        p
        for p in default.of_kind("Pod")
        if p["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
    ]
    assert len(pods) == 1
    c = pods[0]["spec"]["containers"][0]
    service = default.one("Service", "inference")
    base = f"http://{service['metadata']['name']}.{NAMESPACE}.svc:{service['spec']['ports'][0]['port']}"
    assert c["command"] == ["curl"]
    assert "--fail" in c["args"]
    assert c["args"][-2:] == [f"{base}/health", f"{base}/v1/models"]
    assert not restricted_violations(pods[0])


# --- NOTES.txt -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sets", "metric"), [((), "inference_running_requests"), (GPU_SIGNAL, "DCGM_FI_DEV_GPU_UTIL")]
)
def test_notes_print_the_commands_to_check_the_hpa_and_the_metric(sets: tuple[str, ...], metric: str) -> None:
    notes = render_notes(sets=sets)
    for command in (
        f"kubectl -n {NAMESPACE} get hpa {RELEASE}",
        f"kubectl -n {NAMESPACE} describe hpa {RELEASE}",
        f'kubectl get --raw "/apis/custom.metrics.k8s.io/v1beta2/namespaces/{NAMESPACE}/pods/*/{metric}"',
        f"helm test {RELEASE} -n {NAMESPACE}",
        f"kubectl label namespace {NAMESPACE} pod-security.kubernetes.io/enforce=restricted",
    ):
        assert command in notes, notes
