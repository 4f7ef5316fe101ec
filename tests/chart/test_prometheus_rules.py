"""The rendered Prometheus configuration and rules, checked and evaluated by the real promtool.

`promtool test rules` evaluates the chart's recording rules, its alerts and the query the adapter
sends for the HPA, against series shaped like the DCGM exporter's as each kind of Prometheus stores
them: the chart's (honor_labels, pod/namespace kept) and kube-prometheus-stack scraping the GPU
Operator's exporter (exported_pod/exported_namespace). The series are hand-written test input,
not measurements."""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import GPU_SIGNAL, NAMESPACE, SCENARIOS, Rendered, render
from .promtool_kit import adapter_query, expected, pod_sample, promtool_out, write_prometheus_files

pytestmark = pytest.mark.unit
log = logging.getLogger(__name__)

POD_A = "gpu-inference-7d9f8c6b5-aaaaa"
POD_B = "gpu-inference-7d9f8c6b5-bbbbb"


@pytest.mark.parametrize(
    "scenario_name", ["01-default", "04-queue-depth", "05-local-overlay", "07-gpu-operator-own-prometheus"]
)
def test_promtool_checks_config_and_rules(scenario_name: str, promtool: str, tmp_path: Path) -> None:
    r = render((str(SCENARIOS[scenario_name]),))
    cfg = write_prometheus_files(r, tmp_path)
    assert any("kubernetes_sd_configs" in job for job in cfg["scrape_configs"])
    out = promtool_out("check", "config", str(tmp_path / "prometheus.yml"), cwd=tmp_path)
    assert "SUCCESS" in out
    assert re.search(r"SUCCESS: \d+ rules found", out)


def _dcgm_series(labels: str, value: str) -> dict[str, str]:
    return {"series": f"DCGM_FI_DEV_GPU_UTIL{{{labels}}}", "values": value}


