"""Autoscaling signals: what each one renders into the HPA and the adapter's rules, the presets'
recommended sets, the metric names taken from `wiring`, smoothing and not-Ready exclusion in the
queries, the deprecated keys, per-HPA tolerance, and every bad combination failing with a message
that names the value and the fix."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from .conftest import (
    CHART,
    EXAMPLE_EXISTING,
    GPU_SIGNAL,
    NAMESPACE,
    RELEASE,
    SCENARIOS,
    Rendered,
    helm,
    render,
    render_error,
    render_notes,
)

pytestmark = pytest.mark.unit

CUSTOM = (
    "inference.preset=custom",
    "inference.image.repository=example/server",
    "inference.image.tag=1.0",
)


def hpa_metrics(r: Rendered) -> list[tuple[str, str]]:
    (hpa,) = r.of_kind("HorizontalPodAutoscaler")
    out = []
    for m in hpa["spec"]["metrics"]:
        assert m["type"] == "Pods"
        assert m["pods"]["target"]["type"] == "AverageValue"
        out.append((m["pods"]["metric"]["name"], m["pods"]["target"]["averageValue"]))
    return out


def adapter_rules(r: Rendered) -> list[dict[str, Any]]:
    cm = r.one("ConfigMap", "prometheus-adapter")
    return list(yaml.safe_load(cm["data"]["config.yaml"])["rules"])


def rule_for(r: Rendered, metric: str) -> dict[str, Any]:
    found = [x for x in adapter_rules(r) if x["name"]["as"] == metric]
    assert len(found) == 1, adapter_rules(r)
    return found[0]


def hpa_readable_metrics(r: Rendered) -> list[str]:
    role = r.get("ClusterRole", f"{RELEASE}-prometheus-adapter-custom-metrics-reader")
    return list(role["rules"][0]["resources"])


def signal_records(r: Rendered) -> dict[str, str]:
    """signal -> expr of gpu_inference:autoscaling_signal:per_pod in the chart's recording rules."""
    rules = yaml.safe_load(r.one("ConfigMap", "prometheus")["data"]["recording_rules.yml"])
    return {
        rule["labels"]["signal"]: rule["expr"]
        for g in rules["groups"]
        for rule in g["rules"]
        if rule.get("record") == "gpu_inference:autoscaling_signal:per_pod"
    }


# --- defaults: today's behaviour ----------------------------------------------------------------


def test_default_is_the_presets_set_running_requests_for_vllm(default: Rendered) -> None:
    # GPU utilization over-provisions a continuous-batching server (docs/benchmarks.md): the vllm
    # preset's recommended running requests is the default.
    assert hpa_metrics(default) == [("inference_running_requests", "96")]
    rules = adapter_rules(default)
    assert len(rules) == 1
    assert rules[0]["metricsQuery"] == "sum by (<<.GroupBy>>) (<<.Series>>{<<.LabelMatchers>>})"
    assert hpa_readable_metrics(default) == ["pods/inference_running_requests"]
    assert not default.of_kind("ScaledObject")


def test_the_designs_gpu_signal_is_one_value_away(helm_binary: str) -> None:
    r = render(sets=GPU_SIGNAL)
    assert hpa_metrics(r) == [("DCGM_FI_DEV_GPU_UTIL", "80")]
    (rule,) = adapter_rules(r)
    assert rule["metricsQuery"] == "avg by (<<.GroupBy>>) (<<.Series>>{<<.LabelMatchers>>})"
    assert hpa_readable_metrics(r) == ["pods/DCGM_FI_DEV_GPU_UTIL"]


# --- each signal on its own -----------------------------------------------------------------------

