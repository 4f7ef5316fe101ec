"""The signal queries evaluated by the real promtool: the adapter's query for the HPA, the KEDA
trigger's query and the per-pod recording rule, with the smoothing window and the exclusion of pods
that are not Ready, for the chart's Prometheus (readiness from up{job="inference"}) and for
kube-prometheus-stack with the GPU Operator (kube_pod_status_ready, exported_pod labels).

The input series are hand-written test input, not measurements."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import EXAMPLE_EXISTING, GPU_SIGNAL, NAMESPACE, SCENARIOS, Rendered, render
from .promtool_kit import adapter_query, expected, pod_sample, promtool_out, write_prometheus_files

pytestmark = pytest.mark.unit

# Pods of the inference Deployment gpu-inference (<name>-<pod-template-hash>-<suffix>).
POD_A = "gpu-inference-7d9f8c6b5-aaaaa"
POD_B = "gpu-inference-7d9f8c6b5-bbbbb"
POD_C = "gpu-inference-7d9f8c6b5-ccccc"  # Running, not Ready (still loading its model)
# Scraped every 15 s. A's queue jumps from 0 to 8 at 90 s: at 1m50s the raw value is 8, the 1m
# average (samples at 60, 75, 90, 105 s) is 4.
WAITING = {POD_A: "0 0 0 0 0 0 8 8 8 8 8 8 8 8", POD_B: "2x13", POD_C: "10x13"}
UP = {POD_A: "1x13", POD_B: "1x13", POD_C: "0x13"}
EVAL = "1m50s"


_at_eval = functools.partial(expected, eval_time=EVAL)


def _per_pod(pod: str, signal: str, value: float) -> tuple[str, float]:
    """The sample gpu_inference:autoscaling_signal:per_pod has for `pod` and `signal`."""
    labels = f'{{namespace="{NAMESPACE}",pod="{pod}",signal="{signal}"}}'
    return f"gpu_inference:autoscaling_signal:per_pod{labels}", value


def _server_series() -> list[dict[str, str]]:
    common = f'namespace="{NAMESPACE}",job="inference",model_name="qwen"'
    series = [
        {"series": f'vllm:num_requests_waiting{{pod="{p}",{common}}}', "values": v}
        for p, v in WAITING.items()
    ]
    series += [
        {"series": f'up{{pod="{p}",namespace="{NAMESPACE}",job="inference"}}', "values": v}
        for p, v in UP.items()
    ]
    # Another namespace's vLLM with a pod of the same name: never counted.
    series.append(
        {"series": f'vllm:num_requests_waiting{{pod="{POD_A}",namespace="other",job="x"}}', "values": "50x13"}
    )
    return series


def _run(
    tmp: Path, rule_files: dict[str, str], series: list[dict[str, str]], tests: list[dict[str, Any]]
) -> None:
    for name, text in rule_files.items():
        (tmp / name).write_text(text)
    spec = {
        "rule_files": sorted(rule_files),
        "evaluation_interval": "15s",
        "tests": [{"interval": "15s", "input_series": series, "promql_expr_test": tests}],
    }
    (tmp / "test.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    assert "SUCCESS" in promtool_out("test", "rules", "test.yml", cwd=tmp)


def _recording_rules(r: Rendered) -> dict[str, str]:
    return {"recording_rules.yml": r.one("ConfigMap", "prometheus")["data"]["recording_rules.yml"]}


@pytest.mark.parametrize("scenario_name", ["08-vllm-signals", "09-keda"])
def test_promtool_accepts_the_signal_scenarios(scenario_name: str, promtool: str, tmp_path: Path) -> None:
    r = render((str(SCENARIOS[scenario_name]),))
    write_prometheus_files(r, tmp_path)
    out = promtool_out("check", "config", str(tmp_path / "prometheus.yml"), cwd=tmp_path)
    assert "SUCCESS" in out


def test_smoothed_queue_depth_without_not_ready_pods(promtool: str, tmp_path: Path) -> None:
    r = render((str(SCENARIOS["08-vllm-signals"]),))  # queueDepth window 1m, excludeNotReady
    query, group_by = adapter_query(r, [POD_A, POD_B, POD_C], "inference_queue_depth")
    assert group_by == "pod"
    tests = [
        # What the HPA receives: A smoothed to 4 (raw 8), B 2, C (not Ready) absent.
        _at_eval(query, pod_sample(POD_A, 4), pod_sample(POD_B, 2)),
        _at_eval(
            'gpu_inference:autoscaling_signal:per_pod{signal="queueDepth"}',
            _per_pod(POD_A, "queueDepth", 4),
            _per_pod(POD_B, "queueDepth", 2),
        ),
    ]
    _run(tmp_path, _recording_rules(r), _server_series(), tests)


def test_controls_raw_value_and_not_ready_pod_are_visible_without_the_options(
    promtool: str, tmp_path: Path
) -> None:
    # The same series through the default (unsmoothed, all pods) query: the evaluation above can
    # tell smoothing and exclusion apart from their absence.
    r = render(sets=("autoscaling.signals={queueDepth}",))
    query, _ = adapter_query(r, [POD_A, POD_B, POD_C], "inference_queue_depth")
    tests = [_at_eval(query, pod_sample(POD_A, 8), pod_sample(POD_B, 2), pod_sample(POD_C, 10))]
    _run(tmp_path, _recording_rules(r), _server_series(), tests)


def test_keda_trigger_sums_ready_pods_of_the_release(promtool: str, tmp_path: Path) -> None:
    r = render((str(SCENARIOS["09-keda"]),))  # excludeNotReady, no window
    (so,) = r.of_kind("ScaledObject")
    (trigger,) = [t for t in so["spec"]["triggers"] if t["name"] == "queuedepth"]
    tests = [
        # A 8 + B 2; C is not Ready, the other namespace's pod is not the release's.
        _at_eval(trigger["metadata"]["query"], ("{}", 10)),
    ]
    _run(tmp_path, _recording_rules(r), _server_series(), tests)


def test_gpu_signal_with_exported_labels_and_kube_state_metrics(promtool: str, tmp_path: Path) -> None:
    r = render(
        (str(EXAMPLE_EXISTING),),
        sets=(
            *GPU_SIGNAL,
            "autoscaling.excludeNotReady=true",
            "autoscaling.signalSettings.gpuUtilization.window=1m",
        ),
    )
    groups = r.of_kind("PrometheusRule")[0]["spec"]["groups"]
    rules = {"rules.yml": yaml.safe_dump({"groups": groups})}
    exporter = (
        'pod="nvidia-dcgm-exporter-x1",namespace="gpu-operator",job="nvidia-dcgm-exporter",Hostname="n1"'
    )
    util = "DCGM_FI_DEV_GPU_UTIL"
    series = [
        {
            "series": f'{util}{{gpu="0",exported_pod="{POD_A}",exported_namespace="{NAMESPACE}",{exporter}}}',
            "values": "90x13",
        },
        {
            "series": f'{util}{{gpu="1",exported_pod="{POD_A}",exported_namespace="{NAMESPACE}",{exporter}}}',
            "values": "70x13",
        },
        {
            "series": f'{util}{{gpu="2",exported_pod="{POD_C}",exported_namespace="{NAMESPACE}",{exporter}}}',
            "values": "0x13",
        },
    ]
    ksm = f'namespace="{NAMESPACE}",job="kube-state-metrics",uid="u"'
    for pod, ready in ((POD_A, 1), (POD_C, 0)):
        for cond, v in (("true", ready), ("false", 1 - ready)):
            series.append(
                {
                    "series": f'kube_pod_status_ready{{pod="{pod}",condition="{cond}",{ksm}}}',
                    "values": f"{v}x13",
                }
            )
    query, group_by = adapter_query(r, [POD_A, POD_C], util)
    assert group_by == "exported_pod"
    tests = [
        # A averaged over its two GPUs; C (not Ready, 0 %) left out instead of pulling the mean down.
        _at_eval(query, pod_sample(POD_A, 80, "exported_pod")),
        _at_eval(
            'gpu_inference:autoscaling_signal:per_pod{signal="gpuUtilization"}',
            _per_pod(POD_A, "gpuUtilization", 80),
        ),
    ]
    _run(tmp_path, rules, series, tests)


def test_request_rate_is_completed_requests_per_second_per_pod(promtool: str, tmp_path: Path) -> None:
    """requestRate: rate() of vLLM's request counter over the window, summed over its finish reasons.

    Per 15 s scrape A finishes 4.5 requests as "stop" and 3 as "length" (0.5 req/s in all), B 15
    (1 req/s); another namespace's pod with A's name is never counted.
    """
    r = render(sets=("autoscaling.signals={requestRate}", "autoscaling.signalSettings.requestRate.window=1m"))
    query, _ = adapter_query(r, [POD_A, POD_B], "inference_request_rate")
    assert "rate(vllm:request_success_total" in query
    common = f'namespace="{NAMESPACE}",job="inference",model_name="qwen",engine="0"'
    counter = "vllm:request_success_total"
    series = [
        {"series": f'{counter}{{pod="{POD_A}",finished_reason="stop",{common}}}', "values": "0+4.5x13"},
        {"series": f'{counter}{{pod="{POD_A}",finished_reason="length",{common}}}', "values": "0+3x13"},
        {"series": f'{counter}{{pod="{POD_B}",finished_reason="stop",{common}}}', "values": "0+15x13"},
        {"series": f'{counter}{{pod="{POD_A}",namespace="other",job="x"}}', "values": "0+100x13"},
    ]
    # rate() extrapolates in floating point: compare to a thousandth.
    tests = [_at_eval(f"round({query}, 0.001)", pod_sample(POD_A, 0.5), pod_sample(POD_B, 1.0))]
    _run(tmp_path, _recording_rules(r), series, tests)
