"""Every verify-scaleup rule, passing and failing, on synthetic timelines."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import pytest

from gpu_inference.domain.timeline import (
    Criteria,
    HpaCondition,
    HpaSpec,
    HpaStatus,
    LocustPoint,
    NodeInfo,
    TimelineSample,
    TokenPoint,
    WorkloadStatus,
)
from gpu_inference.domain.verdict import evaluate, measure

pytestmark = pytest.mark.unit

HPA = HpaSpec(
    name="gpu-inference",
    namespace="gpu-inference",
    target_kind="Deployment",
    target_name="gpu-inference-inference",
    min_replicas=1,
    max_replicas=4,
    metric_name="DCGM_FI_DEV_GPU_UTIL",
    target_value=80,
    scale_down_stabilization_s=300,
)
CRITERIA = Criteria(slo_p95_ms=2000, max_error_ratio=0.01, scale_up_within_s=120, scale_down_within_s=420)
LOAD_STOP = 300.0
OK_CONDITIONS = [
    HpaCondition(type="AbleToScale", status="True", reason="ReadyForNewScale"),
    HpaCondition(type="ScalingActive", status="True", reason="ValidMetricFound"),
]
MISSING = [
    HpaCondition(type="AbleToScale", status="True", reason="SucceededGetScale"),
    HpaCondition(
        type="ScalingActive",
        status="False",
        reason="FailedGetPodsMetric",
        message="the HPA was unable to compute the replica count: unable to get metric DCGM_FI_DEV_GPU_UTIL",
    ),
]


@dataclass
class Step:
    """One sample of a scripted run (t in seconds since the load started)."""

    t: float
    util: float | None
    desired: int
    current: int
    ready: int
    p95: float | None = 800.0
    conditions: list[HpaCondition] = field(default_factory=lambda: OK_CONDITIONS)


def good_run() -> list[Step]:
    """Crosses 88 % at 30 s, desired 2 at 50 s, Ready at 80 s, 60 % at 90 s, back to 1 at 610 s."""
    steps = [
        Step(-1, 10, 1, 1, 1, p95=None),
        Step(0, 20, 1, 1, 1),
        Step(10, 40, 1, 1, 1),
        Step(20, 85, 1, 1, 1),
    ]
    steps += [Step(30, 95, 1, 1, 1), Step(40, 97, 1, 1, 1), Step(50, 96, 2, 2, 1), Step(60, 95, 2, 2, 1)]
    steps += [Step(70, 93, 2, 2, 1), Step(80, 70, 2, 2, 2)]
    steps += [Step(t, 60, 2, 2, 2) for t in range(90, 301, 10)]
    steps += [Step(t, 0, 2, 2, 2, p95=None) for t in range(310, 610, 30)]
    steps += [Step(610, 0, 1, 1, 1, p95=None)]
    return steps


def timeline(steps: list[Step], *, requests_per_s: float = 10, failures: int = 0) -> list[TimelineSample]:
    out = []
    for s in steps:
        phase: Literal["baseline", "load", "tail"] = (
            "baseline" if s.t < 0 else ("load" if s.t <= LOAD_STOP else "tail")
        )
        sent = int(min(max(s.t, 0), LOAD_STOP) * requests_per_s)
        gpu_nodes = max(s.current, 1)
        out.append(
            TimelineSample(
                t=1_000_000 + s.t,
                elapsed_s=s.t,
                phase=phase,
                locust=LocustPoint(
                    ts=1_000_000 + s.t,
                    users=10 if phase == "load" else 0,
                    rps=requests_per_s if phase == "load" else 0,
                    fail_rps=0,
                    p50_ms=None if s.p95 is None else s.p95 / 2,
                    p95_ms=s.p95,
                    total_requests=sent,
                    total_failures=min(failures, sent),
                ),
                tokens=TokenPoint(
                    ts=1_000_000 + s.t, responses=sent, prompt_tokens=12 * sent, completion_tokens=64 * sent
                ),
                gpu_util_mean=s.util,
                hpa=HpaStatus(
                    current_replicas=s.current,
                    desired_replicas=s.desired,
                    current_value=s.util,
                    conditions=s.conditions,
                ),
                workload=WorkloadStatus(replicas=s.current, ready_replicas=s.ready),
                nodes=[
                    NodeInfo(
                        name=f"gpu-{i}",
                        instance_type="g4dn.xlarge",
                        capacity_type="ON_DEMAND",
                        pool="gpu",
                        gpus=1,
                        is_gpu=True,
                    )
                    for i in range(gpu_nodes)
                ],
            )
        )
    return out


def judge(
    steps: list[Step], criteria: Criteria = CRITERIA, *, requests_per_s: float = 10, failures: int = 0
) -> tuple[set[str], dict[str, str]]:
    samples = timeline(steps, requests_per_s=requests_per_s, failures=failures)
    _, checks = evaluate(samples, HPA, criteria, 1_000_000 + LOAD_STOP)
    return {c.name for c in checks if not c.passed}, {c.name: c.detail for c in checks}


def test_a_scale_up_as_designed_passes_with_its_figures() -> None:
    m, checks = evaluate(timeline(good_run()), HPA, CRITERIA, 1_000_000 + LOAD_STOP)
    assert [c.name for c in checks if not c.passed] == []
    assert [c.name for c in checks] == [
        "observed", "starts_at_minimum", "utilization_crossed_threshold", "scaled_up_in_time",
        "metric_never_missing", "new_replicas_ready", "settled_below_target", "p95_within_slo", "error_ratio",
        "scaled_down",
    ]  # fmt: skip
    assert (m.initial_replicas, m.peak_replicas, m.peak_ready_replicas, m.final_replicas) == (1, 2, 2, 1)
    assert m.utilization_crossed_at_s == 30
    assert m.seconds_to_first_scale_up == 20
    assert m.seconds_to_ready == 30
    assert m.seconds_to_scale_down == 310
    assert m.max_p95_ms == 800
    assert m.total_requests == 3000
    assert m.error_ratio == 0
    assert (m.prompt_tokens, m.completion_tokens) == (36000, 192000)
    assert m.max_gpu_nodes == 2


def test_hpa_that_never_scales_fails() -> None:
    steps = [replace(s, desired=1, current=1, ready=1) for s in good_run()]
    failed, detail = judge(steps)
    assert failed == {"scaled_up_in_time", "new_replicas_ready", "settled_below_target", "scaled_down"}
    assert "never scaled up: desired replicas stayed at 1" in detail["scaled_up_in_time"]


@pytest.mark.parametrize(
    "conditions",
    [
        MISSING,
        # The reason alone also counts (older controllers set it on AbleToScale).
        [
            HpaCondition(
                type="AbleToScale",
                status="False",
                reason="FailedGetPodsMetric",
                message="no metrics returned",
            )
        ],
    ],
)
def test_metric_missing_fails_even_if_replicas_look_fine(conditions: list[HpaCondition]) -> None:
    steps = good_run()
    steps[7] = replace(steps[7], conditions=conditions)
    steps[8] = replace(steps[8], conditions=conditions)
    failed, detail = judge(steps)
    assert failed == {"metric_never_missing"}
    assert "in 2 sample(s), first at 60s" in detail["metric_never_missing"]
    assert "FailedGetPodsMetric" in detail["metric_never_missing"]


def test_metric_missing_before_the_load_is_not_judged() -> None:
    # verify-scaleup waits for the metric before it sends load; those waiting samples are baseline.
    steps = [replace(good_run()[0], t=-20, util=None, conditions=MISSING), *good_run()]
    failed, _ = judge(steps)
    assert failed == set()


def test_the_run_starts_at_the_size_the_last_baseline_sample_saw() -> None:
    steps = [replace(good_run()[0], t=-20, desired=2, current=2, ready=2), *good_run()]
    m, _ = evaluate(timeline(steps), HPA, CRITERIA, 1_000_000 + LOAD_STOP)
    assert m.initial_replicas == 1


def test_metric_missing_for_the_whole_run_fails_everything_it_explains() -> None:
    steps = [replace(s, util=None, desired=1, current=1, ready=1, conditions=MISSING) for s in good_run()]
    failed, detail = judge(steps)
    assert {
        "observed",
        "utilization_crossed_threshold",
        "metric_never_missing",
        "scaled_up_in_time",
    } <= failed
    assert "no DCGM_FI_DEV_GPU_UTIL series for namespace gpu-inference" in detail["observed"]


def test_p95_over_the_slo_fails() -> None:
    steps = good_run()
    steps[6] = replace(steps[6], p95=2500)
    failed, detail = judge(steps)
    assert failed == {"p95_within_slo"}
    assert detail["p95_within_slo"] == "worst p95 latency 2500 ms (SLO 2000 ms)"


def test_no_scale_down_fails_unless_skipped() -> None:
    steps = [s if s.t <= LOAD_STOP else replace(s, desired=2, current=2, ready=2) for s in good_run()]
    failed, detail = judge(steps)
    assert failed == {"scaled_down"}
    assert "did not come back to 1 within 420s" in detail["scaled_down"]
    failed, detail = judge(
        steps, CRITERIA.model_copy(update={"skip_scale_down": True, "scale_down_within_s": None})
    )
    assert failed == set()
    assert detail["scaled_down"] == "skipped (--skip-scale-down)"


def test_scale_down_slower_than_its_bound_fails() -> None:
    failed, detail = judge(good_run(), CRITERIA.model_copy(update={"scale_down_within_s": 300}))
    assert failed == {"scaled_down"}
    assert "310s after the load stopped (bound 300s)" in detail["scaled_down"]


def test_scale_up_slower_than_its_bound_fails() -> None:
    failed, detail = judge(good_run(), CRITERIA.model_copy(update={"scale_up_within_s": 15}))
    assert failed == {"scaled_up_in_time"}
    assert "20s after utilization crossed the threshold (bound 15s)" in detail["scaled_up_in_time"]


def test_load_below_the_hpa_threshold_proves_nothing() -> None:
    # 85 % is above the 80 % target but inside the HPA's 10 % tolerance: the HPA rightly does nothing.
    steps = [
        replace(s, util=min(s.util, 85) if s.util is not None else None, desired=1, current=1, ready=1)
        for s in good_run()
    ]
    failed, detail = judge(steps)
    assert "utilization_crossed_threshold" in failed
    assert (
        "threshold 88 (target 80 + 10% HPA tolerance); highest seen: 85.0"
        in detail["utilization_crossed_threshold"]
    )


def test_tolerance_moves_the_threshold() -> None:
    steps = [replace(s, util=min(s.util, 85) if s.util is not None else None) for s in good_run()]
    failed, _ = judge(steps, CRITERIA.model_copy(update={"hpa_tolerance": 0.05}))
    assert "utilization_crossed_threshold" not in failed


def test_a_run_that_does_not_start_at_the_minimum_fails() -> None:
    steps = [
        replace(s, desired=max(s.desired, 2), current=max(s.current, 2), ready=max(s.ready, 2))
        for s in good_run()
    ]
    failed, detail = judge(steps)
    assert "starts_at_minimum" in failed
    assert "started at 2 replica(s); the HPA's minimum is 1" in detail["starts_at_minimum"]


def test_replicas_that_never_become_ready_fail() -> None:
    steps = [replace(s, ready=1) for s in good_run()]
    failed, detail = judge(steps)
    assert failed == {"new_replicas_ready", "settled_below_target"}
    assert "never all became Ready (at most 1 Ready" in detail["new_replicas_ready"]


def test_utilization_that_stays_above_target_at_the_new_size_fails() -> None:
    steps = [replace(s, util=92) if 80 <= s.t <= LOAD_STOP else s for s in good_run()]
    failed, detail = judge(steps)
    assert failed == {"settled_below_target"}
    assert "lowest after scale-up: 92.0" in detail["settled_below_target"]


def test_errors_over_the_allowed_ratio_fail() -> None:
    failed, detail = judge(good_run(), failures=90)
    assert failed == {"error_ratio"}
    assert detail["error_ratio"] == "90 of 3000 requests failed (3.00%, allowed 1.00%)"


def test_no_requests_at_all_fail() -> None:
    failed, detail = judge([replace(s, p95=None) for s in good_run()], requests_per_s=0)
    assert {"error_ratio", "p95_within_slo"} <= failed
    assert "no requests were sent" in detail["error_ratio"]


def test_measure_without_an_hpa_still_reports_traffic() -> None:
    m = measure(timeline(good_run()), None, 1_000_000 + LOAD_STOP)
    assert m.initial_replicas == 1
    assert m.utilization_target is None
    assert m.seconds_to_first_scale_up is None
    assert m.total_requests == 3000
    assert m.mean_rps == pytest.approx(10.0)