def _unit_test(
    promtool: str,
    tmp: Path,
    rule_files: list[str],
    series: list[dict[str, str]],
    expr_tests: list[dict[str, Any]],
    alert_tests: list[dict[str, Any]] | None = None,
) -> str:
    """`promtool test rules` on a spec for `rule_files` (in `tmp`), written as test.yml; its output."""
    test: dict[str, Any] = {"interval": "15s", "input_series": series}
    if expr_tests:
        test["promql_expr_test"] = expr_tests
    if alert_tests:
        test["alert_rule_test"] = alert_tests
    spec = {"rule_files": rule_files, "evaluation_interval": "15s", "tests": [test]}
    (tmp / "test.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return promtool_out("test", "rules", "test.yml", cwd=tmp)


def _write_rule_groups(promtool: str, r: Rendered, tmp: Path) -> None:
    """The PrometheusRule's groups as rules.yml in `tmp`, checked by promtool."""
    groups = r.of_kind("PrometheusRule")[0]["spec"]["groups"]
    (tmp / "rules.yml").write_text(yaml.safe_dump({"groups": groups}))
    promtool_out("check", "rules", "rules.yml", cwd=tmp)


_at_5m = functools.partial(expected, eval_time="5m")


def _gpu_avg(pod: str, value: float, namespace: str = NAMESPACE) -> tuple[str, float]:
    """The sample gpu_inference:gpu_utilization:avg has for `pod`."""
    return f'gpu_inference:gpu_utilization:avg{{namespace="{namespace}",pod="{pod}"}}', value


def test_default_mapping_keeps_the_inference_pod(promtool: str, tmp_path: Path) -> None:
    r = render((str(SCENARIOS["01-default"]),), GPU_SIGNAL)
    write_prometheus_files(r, tmp_path)
    # As the chart's Prometheus stores them: the exporter's pod/namespace/container untouched,
    # plus node and exporter_pod from the scrape job; one idle GPU with no pod.
    common = f'namespace="{NAMESPACE}",container="server",job="dcgm-exporter"'
    series = [
        _dcgm_series(f'gpu="0",pod="{POD_A}",{common},node="n1",exporter_pod="dcgm-1"', "90x40"),
        _dcgm_series(f'gpu="1",pod="{POD_A}",{common},node="n1",exporter_pod="dcgm-1"', "70x40"),
        _dcgm_series(f'gpu="0",pod="{POD_B}",{common},node="n2",exporter_pod="dcgm-2"', "20x40"),
        _dcgm_series('gpu="0",node="n3",exporter_pod="dcgm-3",job="dcgm-exporter"', "0x40"),
        {"series": 'DCGM_FI_DEV_GPU_TEMP{gpu="0",node="n1"}', "values": "60x40"},
        {"series": 'DCGM_FI_DEV_GPU_TEMP{gpu="0",node="n2"}', "values": "61x40"},
        {"series": 'DCGM_FI_DEV_GPU_TEMP{gpu="0",node="n3"}', "values": "40x40"},
    ]
    query, group_by = adapter_query(r, [POD_A, POD_B])
    assert group_by == "pod"
    expr_tests = [
        _at_5m("gpu_inference:gpu_utilization:avg", _gpu_avg(POD_A, 80), _gpu_avg(POD_B, 20)),
        # What the HPA receives per pod: the average over the pod's GPUs.
        _at_5m(query, pod_sample(POD_A, 80), pod_sample(POD_B, 20)),
        _at_5m("gpu_inference:gpu_nodes:count", ("gpu_inference:gpu_nodes:count", 3)),
        _at_5m("gpu_inference:cost_usd_per_hour:sum", ("gpu_inference:cost_usd_per_hour:sum", 1.578)),
    ]
    alert_tests: list[dict[str, Any]] = [
        # A pod at 90 % (A's average is 80) is below the 90 % threshold: nothing fires.
        {"eval_time": "10m", "alertname": "GPUUtilizationHighSustained", "exp_alerts": []},
        {"eval_time": "10m", "alertname": "InferenceCustomMetricMissing", "exp_alerts": []},
    ]
    assert "SUCCESS" in _unit_test(
        promtool, tmp_path, ["recording_rules.yml", "alerting_rules.yml"], series, expr_tests, alert_tests
    )


def _write_alert_rules_without_annotations(tmp: Path) -> None:
    # promtool compares annotations too; the test copy drops them so that firing and labels are
    # what is checked (the messages are static text reviewed in the chart).
    rules = yaml.safe_load((tmp / "alerting_rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp / "alerting_rules.yml").write_text(yaml.safe_dump(rules))


def test_alerts_fire(promtool: str, tmp_path: Path) -> None:
    r = render((str(SCENARIOS["01-default"]),))
    write_prometheus_files(r, tmp_path)
    _write_alert_rules_without_annotations(tmp_path)
    series = [
        _dcgm_series(f'gpu="0",pod="{POD_A}",namespace="{NAMESPACE}",node="n1"', "97x120"),
        {"series": 'DCGM_FI_DEV_FB_USED{gpu="0",node="n1"}', "values": "15500x120"},
        {"series": 'DCGM_FI_DEV_FB_FREE{gpu="0",node="n1"}', "values": "300x120"},
        {"series": 'DCGM_FI_DEV_THERMAL_VIOLATION{gpu="0",node="n1"}', "values": "0+1000x120"},
        {"series": f'up{{job="inference",namespace="{NAMESPACE}",pod="{POD_A}"}}', "values": "1x120"},
    ]
    alert_tests: list[dict[str, Any]] = [
        {"eval_time": "10m", "alertname": "GPUUtilizationHighSustained", "exp_alerts": []},
        {
            "eval_time": "20m",
            "alertname": "GPUUtilizationHighSustained",
            "exp_alerts": [{"exp_labels": {"severity": "warning", "namespace": NAMESPACE, "pod": POD_A}}],
        },
        {
            "eval_time": "15m",
            "alertname": "GPUMemoryNearFull",
            "exp_alerts": [{"exp_labels": {"severity": "warning", "node": "n1", "gpu": "0"}}],
        },
        {
            "eval_time": "15m",
            "alertname": "GPUThermalThrottling",
            "exp_alerts": [{"exp_labels": {"severity": "warning", "node": "n1"}}],
        },
        {"eval_time": "15m", "alertname": "InferenceCustomMetricMissing", "exp_alerts": []},
        {"eval_time": "15m", "alertname": "GPUTemperatureHigh", "exp_alerts": []},
    ]
    assert "SUCCESS" in _unit_test(
        promtool, tmp_path, ["recording_rules.yml", "alerting_rules.yml"], series, [], alert_tests
    )


def test_custom_metric_missing_and_hpa_at_max_fire(promtool: str, tmp_path: Path) -> None:
    r = render((str(SCENARIOS["01-default"]),))
    write_prometheus_files(r, tmp_path)
    _write_alert_rules_without_annotations(tmp_path)
    # Four inference pods up (= autoscaling.maxReplicas) and no GPU series for any of them.
    series = [
        {"series": f'up{{job="inference",namespace="{NAMESPACE}",pod="{POD_A[:-1]}{i}"}}', "values": "1x80"}
        for i in range(4)
    ]
    alert_tests: list[dict[str, Any]] = [
        {"eval_time": "3m", "alertname": "InferenceCustomMetricMissing", "exp_alerts": []},
        {
            "eval_time": "10m",
            "alertname": "InferenceCustomMetricMissing",
            "exp_alerts": [{"exp_labels": {"severity": "critical", "namespace": NAMESPACE}}],
        },
        {"eval_time": "10m", "alertname": "InferenceHPAAtMaxReplicas", "exp_alerts": []},
        {
            "eval_time": "17m",
            "alertname": "InferenceHPAAtMaxReplicas",
            "exp_alerts": [{"exp_labels": {"severity": "warning"}}],
        },
    ]
    assert "SUCCESS" in _unit_test(
        promtool, tmp_path, ["recording_rules.yml", "alerting_rules.yml"], series, [], alert_tests
    )


def test_existing_cluster_mapping_uses_exported_labels(promtool: str, tmp_path: Path) -> None:
    r = render((str(SCENARIOS["02-existing-cluster"]),), GPU_SIGNAL)
    _write_rule_groups(promtool, r, tmp_path)
    # As kube-prometheus-stack stores the GPU Operator exporter's series (honorLabels false):
    # pod/namespace name the exporter, exported_* the pod holding the GPU, Hostname the node.
    exporter = 'pod="nvidia-dcgm-exporter-x1",namespace="gpu-operator",job="nvidia-dcgm-exporter"'
    series = [
        _dcgm_series(
            f'gpu="0",exported_pod="{POD_A}",exported_namespace="{NAMESPACE}",Hostname="n1",{exporter}',
            "90x40",
        ),
        _dcgm_series(
            f'gpu="1",exported_pod="{POD_A}",exported_namespace="{NAMESPACE}",Hostname="n1",{exporter}',
            "70x40",
        ),
        _dcgm_series(f'gpu="0",Hostname="n2",{exporter}', "5x40"),
    ]
    query, group_by = adapter_query(r, [POD_A])
    assert group_by == "exported_pod"
    expr_tests = [
        _at_5m("gpu_inference:gpu_utilization:avg", _gpu_avg(POD_A, 80)),
        _at_5m(query, pod_sample(POD_A, 80, "exported_pod")),
    ]
    assert "SUCCESS" in _unit_test(promtool, tmp_path, ["rules.yml"], series, expr_tests)


def test_the_trap_the_chart_avoids_is_real(promtool: str, tmp_path: Path) -> None:
    # Control: with the default label names, series stored the kube-prometheus-stack way would be
    # attributed to the exporter pod. This is why wiring.labels exists; the test proves the
    # evaluation above can tell the two apart.
    r = render((str(SCENARIOS["01-default"]),))
    write_prometheus_files(r, tmp_path)
    series = [
        _dcgm_series(
            f'gpu="0",exported_pod="{POD_A}",exported_namespace="{NAMESPACE}",'
            f'pod="nvidia-dcgm-exporter-x1",namespace="gpu-operator"',
            "90x40",
        )
    ]
    expr_tests = [
        _at_5m("gpu_inference:gpu_utilization:avg", _gpu_avg("nvidia-dcgm-exporter-x1", 90, "gpu-operator"))
    ]
    assert "SUCCESS" in _unit_test(promtool, tmp_path, ["recording_rules.yml"], series, expr_tests)


def test_xid_alerts_split_hardware_from_application_and_resolve(promtool: str, tmp_path: Path) -> None:
    r = render((str(SCENARIOS["01-default"]),))
    write_prometheus_files(r, tmp_path)
    _write_alert_rules_without_annotations(tmp_path)
    # dcgm-exporter's DCGM_EXP_XID_ERRORS_COUNT with its default 5 min window: an XID shows as 1
    # for 5 min after it happened, then the count is back to 0. 15 s steps: XID 79 at 1m, XID 13 at
    # 2m (on another GPU), XID 119 (neither list) at 1m on a third. DCGM_FI_DEV_XID_ERRORS meanwhile
    # keeps its last value for good.
    window = "1x19"  # 20 samples = 5 min
    series = [
        {
            "series": 'DCGM_EXP_XID_ERRORS_COUNT{gpu="0",node="n1",xid="79",window_size_in_ms="300000"}',
            "values": f"_x3 {window} 0x60",
        },
        {
            "series": 'DCGM_EXP_XID_ERRORS_COUNT{gpu="1",node="n1",xid="13",window_size_in_ms="300000"}',
            "values": f"_x7 {window} 0x60",
        },
        {
            "series": 'DCGM_EXP_XID_ERRORS_COUNT{gpu="2",node="n1",xid="119",window_size_in_ms="300000"}',
            "values": f"_x3 {window} 0x60",
        },
        {"series": 'DCGM_FI_DEV_XID_ERRORS{gpu="0",node="n1"}', "values": "0 0 0 79x100"},
    ]
    hw = {"severity": "critical", "node": "n1", "gpu": "0", "xid": "79"}
    app = {"severity": "warning", "node": "n1", "gpu": "1", "xid": "13"}
    other = {"severity": "warning", "node": "n1", "gpu": "2", "xid": "119"}
    alert_tests: list[dict[str, Any]] = [
        {"eval_time": "30s", "alertname": "GPUXidHardwareError", "exp_alerts": []},
        {"eval_time": "2m", "alertname": "GPUXidHardwareError", "exp_alerts": [{"exp_labels": hw}]},
        {"eval_time": "90s", "alertname": "GPUXidApplicationError", "exp_alerts": []},
        {"eval_time": "3m", "alertname": "GPUXidApplicationError", "exp_alerts": [{"exp_labels": app}]},
        {"eval_time": "2m", "alertname": "GPUXidOtherError", "exp_alerts": [{"exp_labels": other}]},
        # Resolved once the window has passed without a new XID.
        {"eval_time": "7m", "alertname": "GPUXidHardwareError", "exp_alerts": []},
        {"eval_time": "8m", "alertname": "GPUXidApplicationError", "exp_alerts": []},
        {"eval_time": "20m", "alertname": "GPUXidHardwareError", "exp_alerts": []},
        {"eval_time": "20m", "alertname": "GPUXidOtherError", "exp_alerts": []},
    ]
    expr_tests = [
        # Control: the expression the chart alerted on before still fires long after the XID.
        {
            "expr": "max by (node, gpu) (max_over_time(DCGM_FI_DEV_XID_ERRORS[5m])) > 0",
            "eval_time": "20m",
            "exp_samples": [{"labels": '{node="n1",gpu="0"}', "value": 79}],
        }
    ]
    assert "SUCCESS" in _unit_test(
        promtool, tmp_path, ["recording_rules.yml", "alerting_rules.yml"], series, expr_tests, alert_tests
    )


def test_kube_prometheus_stack_with_the_chart_exporter_sees_the_workload_pod(
    promtool: str, tmp_path: Path
) -> None:
    # kube-prometheus-stack scraping the chart's own exporter through the chart's PodMonitor
    # (tests/chart/test_discovery.py shows which target labels that gives): the series keep the
    # exporter's pod/namespace (the pod holding the GPU), and get job, endpoint, node and
    # exporter_pod. The default wiring.labels then hold for the recording rules and the adapter.
    r = render((str(SCENARIOS["10-kube-prometheus-stack-own-exporter"]),), GPU_SIGNAL)
    _write_rule_groups(promtool, r, tmp_path)
    target = (
        'job="gpu-inference-gpu-agents/gpu-inference-dcgm-exporter",endpoint="metrics",'
        'node="n1",exporter_pod="gpu-inference-dcgm-exporter-q8r4t"'
    )
    series = [
        _dcgm_series(f'gpu="0",pod="{POD_A}",namespace="{NAMESPACE}",container="server",{target}', "90x40"),
        _dcgm_series(f'gpu="1",pod="{POD_A}",namespace="{NAMESPACE}",container="server",{target}', "70x40"),
        _dcgm_series(f'gpu="2",{target}', "0x40"),  # an idle GPU: no pod label from the exporter
    ]
    query, group_by = adapter_query(r, [POD_A])
    assert group_by == "pod"
    expr_tests = [
        _at_5m("gpu_inference:gpu_utilization:avg", _gpu_avg(POD_A, 80)),
        _at_5m(query, pod_sample(POD_A, 80)),
    ]
    assert "SUCCESS" in _unit_test(promtool, tmp_path, ["rules.yml"], series, expr_tests)
