"""Figures measured from a timeline, and the rules that decide whether scale-up was proven.

Pure functions of the samples: the same timeline always gives the same verdict, which is
what the tests pin down rule by rule.

A scale-up is proven when, in this order:
  the HPA and the GPU metric were observable; the run started at the HPA's minimum;
  mean GPU utilization rose above the HPA's scale-up threshold (target x (1 + tolerance):
  below it the HPA correctly does nothing); desired replicas rose within the bound; the HPA
  never reported its metric missing; the new replicas became Ready; utilization came back
  under the target at the new size while the load lasted; p95 latency stayed within the SLO;
  errors stayed under their ratio; and (unless skipped) replicas came back down after the load.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gpu_inference.domain.timeline import (
    METRIC_FAILURE_REASONS,
    Check,
    Criteria,
    HpaSpec,
    Measurements,
    TimelineSample,
)

Pred = Callable[[TimelineSample], bool]


def _first(samples: Sequence[TimelineSample], pred: Pred) -> TimelineSample | None:
    return next((s for s in samples if pred(s)), None)


def _fmt(v: float | None, spec: str = ".1f") -> str:
    return "none" if v is None else format(v, spec)


def metric_failures(samples: Sequence[TimelineSample]) -> list[tuple[TimelineSample, str]]:
    """Samples where the HPA said it could not get its metric (ScalingActive=False or a FailedGet* reason)."""
    out = []
    for s in samples:
        for c in s.hpa.conditions if s.hpa else []:
            if (c.type == "ScalingActive" and c.status == "False") or c.reason in METRIC_FAILURE_REASONS:
                out.append((s, f"{c.type}={c.status} {c.reason}: {c.message}".strip()))
                break
    return out


class Landmarks:
    """The moments that matter in a run, computed once from the samples."""

    def __init__(
        self,
        samples: Sequence[TimelineSample],
        hpa: HpaSpec | None,
        tolerance: float,
        load_stopped_at: float | None,
    ) -> None:
        self.samples = sorted(samples, key=lambda s: s.t)
        self.load = [s for s in self.samples if s.phase == "load"]
        self.threshold = hpa.target_value * (1 + tolerance) if hpa else None
        # The size the load met: the last sample before it (or the first one, without a baseline).
        before = [s for s in self.samples if s.phase == "baseline" and s.hpa is not None]
        start = before[-1] if before else _first(self.samples, lambda s: s.hpa is not None)
        self.initial = start.hpa.current_replicas if start and start.hpa else None
        #: Samples from the load on: what happened before it (e.g. waiting for the metric) is not judged.
        self.judged = [s for s in self.samples if s.phase != "baseline"]
        self.crossed = self._crossed()
        self.scaled_up = self._scaled_up()
        self.ready = self._ready()
        self.scaled_down = self._scaled_down(load_stopped_at)

    def _crossed(self) -> TimelineSample | None:
        thr = self.threshold
        if thr is None:
            return None
        return _first(self.load, lambda s: s.utilization is not None and s.utilization > thr)

    def _scaled_up(self) -> TimelineSample | None:
        initial = self.initial
        if initial is None:
            return None
        after_start = [s for s in self.samples if s.phase != "baseline"]
        return _first(after_start, lambda s: s.hpa is not None and s.hpa.desired_replicas > initial)

    def _ready(self) -> TimelineSample | None:
        """First sample after the scale-up where every replica desired so far is Ready."""
        if self.scaled_up is None or self.initial is None:
            return None
        peak = 0
        for s in self.samples:
            if s.t < self.scaled_up.t:
                continue
            peak = max(peak, s.hpa.desired_replicas if s.hpa else 0)
            if s.workload and s.workload.ready_replicas >= peak and s.workload.ready_replicas > self.initial:
                return s
        return None

    def _scaled_down(self, load_stopped_at: float | None) -> TimelineSample | None:
        initial = self.initial
        if load_stopped_at is None or self.scaled_up is None or initial is None:
            return None
        after = [s for s in self.samples if s.t > load_stopped_at]
        return _first(
            after,
            lambda s: (
                s.hpa is not None and s.hpa.current_replicas <= initial and s.hpa.desired_replicas <= initial
            ),
        )


def _measure(lm: Landmarks, hpa: HpaSpec | None, load_stopped_at: float | None) -> Measurements:
    with_hpa = [s.hpa for s in lm.samples if s.hpa is not None]
    ready = [s.workload.ready_replicas for s in lm.samples if s.workload is not None]
    p95 = [
        s.locust.p95_ms
        for s in lm.load
        if s.locust and s.locust.p95_ms is not None and s.locust.total_requests
    ]
    last_locust = next((s.locust for s in reversed(lm.samples) if s.locust), None)
    last_tokens = next((s.tokens for s in reversed(lm.samples) if s.tokens), None)
    m = Measurements(
        initial_replicas=lm.initial,
        peak_replicas=max((h.desired_replicas for h in with_hpa), default=None),
        peak_ready_replicas=max(ready, default=None),
        final_replicas=with_hpa[-1].current_replicas if with_hpa else None,
        utilization_target=hpa.target_value if hpa else None,
        utilization_crossed_at_s=lm.crossed.elapsed_s if lm.crossed else None,
        max_p95_ms=max(p95, default=None),
        max_gpu_nodes=max((len(s.gpu_nodes) for s in lm.samples if s.nodes), default=None),
    )
    if lm.crossed and lm.scaled_up:
        m.seconds_to_first_scale_up = max(0.0, lm.scaled_up.t - lm.crossed.t)
    if lm.scaled_up and lm.ready:
        m.seconds_to_ready = lm.ready.t - lm.scaled_up.t
    if lm.scaled_down and load_stopped_at is not None:
        m.seconds_to_scale_down = lm.scaled_down.t - load_stopped_at
    if last_locust:
        m.total_requests = last_locust.total_requests
        m.total_failures = last_locust.total_failures
        if last_locust.total_requests:
            m.error_ratio = last_locust.total_failures / last_locust.total_requests
        if lm.load and load_stopped_at is not None:
            span = load_stopped_at - (lm.load[0].t - lm.load[0].elapsed_s)
            m.mean_rps = last_locust.total_requests / span if span > 0 else None
    if last_tokens:
        m.prompt_tokens = last_tokens.prompt_tokens
        m.completion_tokens = last_tokens.completion_tokens
    return m


def measure(
    samples: Sequence[TimelineSample],
    hpa: HpaSpec | None,
    load_stopped_at: float | None,
    tolerance: float = 0.1,
) -> Measurements:
    return _measure(Landmarks(samples, hpa, tolerance, load_stopped_at), hpa, load_stopped_at)


# ----------------------------------------------------------------------------- the rules


def _observed(lm: Landmarks, hpa: HpaSpec) -> Check:
    hpa_seen = sum(1 for s in lm.samples if s.hpa is not None)
    util_seen = sum(1 for s in lm.load if s.utilization is not None)
    detail = (
        f"HPA read in {hpa_seen}/{len(lm.samples)} samples, "
        f"GPU utilization in {util_seen}/{len(lm.load)} load samples"
    )
    if not util_seen:
        detail += f": no {hpa.metric_name} series for namespace {hpa.namespace} in Prometheus"
    return Check(name="observed", passed=hpa_seen > 0 and util_seen > 0, detail=detail)


def _starts_at_minimum(lm: Landmarks, hpa: HpaSpec) -> Check:
    ok = lm.initial == hpa.min_replicas
    detail = f"the run started at {lm.initial} replica(s); the HPA's minimum is {hpa.min_replicas}"
    return Check(
        name="starts_at_minimum",
        passed=ok,
        detail=detail if ok else detail + " (wait for the HPA to scale down before the test)",
    )


def _crossed_threshold(lm: Landmarks, hpa: HpaSpec, c: Criteria) -> Check:
    band = f"{lm.threshold or 0:g} (target {hpa.target_value:g} + {c.hpa_tolerance:.0%} HPA tolerance)"
    if lm.crossed is not None:
        return Check(
            name="utilization_crossed_threshold",
            passed=True,
            detail=f"mean GPU utilization passed {band} at {lm.crossed.elapsed_s:.0f}s",
        )
    peak = max((s.utilization for s in lm.load if s.utilization is not None), default=None)
    return Check(
        name="utilization_crossed_threshold",
        passed=False,
        detail=(
            f"mean GPU utilization never passed the HPA's scale-up threshold {band}; highest seen: "
            f"{_fmt(peak)}. The load proves nothing: raise --peak-users"
        ),
    )


def _scaled_up_in_time(lm: Landmarks, m: Measurements, c: Criteria) -> Check:
    name = "scaled_up_in_time"
    if lm.scaled_up is None:
        stayed = f"stayed at {lm.initial}" if lm.initial is not None else "were never read"
        return Check(
            name=name,
            passed=False,
            detail=f"the HPA never scaled up: desired replicas {stayed} for the whole run",
        )
    if lm.crossed is None:
        return Check(
            name=name,
            passed=False,
            detail=(
                f"desired replicas rose at {lm.scaled_up.elapsed_s:.0f}s "
                "without utilization above the threshold"
            ),
        )
    secs = m.seconds_to_first_scale_up or 0.0
    desired = lm.scaled_up.hpa.desired_replicas if lm.scaled_up.hpa else "?"
    return Check(
        name=name,
        passed=secs <= c.scale_up_within_s,
        detail=(
            f"desired replicas rose {lm.initial} -> {desired} "
            f"{secs:.0f}s after utilization crossed the threshold "
            f"(bound {c.scale_up_within_s:g}s)"
        ),
    )


def _metric_never_missing(lm: Landmarks) -> Check:
    failures = metric_failures(lm.judged)
    if not failures:
        return Check(
            name="metric_never_missing",
            passed=True,
            detail="from the load on, no sample had ScalingActive=False or a FailedGet*Metric condition",
        )
    s, why = failures[0]
    return Check(
        name="metric_never_missing",
        passed=False,
        detail=(
            f"the HPA reported its metric missing in {len(failures)} sample(s), "
            f"first at {s.elapsed_s:.0f}s: {why}"
        ),
    )


def _new_replicas_ready(lm: Landmarks, m: Measurements) -> Check:
    if lm.ready is not None:
        ready = lm.ready.workload.ready_replicas if lm.ready.workload else "?"
        return Check(
            name="new_replicas_ready",
            passed=True,
            detail=f"{ready} replicas Ready {m.seconds_to_ready or 0:.0f}s after the scale-up",
        )
    if lm.scaled_up is None:
        return Check(name="new_replicas_ready", passed=False, detail="no scale-up, so no new replicas")
    most = max((s.workload.ready_replicas for s in lm.samples if s.workload), default=None)
    return Check(
        name="new_replicas_ready",
        passed=False,
        detail=(
            f"the new replicas never all became Ready (at most {most} Ready; Pending pods: no GPU node?)"
        ),
    )


def _settled_below_target(lm: Landmarks, hpa: HpaSpec) -> Check:
    settled = None
    if lm.ready is not None and lm.initial is not None:
        initial, ready_t, target = lm.initial, lm.ready.t, hpa.target_value
        settled = _first(
            lm.load,
            lambda s: (
                s.t >= ready_t
                and s.utilization is not None
                and s.utilization < target
                and s.workload is not None
                and s.workload.ready_replicas > initial
            ),
        )
    if settled is not None:
        ready = settled.workload.ready_replicas if settled.workload else "?"
        return Check(
            name="settled_below_target",
            passed=True,
            detail=(
                f"at {ready} Ready replicas utilization fell to {_fmt(settled.utilization)} < target "
                f"{hpa.target_value:g} at {settled.elapsed_s:.0f}s"
            ),
        )
    after = [s.utilization for s in lm.load if lm.ready and s.t >= lm.ready.t and s.utilization is not None]
    where = f" (lowest after scale-up: {min(after):.1f})" if after else " while the load lasted"
    return Check(
        name="settled_below_target",
        passed=False,
        detail="utilization never came back under the target at a larger size" + where,
    )


def _p95(m: Measurements, c: Criteria) -> Check:
    if m.max_p95_ms is None:
        return Check(
            name="p95_within_slo", passed=False, detail="no latency was measured (no requests completed)"
        )
    return Check(
        name="p95_within_slo",
        passed=m.max_p95_ms <= c.slo_p95_ms,
        detail=f"worst p95 latency {m.max_p95_ms:.0f} ms (SLO {c.slo_p95_ms:g} ms)",
    )


def _errors(m: Measurements, c: Criteria) -> Check:
    if not m.total_requests:
        return Check(
            name="error_ratio", passed=False, detail="no requests were sent: is --target the inference API?"
        )
    ratio = m.error_ratio or 0.0
    return Check(
        name="error_ratio",
        passed=ratio <= c.max_error_ratio,
        detail=(
            f"{m.total_failures} of {m.total_requests} requests failed "
            f"({ratio:.2%}, allowed {c.max_error_ratio:.2%})"
        ),
    )


def _scaled_down(lm: Landmarks, m: Measurements, c: Criteria) -> Check:
    name = "scaled_down"
    if c.skip_scale_down:
        return Check(name=name, passed=True, detail="skipped (--skip-scale-down)")
    if lm.scaled_up is None:
        return Check(name=name, passed=False, detail="no scale-up, so no scale-down to see")
    if m.seconds_to_scale_down is None:
        return Check(
            name=name,
            passed=False,
            detail=(
                f"replicas did not come back to {lm.initial} "
                f"within {c.scale_down_within_s or 0:g}s after the load"
            ),
        )
    bound = c.scale_down_within_s
    ok = bound is None or m.seconds_to_scale_down <= bound
    detail = f"back to {lm.initial} replica(s) {m.seconds_to_scale_down:.0f}s after the load stopped"
    return Check(name=name, passed=ok, detail=detail + (f" (bound {bound:g}s)" if bound else ""))


def evaluate(
    samples: Sequence[TimelineSample], hpa: HpaSpec, criteria: Criteria, load_stopped_at: float | None
) -> tuple[Measurements, list[Check]]:
    """Measure, then apply every rule. The run passed when every check passed."""
    lm = Landmarks(samples, hpa, criteria.hpa_tolerance, load_stopped_at)
    m = _measure(lm, hpa, load_stopped_at)
    checks = [
        _observed(lm, hpa),
        _starts_at_minimum(lm, hpa),
        _crossed_threshold(lm, hpa, criteria),
        _scaled_up_in_time(lm, m, criteria),
        _metric_never_missing(lm),
        _new_replicas_ready(lm, m),
        _settled_below_target(lm, hpa),
        _p95(m, criteria),
        _errors(m, criteria),
        _scaled_down(lm, m, criteria),
    ]
    return m, checks
