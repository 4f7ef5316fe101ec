"""autoscaling.engine=keda: the KEDA ScaledObject the chart renders instead of the HPA and the
adapter's rules, validated against KEDA's own CRD schema and checked to carry the same queries,
targets and behavior as the HPA engine.

The CRD comes from the KEDA Go module at the pinned version (`go mod download`, kept by Go's module
cache), not from a copy in this repository."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from gpu_inference.adapters.process import run

from .conftest import NAMESPACE, SCENARIOS, Rendered, render, render_notes, scale_target_ref

pytestmark = pytest.mark.unit

KEDA_MODULE = "github.com/kedacore/keda/v2"
KEDA_VERSION = "v2.21.0"
KEDA = (str(SCENARIOS["09-keda"]),)


def _strict(schema: Any) -> Any:
    """The CRD schema with unknown fields rejected, as `kubectl apply` (field validation Strict)
    rejects them: every object schema that lists properties and neither allows extra properties
    nor preserves unknown fields gets additionalProperties: false."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(x) for x in schema]
    return schema


@pytest.fixture(scope="session")
def scaledobject_schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """KEDA's ScaledObject v1alpha1 OpenAPI schema from the module's config/crd/bases."""
    # Outside any module, so the repository's go.mod (if any) plays no part.
    result = run(
        "go",
        ["mod", "download", "-json", f"{KEDA_MODULE}@{KEDA_VERSION}"],
        timeout=300,
        cwd=tmp_path_factory.mktemp("keda-module"),
        check=False,
    )
    assert result.returncode == 0, (
        f"go mod download {KEDA_MODULE}@{KEDA_VERSION}:\n{result.stdout}{result.stderr}"
    )
    module_dir = Path(json.loads(result.stdout)["Dir"])
    crd = yaml.safe_load((module_dir / "config" / "crd" / "bases" / "keda.sh_scaledobjects.yaml").read_text())
    assert crd["spec"]["names"]["kind"] == "ScaledObject"
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return dict(_strict(version["schema"]["openAPIV3Schema"]))


def _errors(schema: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(obj)]


def scaledobject(r: Rendered) -> dict[str, Any]:
    (so,) = r.of_kind("ScaledObject")
    return so


# --- KEDA's schema ------------------------------------------------------------------------------

KEDA_VARIANTS = {
    "ci-09": (),
    "every-signal": (
        "autoscaling.signals={gpuUtilization,runningRequests,queueDepth,kvCacheUsage,custom}",
        "autoscaling.signalSettings.custom.query=vllm:num_requests_running",
        "autoscaling.signalSettings.custom.series=vllm:num_requests_running",
        "autoscaling.signalSettings.queueDepth.window=1m",
    ),
    "tolerance": (
        "autoscaling.behavior.scaleDown.tolerance=0.05",
        "autoscaling.behavior.scaleUp.tolerance=0",
    ),
    "kube-state-metrics": ("wiring.kubeStateMetrics=true",),
}


@pytest.mark.parametrize("variant", sorted(KEDA_VARIANTS))
def test_scaledobject_matches_kedas_crd_schema(
    variant: str, scaledobject_schema: dict[str, Any], helm_binary: str
) -> None:
    so = scaledobject(render(KEDA, KEDA_VARIANTS[variant]))
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    assert not _errors(scaledobject_schema, so)


def test_schema_check_rejects_what_keda_would_reject(scaledobject_schema: dict[str, Any]) -> None:
    # The check must be able to fail: a typo'd field, a number where KEDA wants a string, a
    # fallback without its replicas, a trigger without a type.
    so = scaledobject(render(KEDA))
    bad = []
    for mutate in (
        lambda o: o["spec"].__setitem__("pollingIntervall", 15),
        lambda o: o["spec"]["triggers"][0]["metadata"].__setitem__("threshold", 80),
        lambda o: o["spec"]["fallback"].pop("replicas"),
        lambda o: o["spec"]["triggers"][0].pop("type"),
        lambda o: o["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleUp"].__setitem__(
            "stabilisationWindowSeconds", 0
        ),
    ):
        broken = copy.deepcopy(so)
        mutate(broken)
        bad.append(bool(_errors(scaledobject_schema, broken)))
    assert bad == [True] * 5


# --- what it means ------------------------------------------------------------------------------


def test_keda_replaces_the_hpa_and_the_adapter(helm_binary: str) -> None:
    r = render(KEDA)
    assert not r.of_kind("HorizontalPodAutoscaler")
    assert not r.of_kind("APIService")
    assert not [o for o in r.objects if "prometheus-adapter" in o["metadata"]["name"]]
    so = scaledobject(r)
    deployment = r.one("Deployment", "inference")
    assert so["spec"]["scaleTargetRef"] == scale_target_ref(deployment)
    assert "replicas" not in deployment["spec"]  # KEDA's HPA owns the count
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (1, 4)


