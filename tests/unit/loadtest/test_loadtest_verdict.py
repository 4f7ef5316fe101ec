"""Every verify-scaleup rule, passing and failing, on synthetic timelines."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import pytest
from timeline_testkit import hpa_spec

from gpu_inference.domain.timeline import (
    Criteria,
    HpaCondition,
    HpaMetric,
    HpaStatus,
    LocustPoint,
    NodeInfo,
    RequestWindow,
    ScalePolicy,
    TimelineSample,
    TokenPoint,
    WorkloadStatus,
)
from gpu_inference.domain.verdict import (
    evaluate,
    measure,
    oracle_replicas,
    scale_down_bound_s,
    scale_down_time_s,
)

pytestmark = pytest.mark.unit

HPA = hpa_spec(scale_down_stabilization_s=300)
#: One replica serves 6 requests/s within the SLO (as a calibration would measure it): the 10 req/s
#: load needs 2 replicas, which is what the good run scales to.
CRITERIA = Criteria(
    slo_p95_ms=2000, max_error_ratio=0.01, scale_up_within_s=120, scale_down_within_s=420, capacity_rps=6
)
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
                demand_rps=requests_per_s if phase == "load" else 0.0,
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
        "metric_never_missing", "new_replicas_ready", "settled_below_target", "not_pinned_at_max",
        "no_flapping", "gpu_hours_vs_oracle", "p95_within_slo", "error_ratio", "scaled_down",
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


# ------------------------------------------------------------------ rules that fail bad autoscalers


def test_a_jump_straight_to_max_that_stays_there_over_provisions() -> None:
    """desired 4 (maxReplicas) from the first crossing on, while 10 req/s needs 2 replicas."""
    steps = [
        replace(s, desired=4, current=4, ready=4, util=60 if s.t >= 80 else s.util) if s.t >= 50 else s
        for s in good_run()
        if s.t <= LOAD_STOP
    ]
    steps += [Step(t, 0, 4, 4, 4, p95=None) for t in range(310, 610, 30)]
    failed, detail = judge(steps)
    assert "gpu_hours_vs_oracle" in failed
    assert "bound 1.5x" in detail["gpu_hours_vs_oracle"]
    assert "scaled_down" in failed


def test_an_hpa_with_a_very_low_target_over_provisions_with_its_figure() -> None:
    hpa = HPA.model_copy(update={"target_value": 5.0})
    steps = [replace(s, desired=4, current=4, ready=4) if 20 <= s.t <= LOAD_STOP else s for s in good_run()]
    m, checks = evaluate(timeline(steps), hpa, CRITERIA, 1_000_000 + LOAD_STOP)
    over = next(c for c in checks if c.name == "gpu_hours_vs_oracle")
    assert not over.passed
    assert m.overprovision_ratio is not None
    assert m.overprovision_ratio > 1.5


def test_over_provisioning_is_not_judged_without_a_measured_capacity() -> None:
    failed, detail = judge(good_run(), CRITERIA.model_copy(update={"capacity_rps": None}))
    assert failed == {"gpu_hours_vs_oracle"}
    assert "calibrate" in detail["gpu_hours_vs_oracle"]
    failed, _ = judge(
        good_run(), CRITERIA.model_copy(update={"capacity_rps": None, "skip_overprovision": True})
    )
    assert failed == set()


def test_flapping_between_one_and_two_replicas_fails() -> None:
    """desired 1 <-> 2 every 30 s for the whole load."""
    steps = [s for s in good_run() if s.t < 30]
    for i, t in enumerate(range(30, 301, 10)):
        n = 2 if (t // 30) % 2 else 1
        steps.append(Step(t, 95 if n == 1 else 60, n, n, n if i % 3 else 1))
    steps += [Step(t, 0, 1, 1, 1, p95=None) for t in range(310, 610, 30)]
    failed, detail = judge(steps)
    assert "no_flapping" in failed
    assert "reversed direction" in detail["no_flapping"]


def test_one_scale_up_and_one_scale_down_is_not_flapping() -> None:
    """The scale-down after the load is what scaled_down asks for: it is not a reversal."""
    failed, detail = judge(good_run())
    assert "no_flapping" not in failed
    assert "0 time(s)" in detail["no_flapping"]


def dips(n: int) -> list[Step]:
    """good_run with n dips under load: desired 2 -> 1 -> 2 (2 reversals each), 40 s apart."""
    steps = good_run()
    for k in range(n):
        start = 120 + 60 * k
        steps = [replace(s, desired=1) if start <= s.t < start + 20 else s for s in steps]
    return steps


def test_one_dip_under_load_is_within_the_bound_and_two_are_flapping() -> None:
    failed, detail = judge(dips(1))
    assert "no_flapping" not in failed
    assert "2 time(s)" in detail["no_flapping"]
    failed, detail = judge(dips(2))
    assert "no_flapping" in failed
    assert "4 time(s)" in detail["no_flapping"]


def test_a_scale_up_before_the_threshold_crossing_fails_and_is_not_clamped() -> None:
    """desired rises at 10 s with utilization at 40 %, well before it crosses at 30 s."""
    steps = [replace(s, desired=2, current=2) if 10 <= s.t < 310 else s for s in good_run()]
    m, checks = evaluate(timeline(steps), HPA, CRITERIA, 1_000_000 + LOAD_STOP)
    check = next(c for c in checks if c.name == "scaled_up_in_time")
    assert not check.passed
    assert "BEFORE" in check.detail
    assert m.seconds_to_first_scale_up == -20


def test_a_run_whose_hpa_already_wants_more_at_the_start_fails() -> None:
    steps = [replace(s, desired=2) if s.t <= 0 else s for s in good_run()]
    failed, detail = judge(steps)
    assert "starts_at_minimum" in failed
    assert "already wanted 2" in detail["starts_at_minimum"]


def test_a_replica_that_takes_150s_to_become_ready_fails() -> None:
    steps = [replace(s, ready=1) if 50 <= s.t < 200 else s for s in good_run()]
    steps = [replace(s, util=95) if 80 <= s.t < 200 else s for s in steps]
    failed, detail = judge(steps)
    assert "new_replicas_ready" in failed
    assert "150s" in detail["new_replicas_ready"]
    assert "bound 120s" in detail["new_replicas_ready"]


def test_pinned_at_max_while_the_metric_stays_over_target_fails() -> None:
    steps = [s for s in good_run() if s.t < 50]
    steps += [Step(t, 97, 4, 4, 4) for t in range(50, 301, 10)]
    steps += [Step(t, 0, 4, 4, 4, p95=None) for t in range(310, 610, 30)] + [Step(610, 0, 1, 1, 1)]
    failed, detail = judge(steps, requests_per_s=30)
    assert "not_pinned_at_max" in failed
    assert "maxReplicas too low" in detail["not_pinned_at_max"]


def test_slo_attainment_from_per_request_records_replaces_locust_p95() -> None:
    samples = timeline(good_run())
    for s in samples:
        if s.phase == "load":
            misses = 10 if 30 <= s.elapsed_s < 90 else 0
            s.requests = RequestWindow(finished=100, slo_misses=misses, ttft_p95_ms=900, tpot_p95_ms=80)
    m, checks = evaluate(samples, HPA, CRITERIA, 1_000_000 + LOAD_STOP)
    names = {c.name: c for c in checks}
    assert "p95_within_slo" not in names
    assert names["slo_attainment"].passed
    assert m.slo_attainment is not None
    strict = CRITERIA.model_copy(update={"min_slo_attainment": 0.99})
    _, checks = evaluate(samples, HPA, strict, 1_000_000 + LOAD_STOP)
    bad = next(c for c in checks if c.name == "slo_attainment")
    assert not bad.passed
    assert "required 99%" in bad.detail


def test_scaling_on_another_metric_names_it() -> None:
    hpa = HPA.model_copy(
        update={
            "metrics": [
                HpaMetric(name="DCGM_FI_DEV_GPU_UTIL", target=80),
                HpaMetric(name="vllm_num_requests_running", target=8),
            ]
        }
    )
    samples = timeline(good_run())
    for s in samples:
        assert s.hpa is not None
        s.gpu_util_mean = 50.0
        s.hpa.current_value = 50.0
        s.hpa.metrics = {
            "DCGM_FI_DEV_GPU_UTIL": 50.0,
            "vllm_num_requests_running": 12.0 if s.elapsed_s >= 40 else 2,
        }
    m, _ = evaluate(samples, hpa, CRITERIA, 1_000_000 + LOAD_STOP)
    assert m.scaled_up_on == "vllm_num_requests_running"
    assert m.seconds_to_first_scale_up == 10


@pytest.mark.parametrize(
    ("policies", "select", "peak", "expected"),
    [
        # The chart's default: 1 pod per 60 s, from 4 to 1 is three steps, the last one ending the wait.
        ([ScalePolicy(type="Pods", value=1, period_s=60)], "Max", 4, 120.0),
        # Kubernetes' default: 100 % per 15 s goes to the minimum in one step.
        ([ScalePolicy(type="Percent", value=100, period_s=15)], "Max", 4, 0.0),
        # Min picks the slower policy at each step.
        (
            [
                ScalePolicy(type="Pods", value=1, period_s=60),
                ScalePolicy(type="Percent", value=100, period_s=15),
            ],
            "Min",
            3,
            60.0,
        ),
    ],
)
def test_scale_down_time_follows_the_hpa_policies(
    policies: list[ScalePolicy], select: Literal["Max", "Min"], peak: int, expected: float
) -> None:
    hpa = HPA.model_copy(update={"scale_down_policies": policies, "scale_down_select": select})
    assert scale_down_time_s(hpa, peak) == expected
    assert scale_down_bound_s(hpa, peak) == 300 + expected + 30 + 60


def test_scale_down_disabled_has_no_bound() -> None:
    assert scale_down_bound_s(HPA.model_copy(update={"scale_down_select": "Disabled"}), 4) is None


def test_oracle_replicas_stay_within_the_hpa_bounds() -> None:
    assert oracle_replicas(0, 6, 1, 4) == 1
    assert oracle_replicas(12, 6, 1, 4) == 2
    assert oracle_replicas(12.5, 6, 1, 4) == 3
    assert oracle_replicas(100, 6, 1, 4) == 4