SIGNALS = {
    # name: (series, metric, target, aggregation per pod)
    "gpuUtilization": ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_GPU_UTIL", "80", "avg"),
    "runningRequests": ("vllm:num_requests_running", "inference_running_requests", "96", "sum"),
    "queueDepth": ("vllm:num_requests_waiting", "inference_queue_depth", "4", "sum"),
    "kvCacheUsage": ("vllm:kv_cache_usage_perc", "inference_kv_cache_usage", "0.7", "avg"),
}


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_each_signal_becomes_one_hpa_metric_and_one_adapter_rule(name: str, helm_binary: str) -> None:
    series, metric, target, agg = SIGNALS[name]
    r = render(sets=(f"autoscaling.signals={{{name}}}",))
    assert hpa_metrics(r) == [(metric, target)]
    (rule,) = adapter_rules(r)
    assert rule["name"] == {"matches": f"^{series}$", "as": metric}
    assert rule["seriesQuery"] == f'{series}{{namespace!="",pod!=""}}'
    assert rule["resources"]["overrides"] == {
        "namespace": {"resource": "namespace"},
        "pod": {"resource": "pod"},
    }
    assert rule["metricsQuery"] == f"{agg} by (<<.GroupBy>>) (<<.Series>>{{<<.LabelMatchers>>}})"
    assert hpa_readable_metrics(r) == [f"pods/{metric}"]
    assert list(signal_records(r)) == [name]


def test_request_rate_signal_is_a_rate_over_its_window(helm_binary: str) -> None:
    r = render(sets=("autoscaling.signals={requestRate}", "autoscaling.signalSettings.requestRate.target=26"))
    assert hpa_metrics(r) == [("inference_request_rate", "26")]
    (rule,) = adapter_rules(r)
    assert rule["seriesQuery"] == 'vllm:request_success_total{namespace!="",pod!=""}'
    assert rule["metricsQuery"] == "sum by (<<.GroupBy>>) (rate(<<.Series>>{<<.LabelMatchers>>}[1m]))"
    assert hpa_readable_metrics(r) == ["pods/inference_request_rate"]


def test_custom_promql_signal(helm_binary: str) -> None:
    query = "sum by (namespace, pod) (rate(vllm:request_success_total[2m]))"
    r = render(
        sets=(
            "autoscaling.signals={custom}",
            f"autoscaling.signalSettings.custom.query={query.replace(',', chr(92) + ',')}",
            "autoscaling.signalSettings.custom.series=vllm:request_success_total",
            "autoscaling.signalSettings.custom.target=3",
        )
    )
    assert hpa_metrics(r) == [("inference_custom_signal", "3")]
    (rule,) = adapter_rules(r)
    assert rule["seriesQuery"] == 'vllm:request_success_total{namespace!="",pod!=""}'
    # The user's query, kept to the pods the adapter asks for through the discovery series.
    assert rule["metricsQuery"] == (
        f"max by (<<.GroupBy>>) (({query}) and on (namespace, pod) <<.Series>>{{<<.LabelMatchers>>}})"
    )


def test_several_signals_the_hpa_follows_the_hottest(helm_binary: str) -> None:
    r = render(sets=("autoscaling.signals={gpuUtilization,queueDepth,kvCacheUsage}",))
    assert [m for m, _ in hpa_metrics(r)] == [
        "DCGM_FI_DEV_GPU_UTIL",
        "inference_queue_depth",
        "inference_kv_cache_usage",
    ]
    assert sorted(hpa_readable_metrics(r)) == sorted(
        ["pods/DCGM_FI_DEV_GPU_UTIL", "pods/inference_queue_depth", "pods/inference_kv_cache_usage"]
    )


# --- presets' recommended sets --------------------------------------------------------------------


def test_vllm_preset_set_is_running_requests(helm_binary: str) -> None:
    r = render(sets=("autoscaling.signals={preset}",))
    assert [m for m, _ in hpa_metrics(r)] == ["inference_running_requests"]


def test_switching_to_the_gpu_signal_is_one_value(default: Rendered) -> None:
    # The only difference between the two renders' HPAs is the metric list.
    switched = render(sets=GPU_SIGNAL)
    (before,) = default.of_kind("HorizontalPodAutoscaler")
    (after,) = switched.of_kind("HorizontalPodAutoscaler")
    assert before["spec"]["metrics"] != after["spec"]["metrics"]
    assert {k: v for k, v in before["spec"].items() if k != "metrics"} == {
        k: v for k, v in after["spec"].items() if k != "metrics"
    }


def test_custom_preset_set_is_the_gpu_plus_a_declared_queue(helm_binary: str) -> None:
    bare = render(sets=(*CUSTOM, "autoscaling.signals={preset}"))
    assert [m for m, _ in hpa_metrics(bare)] == ["DCGM_FI_DEV_GPU_UTIL"]
    with_queue = render(
        sets=(*CUSTOM, "inference.custom.queueSeries=tgi_queue_size", "autoscaling.signals={preset}")
    )
    assert [m for m, _ in hpa_metrics(with_queue)] == ["DCGM_FI_DEV_GPU_UTIL", "inference_queue_depth"]
    assert rule_for(with_queue, "inference_queue_depth")["seriesQuery"].startswith("tgi_queue_size{")


