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

The rules that fail bad autoscalers: the scale-up followed a metric crossing its threshold (never
before it); every scale-up was Ready within a bound; desired replicas did not reverse direction
more than a bound per 10 minutes (flapping); they did not sit at maxReplicas while a metric stayed
over its threshold; GPU-hours stayed within a multiple of an oracle that runs exactly
ceil(demand / measured per-replica capacity) replicas; per-request TTFT and TPOT met the SLO for
the required share of requests; and the scale-down finished within the bound the HPA's own
stabilization window and policies allow. docs/loadtest.md gives each bound and why.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

from gpu_inference.domain.timeline import (
    DEFAULT_METRIC as DEFAULT_METRIC_NAME,
)
from gpu_inference.domain.timeline import (
    METRIC_FAILURE_REASONS,
    Check,
    Criteria,
    HpaSpec,
    Measurements,
    ScalePolicy,
    TimelineSample,
)

Pred = Callable[[TimelineSample], bool]


def _first(samples: Sequence[TimelineSample], pred: Pred) -> TimelineSample | None:
    return next((s for s in samples if pred(s)), None)


def _fmt(v: float | None, spec: str = ".1f") -> str:
    return "none" if v is None else format(v, spec)


def _failed(name: str, detail: str) -> Check:
    """A failed check, with what was seen instead."""
    return Check(name=name, passed=False, detail=detail)


def metric_failures(samples: Sequence[TimelineSample]) -> list[tuple[TimelineSample, str]]:
    """Samples where the HPA said it could not get its metric (ScalingActive=False or a FailedGet* reason)."""
    out = []
    for s in samples:
        for c in s.hpa.conditions if s.hpa else []:
            if (c.type == "ScalingActive" and c.status == "False") or c.reason in METRIC_FAILURE_REASONS:
                out.append((s, f"{c.type}={c.status} {c.reason}: {c.message}".strip()))
                break
    return out


def metric_ratios(s: TimelineSample, hpa: HpaSpec) -> dict[str, float]:
    """current / target per HPA metric at one sample: the HPA's own reading, or Prometheus' GPU mean."""
    out: dict[str, float] = {}
    for m in hpa.all_metrics():
        value = s.hpa.metrics.get(m.name) if s.hpa else None
        if value is None and m.name == hpa.metric_name:
            value = s.utilization
        if value is not None and m.target > 0:
            out[m.name] = value / m.target
    return out


def reversals(samples: Sequence[TimelineSample]) -> int:
    """How often desired replicas changed direction (up then down, or down then up)."""
    count, last_dir, last = 0, 0, None
    for s in samples:
        if s.hpa is None:
            continue
        d = s.hpa.desired_replicas
        if last is not None and d != last:
            direction = 1 if d > last else -1
            if last_dir and direction != last_dir:
                count += 1
            last_dir = direction
        last = d
    return count