def test_hpa_engine_renders_no_scaledobject(default: Rendered) -> None:
    assert not default.of_kind("ScaledObject")


def test_fallback_cooldown_polling_and_behavior_come_from_values(helm_binary: str) -> None:
    r = render(
        KEDA,
        (
            "autoscaling.keda.fallback.replicas=3",
            "autoscaling.keda.fallback.failureThreshold=5",
            "autoscaling.keda.cooldownPeriod=120",
            "autoscaling.keda.pollingInterval=10",
            "autoscaling.behavior.scaleDown.stabilizationWindowSeconds=600",
        ),
    )
    spec = scaledobject(r)["spec"]
    assert spec["fallback"] == {"failureThreshold": 5, "replicas": 3}
    assert (spec["cooldownPeriod"], spec["pollingInterval"]) == (120, 10)
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 600
    # The same behavior the HPA engine renders for the same values.
    hpa_render = render(sets=("autoscaling.behavior.scaleDown.stabilizationWindowSeconds=600",))
    (hpa,) = hpa_render.of_kind("HorizontalPodAutoscaler")
    assert behavior == hpa["spec"]["behavior"]


def test_one_trigger_per_signal_with_the_adapters_query_and_target(helm_binary: str) -> None:
    signals = "autoscaling.signals={preset,kvCacheUsage,queueDepth,gpuUtilization}"
    keda = scaledobject(render(KEDA, (signals,)))
    hpa_side = render(sets=(signals, "autoscaling.excludeNotReady=true"))
    rules = yaml.safe_load(hpa_side.one("ConfigMap", "prometheus-adapter")["data"]["config.yaml"])["rules"]
    (hpa,) = hpa_side.of_kind("HorizontalPodAutoscaler")
    prometheus = hpa_side.one("Service", "prometheus")["metadata"]["name"]
    # Pods of the Deployment (<name>-<pod-template-hash>-<suffix>), nothing else in the namespace.
    pod_regex = hpa_side.one("Deployment", "inference")["metadata"]["name"] + "-[a-z0-9]+-[a-z0-9]+"
    triggers = keda["spec"]["triggers"]
    assert [t["name"] for t in triggers] == [
        "runningrequests",
        "kvcacheusage",
        "queuedepth",
        "gpuutilization",
    ]
    for trigger, metric in zip(triggers, hpa["spec"]["metrics"], strict=True):
        assert trigger["type"] == "prometheus"
        # AverageValue: KEDA's HPA divides the summed signal by the replica count, the per-pod
        # target of the HPA engine.
        assert trigger["metricType"] == "AverageValue"
        md = trigger["metadata"]
        assert md["threshold"] == metric["pods"]["target"]["averageValue"]
        assert md["serverAddress"] == f"http://{prometheus}.{NAMESPACE}.svc:9090"
        (rule,) = [x for x in rules if x["name"]["as"] == metric["pods"]["metric"]["name"]]
        series = rule["seriesQuery"].split("{", 1)[0]
        overrides = rule["resources"]["overrides"]
        pod_label = next(k for k, v in overrides.items() if v["resource"] == "pod")
        ns_label = next(k for k, v in overrides.items() if v["resource"] == "namespace")
        filled = (
            rule["metricsQuery"]
            .replace("<<.Series>>", series)
            .replace("<<.LabelMatchers>>", f'{ns_label}="{NAMESPACE}",{pod_label}=~"{pod_regex}"')
            .replace("<<.GroupBy>>", pod_label)
        )
        assert md["query"] == f"sum({filled})"


def test_keda_scenario_records_the_same_signals(helm_binary: str) -> None:
    r = render(KEDA)
    rules = yaml.safe_load(r.one("ConfigMap", "prometheus")["data"]["recording_rules.yml"])
    recorded = {
        rule["labels"]["signal"]: rule["expr"]
        for g in rules["groups"]
        for rule in g["rules"]
        if rule.get("record") == "gpu_inference:autoscaling_signal:per_pod"
    }
    for trigger in scaledobject(r)["spec"]["triggers"]:
        name = {
            "kvcacheusage": "kvCacheUsage",
            "queuedepth": "queueDepth",
            "gpuutilization": "gpuUtilization",
        }[trigger["name"]]
        assert trigger["metadata"]["query"] == f"sum({recorded[name]})"


def test_notes_print_the_commands_to_check_the_scaledobject(helm_binary: str) -> None:
    notes = render_notes(sets=("autoscaling.engine=keda", "prometheus-adapter.enabled=false"))
    name = render(KEDA).one("Deployment", "inference")["metadata"]["name"]
    for command in (
        f"kubectl -n {NAMESPACE} get scaledobject {name}",
        f"kubectl -n {NAMESPACE} describe hpa keda-hpa-{name}",
        f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/",
    ):
        assert command in notes, notes
    assert "custom.metrics.k8s.io" not in notes