def test_custom_preset_takes_other_series_from_wiring(helm_binary: str) -> None:
    r = render(
        sets=(
            *CUSTOM,
            "autoscaling.signals={kvCacheUsage}",
            "wiring.kvCacheUsage.series=my_server_kv_usage_ratio",
        )
    )
    assert rule_for(r, "inference_kv_cache_usage")["seriesQuery"].startswith("my_server_kv_usage_ratio{")


def test_preset_set_combines_with_more_signals_without_duplicates(helm_binary: str) -> None:
    r = render((str(SCENARIOS["08-vllm-signals"]),))
    assert [m for m, _ in hpa_metrics(r)] == [
        "inference_kv_cache_usage",
        "inference_queue_depth",
        "DCGM_FI_DEV_GPU_UTIL",
    ]


# --- metric names are defined once, in wiring -----------------------------------------------------


def test_metric_names_come_from_wiring(helm_binary: str) -> None:
    metric_of = {
        "queueDepth": "waiting_per_pod",
        "kvCacheUsage": "kv_per_pod",
        "runningRequests": "running_per_pod",
    }
    renamed = tuple(f"wiring.{signal}.metric={metric}" for signal, metric in metric_of.items())
    r = render(sets=("autoscaling.signals={queueDepth,kvCacheUsage,runningRequests}", *renamed))
    names = list(metric_of.values())
    assert [m for m, _ in hpa_metrics(r)] == names
    assert sorted(x["name"]["as"] for x in adapter_rules(r)) == sorted(names)
    assert sorted(hpa_readable_metrics(r)) == sorted(f"pods/{n}" for n in names)


# --- smoothing and not-Ready exclusion ------------------------------------------------------------


def test_window_smooths_with_avg_over_time(helm_binary: str) -> None:
    r = render(sets=("autoscaling.signals={queueDepth}", "autoscaling.signalSettings.queueDepth.window=2m"))
    q = rule_for(r, "inference_queue_depth")["metricsQuery"]
    assert q == "sum by (<<.GroupBy>>) (avg_over_time(<<.Series>>{<<.LabelMatchers>>}[2m]))"
    assert "[2m]" in signal_records(r)["queueDepth"]


def test_not_ready_pods_are_joined_out_on_up_without_kube_state_metrics() -> None:
    r = render((str(SCENARIOS["08-vllm-signals"]),))
    for rule in adapter_rules(r):
        assert rule["metricsQuery"].endswith(
            f' and on (<<.GroupBy>>) (up{{job="inference",namespace="{NAMESPACE}"}} == 1)'
        ), rule


def test_not_ready_pods_are_joined_out_on_kube_state_metrics_with_mapped_labels(existing: Rendered) -> None:
    r = render((str(EXAMPLE_EXISTING),), sets=(*GPU_SIGNAL, "autoscaling.excludeNotReady=true"))
    q = rule_for(r, "DCGM_FI_DEV_GPU_UTIL")["metricsQuery"]
    ready = f'kube_pod_status_ready{{namespace="{NAMESPACE}",condition="true"}} == 1'
    # GPU Operator series carry the pod in exported_pod: the readiness series is mapped onto it.
    assert q.endswith(f'and on (<<.GroupBy>>) (label_replace({ready}, "exported_pod", "$1", "pod", "(.+)"))')
    # Without the switch the query is the plain one.
    assert rule_for(existing, "DCGM_FI_DEV_GPU_UTIL")["metricsQuery"].startswith("avg by (<<.GroupBy>>) (<<")
    assert "kube_pod_status_ready" not in rule_for(existing, "DCGM_FI_DEV_GPU_UTIL")["metricsQuery"]


# --- deprecated keys still work -------------------------------------------------------------------


def test_deprecated_gpu_target_and_queue_depth_keys_still_apply(helm_binary: str) -> None:
    r = render(
        sets=(
            *GPU_SIGNAL,
            "autoscaling.gpuUtilizationTarget=70",
            "autoscaling.queueDepth.enabled=true",
            "autoscaling.queueDepth.target=6",
        )
    )
    assert hpa_metrics(r) == [("DCGM_FI_DEV_GPU_UTIL", "70"), ("inference_queue_depth", "6")]