def _intervals(samples: Sequence[TimelineSample]) -> list[tuple[TimelineSample, float]]:
    """Each sample with the seconds until the next one (the last gets the median step)."""
    if not samples:
        return []
    steps = [b.t - a.t for a, b in itertools.pairwise(samples)]
    tail = sorted(steps)[len(steps) // 2] if steps else 0.0
    return list(zip(samples, [*steps, tail], strict=True))


def oracle_replicas(demand_rps: float, capacity_rps: float, min_replicas: int, max_replicas: int) -> int:
    """Replicas an ideal autoscaler would run: just enough for the demand at the SLO, within the bounds."""
    need = math.ceil(demand_rps / capacity_rps - 1e-9) if demand_rps > 0 else 0
    return max(min_replicas, min(max_replicas, need))


def scale_down_time_s(hpa: HpaSpec, from_replicas: int) -> float | None:
    """Seconds the HPA's policies need to go from `from_replicas` to minReplicas once its window has passed.

    None when scale-down is disabled. With selectPolicy Max the fastest policy applies at each
    step, with Min the slowest (Kubernetes' rules for behavior.scaleDown).
    """
    if hpa.scale_down_select == "Disabled":
        return None
    target = hpa.min_replicas
    if from_replicas <= target:
        return 0.0

    def step(policy: ScalePolicy, n: int) -> int:
        if policy.type == "Pods":
            return policy.value
        return max(1, math.floor(n * policy.value / 100))

    n, elapsed = from_replicas, 0.0
    policies = hpa.scale_down_policies or [ScalePolicy(type="Percent", value=100, period_s=15)]
    while n > target:
        pick = max if hpa.scale_down_select == "Max" else min
        policy = pick(policies, key=lambda p: step(p, n))
        n = max(target, n - step(policy, n))
        if n > target:
            elapsed += policy.period_s
    return elapsed


def scale_down_bound_s(hpa: HpaSpec, peak_replicas: int, metric_lag_s: float = 60.0) -> float | None:
    """The longest a correct HPA should take to return to minReplicas after the load stops.

    stabilization window + the policies' steps + two sync periods + the metric pipeline's lag
    (scrape, adapter relist, query window). None when scale-down is disabled.
    """
    steps = scale_down_time_s(hpa, peak_replicas)
    if steps is None:
        return None
    return hpa.scale_down_stabilization_s + steps + 2 * hpa.sync_period_s + metric_lag_s


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
        self.hpa = hpa
        self.tolerance = tolerance
        self.load = [s for s in self.samples if s.phase == "load"]
        self.threshold = hpa.target_value * (1 + tolerance) if hpa else None
        # The size the load met: the last sample before it (or the first one, without a baseline).
        before = [s for s in self.samples if s.phase == "baseline" and s.hpa is not None]
        start = before[-1] if before else _first(self.samples, lambda s: s.hpa is not None)
        self.initial = start.hpa.current_replicas if start and start.hpa else None
        self.initial_desired = start.hpa.desired_replicas if start and start.hpa else None
        #: Samples from the load on: what happened before it (e.g. waiting for the metric) is not judged.
        self.judged = [s for s in self.samples if s.phase != "baseline"]
        self.crossed = self._crossed()
        self.scaled_up = self._scaled_up()
        self.ready = self._ready()
        self.scaled_down = self._scaled_down(load_stopped_at)

    def _crossed(self) -> TimelineSample | None:
        if self.hpa is None:
            return None
        hpa, limit = self.hpa, 1 + self.tolerance
        return _first(self.judged, lambda s: any(r > limit for r in metric_ratios(s, hpa).values()))

    def crossing_metric(self) -> str | None:
        """The metric whose ratio was highest at the crossing (what the HPA acted on)."""
        if self.crossed is None or self.hpa is None:
            return None
        ratios = metric_ratios(self.crossed, self.hpa)
        return max(ratios, key=lambda k: ratios[k]) if ratios else None

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
        # Negative when replicas rose before any metric crossed: the verdict fails that, never clamps it.
        m.seconds_to_first_scale_up = lm.scaled_up.t - lm.crossed.t
        m.scaled_up_on = lm.crossing_metric()
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
    m.slowest_ready_s = _slowest_ready(lm)
    # Under load only: the scale-down once the load stops is what `scaled_down` asks for, not a flap.
    m.reversals = reversals([s for s in lm.samples if s.phase != "tail"])
    if hpa is not None:
        m.minutes_pinned_at_max = _pinned_minutes(lm, hpa)
    windows = [s.requests for s in lm.load if s.requests is not None]
    finished = sum(w.finished for w in windows)
    if (
        last_locust is None
    ):  # open loop: the per-request records are the totals (requests that drain count too)
        every = [s.requests for s in lm.samples if s.requests is not None]
        m.total_requests = sum(w.finished for w in every)
        m.total_failures = sum(w.errors for w in every)
        m.prompt_tokens = sum(w.prompt_tokens for w in every)
        m.completion_tokens = sum(w.completion_tokens for w in every)
        if m.total_requests:
            m.error_ratio = m.total_failures / m.total_requests
    if finished:
        m.slo_attainment = 1 - sum(w.slo_misses for w in windows) / finished
        m.ttft_p95_ms = max((w.ttft_p95_ms for w in windows if w.ttft_p95_ms is not None), default=None)
        m.tpot_p95_ms = max((w.tpot_p95_ms for w in windows if w.tpot_p95_ms is not None), default=None)
    return m


def _slowest_ready(lm: Landmarks) -> float | None:
    """Longest wait, over every rise of desired replicas, until that many replicas were Ready."""
    worst: float | None = None
    pending: list[tuple[float, int]] = []  # (when desired rose, to how many)
    last_desired: int | None = None
    for s in lm.samples:
        if s.hpa is not None:
            if last_desired is not None and s.hpa.desired_replicas > last_desired:
                pending.append((s.t, s.hpa.desired_replicas))
            if last_desired is not None and s.hpa.desired_replicas < last_desired:
                # A scale-down cancels waits for replicas no longer wanted.
                pending = [(t0, min(n, s.hpa.desired_replicas)) for t0, n in pending]
            last_desired = s.hpa.desired_replicas
        if s.workload is None:
            continue
        still = []
        for t0, n in pending:
            if s.workload.ready_replicas >= n:
                worst = max(worst or 0.0, s.t - t0)
            else:
                still.append((t0, n))
        pending = still
    if pending and lm.samples:
        # Never Ready by the end of the run: at least this long.
        end = lm.samples[-1].t
        worst = max(worst or 0.0, *(end - t0 for t0, _ in pending))
    return worst


def _pinned_minutes(lm: Landmarks, hpa: HpaSpec) -> float:
    limit = 1 + lm.tolerance
    seconds = 0.0
    for s, dt in _intervals(lm.judged):
        if s.hpa is None or s.hpa.desired_replicas < hpa.max_replicas:
            continue
        if any(r > limit for r in metric_ratios(s, hpa).values()):
            seconds += dt
    return seconds / 60


def gpu_hours_against_oracle(
    samples: Sequence[TimelineSample], hpa: HpaSpec, capacity_rps: float
) -> tuple[float, float] | None:
    """(GPU-hours the workload held, GPU-hours the oracle would have) over the samples with a known demand.

    A replica holds its GPU from the moment it exists (current replicas), Ready or not.
    """
    held = oracle = 0.0
    seen = False
    for s, dt in _intervals(list(samples)):
        if s.hpa is None or s.demand_rps is None:
            continue
        seen = True
        held += s.hpa.current_replicas * dt / 3600
        oracle += oracle_replicas(s.demand_rps, capacity_rps, hpa.min_replicas, hpa.max_replicas) * dt / 3600
    return (held, oracle) if seen else None


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
    ok = lm.initial == hpa.min_replicas and lm.initial_desired == hpa.min_replicas
    detail = f"the run started at {lm.initial} replica(s); the HPA's minimum is {hpa.min_replicas}"
    if lm.initial_desired != lm.initial:
        detail += f" but it already wanted {lm.initial_desired}"
    return Check(
        name="starts_at_minimum",
        passed=ok,
        detail=detail if ok else detail + " (wait for the HPA to scale down before the test)",
    )


def _crossed_threshold(lm: Landmarks, hpa: HpaSpec, c: Criteria) -> Check:
    band = f"{lm.threshold or 0:g} (target {hpa.target_value:g} + {c.hpa_tolerance:.0%} HPA tolerance)"
    if lm.crossed is not None:
        metric = lm.crossing_metric()
        if metric is not None and metric != hpa.metric_name:
            target = next(m.target for m in hpa.all_metrics() if m.name == metric)
            return Check(
                name="utilization_crossed_threshold",
                passed=True,
                detail=(
                    f"{metric} passed {target * (1 + c.hpa_tolerance):g} (target {target:g} + "
                    f"{c.hpa_tolerance:.0%} HPA tolerance) at {lm.crossed.elapsed_s:.0f}s"
                ),
            )
        return Check(
            name="utilization_crossed_threshold",
            passed=True,
            detail=f"mean {_signal_label(hpa)} passed {band} at {lm.crossed.elapsed_s:.0f}s",
        )
    peak = max((s.utilization for s in lm.load if s.utilization is not None), default=None)
    return _failed(
        "utilization_crossed_threshold",
        f"mean GPU utilization never passed the HPA's scale-up threshold {band}; highest seen: "
        f"{_fmt(peak)}. The load proves nothing: raise --peak-users",
    )


def _scaled_up_in_time(lm: Landmarks, m: Measurements, c: Criteria) -> Check:
    name = "scaled_up_in_time"
    if lm.scaled_up is None:
        stayed = f"stayed at {lm.initial}" if lm.initial is not None else "were never read"
        return _failed(name, f"the HPA never scaled up: desired replicas {stayed} for the whole run")
    if lm.crossed is None:
        return _failed(
            name,
            f"desired replicas rose at {lm.scaled_up.elapsed_s:.0f}s without utilization above the threshold",
        )
    secs = m.seconds_to_first_scale_up or 0.0
    desired = lm.scaled_up.hpa.desired_replicas if lm.scaled_up.hpa else "?"
    if secs < 0:
        return _failed(
            name,
            f"desired replicas rose {lm.initial} -> {desired} at {lm.scaled_up.elapsed_s:.0f}s, "
            f"{-secs:.0f}s BEFORE any metric crossed its threshold: something other than the "
            "HPA's metrics scaled the workload",
        )
    return Check(
        name=name,
        passed=secs <= c.scale_up_within_s,
        detail=(
            f"desired replicas rose {lm.initial} -> {desired} "
            f"{secs:.0f}s after {_signal_name(lm, m.scaled_up_on)} crossed the threshold "
            f"(bound {c.scale_up_within_s:g}s)"
        ),
    )


def _no_flapping(lm: Landmarks, m: Measurements, c: Criteria) -> Check:
    span = (lm.load[-1].t - lm.load[0].t) if lm.load else 0.0
    allowed = c.max_reversals_per_10min * max(1.0, span / 600)
    count = m.reversals or 0
    return Check(
        name="no_flapping",
        passed=count <= allowed,
        detail=(
            f"desired replicas reversed direction {count} time(s) in {span / 60:.1f} min of load "
            f"(allowed {c.max_reversals_per_10min:g} per 10 min: {allowed:.1f}; the scale-down after "
            "the load is not counted)"
        ),
    )


def _not_pinned_at_max(m: Measurements, hpa: HpaSpec, c: Criteria) -> Check:
    minutes = m.minutes_pinned_at_max or 0.0
    return Check(
        name="not_pinned_at_max",
        passed=minutes <= c.max_minutes_pinned_at_max,
        detail=(
            f"{minutes:.1f} min at maxReplicas {hpa.max_replicas} with a metric still over its threshold "
            f"(bound {c.max_minutes_pinned_at_max:g} min): "
            + (
                "maxReplicas too low for the load, or a metric that cannot come down by adding replicas"
                if minutes > c.max_minutes_pinned_at_max
                else "never starved for replicas"
            )
        ),
    )


def _overprovision(lm: Landmarks, m: Measurements, hpa: HpaSpec, c: Criteria) -> Check:
    name = "gpu_hours_vs_oracle"
    if c.skip_overprovision:
        return Check(name=name, passed=True, detail="skipped (--skip-overprovision)")
    if c.capacity_rps is None:
        return _failed(
            name,
            "per-replica capacity unknown, so over-provisioning cannot be judged: calibrate "
            "(--calibrate) or pass --capacity-rps from a calibration",
        )
    result = gpu_hours_against_oracle(lm.load, hpa, c.capacity_rps)
    if result is None:
        return _failed(name, "no load sample had a known demand (requests/s)")
    held, oracle = result
    m.gpu_hours, m.oracle_gpu_hours = held, oracle
    ratio = held / oracle if oracle > 0 else math.inf
    m.overprovision_ratio = ratio
    return Check(
        name=name,
        passed=ratio <= c.max_overprovision,
        detail=(
            f"{held:.3f} GPU-hours during the load vs {oracle:.3f} for an oracle running "
            f"ceil(demand / {c.capacity_rps:.2f} req/s per replica{c.capacity_source}) replicas: "
            f"{ratio:.2f}x (bound {c.max_overprovision:g}x)"
        ),
    )


def _slo_attainment(m: Measurements, c: Criteria) -> Check:
    name = "slo_attainment"
    slo = f"TTFT <= {c.slo_ttft_ms:g} ms and TPOT <= {c.slo_tpot_ms:g} ms"
    if m.slo_attainment is None:
        return _failed(
            name, f"no per-request records, so {slo} cannot be judged (use the open-loop load mode)"
        )
    return Check(
        name=name,
        passed=m.slo_attainment >= c.min_slo_attainment,
        detail=(
            f"{m.slo_attainment:.2%} of requests met {slo} (required {c.min_slo_attainment:.0%}; "
            f"worst window p95 TTFT {_fmt(m.ttft_p95_ms, '.0f')} ms, TPOT {_fmt(m.tpot_p95_ms, '.0f')} ms)"
        ),
    )


def _signal_name(lm: Landmarks, metric: str | None) -> str:
    if metric is None or (lm.hpa is not None and metric == lm.hpa.metric_name):
        return "utilization"
    return metric


def _metric_never_missing(lm: Landmarks) -> Check:
    failures = metric_failures(lm.judged)
    if not failures:
        return Check(
            name="metric_never_missing",
            passed=True,
            detail="from the load on, no sample had ScalingActive=False or a FailedGet*Metric condition",
        )
    s, why = failures[0]
    return _failed(
        "metric_never_missing",
        f"the HPA reported its metric missing in {len(failures)} sample(s), "
        f"first at {s.elapsed_s:.0f}s: {why}",
    )


def _new_replicas_ready(lm: Landmarks, m: Measurements, c: Criteria) -> Check:
    if lm.ready is not None:
        ready = lm.ready.workload.ready_replicas if lm.ready.workload else "?"
        slowest = m.slowest_ready_s if m.slowest_ready_s is not None else m.seconds_to_ready or 0.0
        in_time = slowest <= c.ready_within_s
        return Check(
            name="new_replicas_ready",
            passed=in_time,
            detail=(
                f"{ready} replicas Ready {m.seconds_to_ready or 0:.0f}s after the scale-up; slowest "
                f"scale-up to Ready {slowest:.0f}s (bound {c.ready_within_s:g}s"
                + ("" if in_time else ": image pull, model load or node boot too slow for the load")
                + ")"
            ),
        )
    if lm.scaled_up is None:
        return _failed("new_replicas_ready", "no scale-up, so no new replicas")
    most = max((s.workload.ready_replicas for s in lm.samples if s.workload), default=None)
    return _failed(
        "new_replicas_ready",
        f"the new replicas never all became Ready (at most {most} Ready; Pending pods: no GPU node?)",
    )


def _primary(s: TimelineSample, hpa: HpaSpec) -> float | None:
    """The value of the HPA's first metric at one sample (Prometheus' GPU mean for the GPU metric)."""
    value = s.hpa.metrics.get(hpa.metric_name) if s.hpa else None
    return s.utilization if value is None and hpa.metric_name == DEFAULT_METRIC_NAME else value


def _signal_label(hpa: HpaSpec) -> str:
    return "GPU utilization" if hpa.metric_name == DEFAULT_METRIC_NAME else hpa.metric_name


def _settled_below_target(lm: Landmarks, hpa: HpaSpec) -> Check:
    settled = None
    if lm.ready is not None and lm.initial is not None:
        initial, ready_t = lm.initial, lm.ready.t
        settled = _first(
            lm.load,
            lambda s: (
                s.t >= ready_t
                and bool(metric_ratios(s, hpa))
                and all(r < 1 for r in metric_ratios(s, hpa).values())
                and s.workload is not None
                and s.workload.ready_replicas > initial
            ),
        )
    if settled is not None:
        ready = settled.workload.ready_replicas if settled.workload else "?"
        label = "utilization" if hpa.metric_name == DEFAULT_METRIC_NAME else hpa.metric_name
        return Check(
            name="settled_below_target",
            passed=True,
            detail=(
                f"at {ready} Ready replicas {label} fell to {_fmt(_primary(settled, hpa))} < target "
                f"{hpa.target_value:g} at {settled.elapsed_s:.0f}s"
            ),
        )
    after = [s.utilization for s in lm.load if lm.ready and s.t >= lm.ready.t and s.utilization is not None]
    where = f" (lowest after scale-up: {min(after):.1f})" if after else " while the load lasted"
    return _failed(
        "settled_below_target", "utilization never came back under the target at a larger size" + where
    )


def _p95(m: Measurements, c: Criteria) -> Check:
    if m.max_p95_ms is None:
        return _failed("p95_within_slo", "no latency was measured (no requests completed)")
    return Check(
        name="p95_within_slo",
        passed=m.max_p95_ms <= c.slo_p95_ms,
        detail=f"worst p95 latency {m.max_p95_ms:.0f} ms (SLO {c.slo_p95_ms:g} ms)",
    )


def _errors(m: Measurements, c: Criteria) -> Check:
    if not m.total_requests:
        return _failed("error_ratio", "no requests were sent: is --target the inference API?")
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
        return _failed(name, "no scale-up, so no scale-down to see")
    if m.seconds_to_scale_down is None:
        return _failed(
            name,
            f"replicas did not come back to {lm.initial} "
            f"within {c.scale_down_within_s or 0:g}s after the load",
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
        _new_replicas_ready(lm, m, criteria),
        _settled_below_target(lm, hpa),
        _not_pinned_at_max(m, hpa, criteria),
        _no_flapping(lm, m, criteria),
        _overprovision(lm, m, hpa, criteria),
        _slo_attainment(m, criteria) if m.slo_attainment is not None else _p95(m, criteria),
        _errors(m, criteria),
        _scaled_down(lm, m, criteria),
    ]
    return m, checks