def test_deprecated_gpu_target_keeps_the_gpu_signal_on_beside_the_new_default(helm_binary: str) -> None:
    # Who set gpuUtilizationTarget scaled on GPU utilization (the old default): it stays on.
    r = render(sets=("autoscaling.gpuUtilizationTarget=70",))
    assert hpa_metrics(r) == [("inference_running_requests", "96"), ("DCGM_FI_DEV_GPU_UTIL", "70")]


def test_notes_name_the_new_key_for_a_deprecated_one(helm_binary: str) -> None:
    notes = render_notes(sets=("autoscaling.gpuUtilizationTarget=70",))
    assert "autoscaling.gpuUtilizationTarget -> autoscaling.signalSettings.gpuUtilization.target" in notes
    assert "gpuUtilization: DCGM_FI_DEV_GPU_UTIL from DCGM_FI_DEV_GPU_UTIL, target 70" in notes


def test_notes_list_a_metric_check_per_signal(helm_binary: str) -> None:
    notes = render_notes(sets=("autoscaling.signals={preset,kvCacheUsage,queueDepth}",))
    for metric in ("inference_running_requests", "inference_kv_cache_usage", "inference_queue_depth"):
        assert f'/apis/custom.metrics.k8s.io/v1beta2/namespaces/{NAMESPACE}/pods/*/{metric}"' in notes
    assert "Deprecated" not in notes


# --- per-HPA tolerance (KEP-4951) -----------------------------------------------------------------


def test_tolerance_is_rendered_as_a_quantity_and_valid_for_kubernetes_136(helm_binary: str) -> None:
    r = render(
        sets=("autoscaling.behavior.scaleDown.tolerance=0.05", "autoscaling.behavior.scaleUp.tolerance=0")
    )
    (hpa,) = r.of_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["behavior"]["scaleDown"]["tolerance"] == "0.05"
    assert hpa["spec"]["behavior"]["scaleUp"]["tolerance"] == "0"
    kubernetes_validate.validate(hpa, "1.36.0", strict=True)


def test_tolerance_on_a_cluster_without_the_field_fails(helm_binary: str) -> None:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", "1.30.0"]
    result = helm(*args, "--set", "autoscaling.behavior.scaleDown.tolerance=0.05")
    assert result.returncode != 0
    out = result.stderr
    assert "autoscaling.behavior.scaleDown.tolerance is set but the cluster runs Kubernetes v1.30.0" in out
    assert "Fix: remove autoscaling.behavior.scaleDown.tolerance" in out


# --- bad input: the message names the value and the fix -------------------------------------------

BAD = [
    pytest.param(
        (*CUSTOM, "autoscaling.signals={kvCacheUsage}"),
        [
            "autoscaling.signals includes kvCacheUsage but preset custom's server exports no "
            "KV-cache usage series",
            "Fix: set wiring.kvCacheUsage.series to the series your server exports, or remove kvCacheUsage",
        ],
        id="kv-cache-not-exported-by-custom",
    ),
    pytest.param(
        (*CUSTOM, "autoscaling.signals={runningRequests}"),
        ["autoscaling.signals includes runningRequests", "Fix: set wiring.runningRequests.series"],
        id="running-not-exported-by-custom",
    ),
    pytest.param(
        (*CUSTOM, "autoscaling.signals={queueDepth}"),
        ["autoscaling.signals includes queueDepth", "Fix: set wiring.queueDepth.series"],
        id="queue-not-exported-by-custom",
    ),
    pytest.param(
        (
            *CUSTOM,
            "inference.custom.queueSeries=q",
            "inference.custom.metricsPath=",
            "autoscaling.signals={queueDepth}",
        ),
        [
            "(inference.custom.metricsPath is empty), so nothing scrapes q",
            "Fix: set inference.custom.metricsPath",
        ],
        id="server-signal-without-metrics-path",
    ),
    pytest.param(
        ("autoscaling.signals={custom}",),
        ["autoscaling.signalSettings.custom.query or .series is empty", "Fix: set query to PromQL"],
        id="custom-without-query",
    ),
    pytest.param(
        ("autoscaling.signalSettings.gpuUtilization.target=95",),
        [
            "autoscaling.signalSettings.gpuUtilization.target=95 is outside 1-90",
            "Fix: set autoscaling.signalSettings.gpuUtilization.target between 1 and 90",
        ],
        id="gpu-target-above-90",
    ),
    pytest.param(
        ("autoscaling.signals={queueDepth}", "autoscaling.signalSettings.queueDepth.window=20s"),
        [
            "autoscaling.signalSettings.queueDepth.window (20s) is shorter than two scrape intervals",
            "Fix: set the window to at least 30s",
        ],
        id="window-shorter-than-two-scrapes",
    ),
    pytest.param(
        (
            "autoscaling.excludeNotReady=true",
            "prometheus.enabled=false",
            "wiring.prometheusUrl=http://p:9090",
        ),
        [
            "autoscaling.excludeNotReady=true but the Prometheus is not the chart's",
            "Fix: set wiring.kubeStateMetrics=true",
        ],
        id="not-ready-exclusion-without-a-readiness-series",
    ),
    pytest.param(
        ("autoscaling.engine=keda",),
        [
            "autoscaling.engine=keda but prometheus-adapter.enabled=true",
            "Fix: set prometheus-adapter.enabled=false",
        ],
        id="keda-with-the-adapter",
    ),
    pytest.param(
        (
            "autoscaling.engine=keda",
            "prometheus-adapter.enabled=false",
            "autoscaling.keda.fallback.replicas=9",
        ),
        [
            "autoscaling.keda.fallback.replicas=9 is outside autoscaling.minReplicas-maxReplicas (1-4)",
            "Fix: set autoscaling.keda.fallback.replicas between 1 and 4",
        ],
        id="keda-fallback-out-of-range",
    ),
    pytest.param(
        (
            "autoscaling.engine=keda",
            "prometheus-adapter.enabled=false",
            "prometheus.enabled=false",
            "grafana.enabled=false",
            "wiring.dcgmExporter.namespace=gpu-operator",
        ),
        ["autoscaling.engine=keda but no Prometheus for its triggers", "Fix: set wiring.prometheusUrl"],
        id="keda-without-prometheus",
    ),
    # Single values: rejected by values.schema.json, which names the path.
    pytest.param(("autoscaling.signals={gpuUtilisation}",), ["/autoscaling/signals/0"], id="unknown-signal"),
    pytest.param(("autoscaling.engine=vpa",), ["/autoscaling/engine"], id="unknown-engine"),
    pytest.param(
        ("autoscaling.signalSettings.kvCacheUsage.target=70",),
        ["/autoscaling/signalSettings/kvCacheUsage/target"],
        id="kv-target-as-percent",
    ),
    pytest.param(
        ("autoscaling.signalSettings.queueDepth.window=soon",),
        ["/autoscaling/signalSettings/queueDepth/window"],
        id="window-not-a-duration",
    ),
]


@pytest.mark.parametrize(("sets", "expected"), BAD)
def test_bad_signal_values_fail_with_the_value_and_the_fix(
    sets: tuple[str, ...], expected: list[str], helm_binary: str
) -> None:
    out = render_error(sets)
    for text in expected:
        assert text in out, out


def test_the_valid_counterparts_render(helm_binary: str) -> None:
    # Controls for the failures above: the same values made right render.
    render(sets=(*CUSTOM, "autoscaling.signals={kvCacheUsage}", "wiring.kvCacheUsage.series=kv"))
    render(sets=("autoscaling.signals={queueDepth}", "autoscaling.signalSettings.queueDepth.window=30s"))
    render(
        sets=(
            "autoscaling.engine=keda",
            "prometheus-adapter.enabled=false",
            "autoscaling.keda.fallback.replicas=4",
        )
    )
    render(
        sets=(
            "autoscaling.excludeNotReady=true",
            "prometheus.enabled=false",
            "wiring.prometheusUrl=http://p:9090",
            "wiring.kubeStateMetrics=true",
            "dcgm-exporter.enabled=false",
        )
    )


def test_notes_say_plainly_when_gpu_utilization_scales_vllm(helm_binary: str) -> None:
    gpu = render_notes(sets=GPU_SIGNAL)
    assert "GPU utilization reads ~100 % with one request in the batch" in gpu
    assert "1.76x the GPU-hours" in gpu
    default = render_notes()
    assert "one request in the batch" not in default
    assert "autoscaling.signals: [gpuUtilization]" in default
