"""Per-replica capacity at an SLO, measured: open-loop steps of rising rate against one replica.

Each step offers one constant rate (Poisson arrivals) for `step_s` seconds, waits for its
requests to finish (or time out), and computes the share of its requests that met the SLO
(TTFT <= x and TPOT <= y; failures count as misses). The capacity is the highest rate of the
climb before the first step that missed the attainment target. Every step's records are kept
(`<out_dir>/step-NN.jsonl`) with the table in `<out_dir>/calibration.json`.

Point it at ONE replica (its pod or a port-forward to it), not at a load-balanced front door:
the figure is per replica, so a scaling rule can divide demand by it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gpu_inference.adapters.openloop import OpenLoopOptions, OpenLoopSummary, run_open_loop_async
from gpu_inference.domain.rate_shapes import ConstantRate
from gpu_inference.domain.requests import Slo
from gpu_inference.errors import ConfigError, GpuInferenceError

log = logging.getLogger(__name__)


class CalibrationOptions(BaseModel):
    """The climb: which rates, how long each, what attainment counts as meeting the SLO."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Explicit rates (requests/s), increasing; None: start_rate * growth**i up to max_rate.
    rates: list[float] | None = None
    start_rate: float = Field(0.5, gt=0)
    growth: float = Field(1.5, gt=1)
    max_rate: float = Field(200.0, gt=0)
    #: Seconds of load per step (more for a step whose rate would give under min_requests).
    step_s: float = Field(30.0, gt=0)
    min_requests: int = Field(50, ge=1)
    #: Pause between steps so the replica empties its queue.
    cooldown_s: float = Field(5.0, ge=0)
    #: Share of a step's requests that must meet the SLO.
    target_attainment: float = Field(0.99, gt=0, le=1)
    #: Stop climbing after this many steps in a row below the target.
    stop_after_misses: int = Field(1, ge=1)
    #: How requests are made (prompt, max_tokens, timeout, cap, seed: step i uses seed + i).
    request: OpenLoopOptions = OpenLoopOptions()
    out_dir: Path = Path("out/calibrate")

    @classmethod
    def quick(cls, target_attainment: float, request: OpenLoopOptions, out_dir: Path) -> CalibrationOptions:
        """The climb verify-scaleup and the demo run: 10 s steps doubling from 1 req/s, then finer steps."""
        return cls(
            start_rate=1.0,
            growth=2.0,
            step_s=10.0,
            min_requests=20,
            cooldown_s=2.0,
            target_attainment=target_attainment,
            request=request,
            out_dir=out_dir,
        )

    @model_validator(mode="after")
    def _rates_increase(self) -> CalibrationOptions:
        if self.rates is not None:
            if not self.rates:
                raise ValueError("rates is empty")
            if any(r <= 0 for r in self.rates) or any(b <= a for a, b in itertools.pairwise(self.rates)):
                raise ValueError(f"rates must be positive and increasing, got {self.rates}")
        elif self.start_rate > self.max_rate:
            raise ValueError(f"start_rate {self.start_rate:g} is above max_rate {self.max_rate:g}")
        return self

    def ladder(self) -> list[float]:
        """The rates the climb may try, in order."""
        if self.rates is not None:
            return list(self.rates)
        n = math.floor(math.log(self.max_rate / self.start_rate) / math.log(self.growth) + 1e-9) + 1
        return [round(self.start_rate * self.growth**i, 6) for i in range(n)]

    def step_seconds(self, rate: float) -> float:
        return max(self.step_s, self.min_requests / rate)


class CalibrationStep(BaseModel):
    """One measured step."""

    model_config = ConfigDict(frozen=True)

    rate: float
    duration_s: float
    requests: int
    ok: int
    failed: int
    attainment: float | None
    met_target: bool
    achieved_rps: float | None
    goodput_rps: float
    ttft_p50_s: float | None
    ttft_p99_s: float | None
    tpot_p50_s: float | None
    tpot_p99_s: float | None
    #: Arrivals dropped at the client's max_in_flight (counted as misses).
    dropped_at_cap: int
    simulated: bool
    records_path: str


class Calibration(BaseModel):
    """The capacity of one replica at the SLO, and the table it came from."""

    model_config = ConfigDict(frozen=True)

    url: str
    slo: Slo
    target_attainment: float
    #: The highest rate (requests/s) of the climb before the first step below the target.
    capacity_rps: float | None
    steps: list[CalibrationStep]
    #: Any response named the GPU simulator: the capacity is SIMULATED.
    simulated: bool
    #: Things the reader should know (a later step met the target again, the client cap was hit).
    notes: list[str] = []

    def table(self) -> str:
        """The steps as a plain-text table."""
        label = " (SIMULATED)" if self.simulated else ""
        lines = [
            f"capacity at TTFT <= {self.slo.ttft_s:g}s, TPOT <= {self.slo.tpot_s:g}s, "
            f"{self.target_attainment:.1%} attainment: "
            + (f"{self.capacity_rps:g} req/s{label}" if self.capacity_rps is not None else "none"),
            f"{'rate':>8} {'sent':>6} {'ok':>6} {'attain':>7} {'TTFT p99':>9} {'TPOT p99':>9} {'goodput':>8}",
        ]
        for s in self.steps:
            att = f"{s.attainment:.1%}" if s.attainment is not None else "-"
            ttft = f"{s.ttft_p99_s:.3f}" if s.ttft_p99_s is not None else "-"
            tpot = f"{s.tpot_p99_s:.4f}" if s.tpot_p99_s is not None else "-"
            mark = "" if s.met_target else "  MISS"
            row = f"{s.rate:>8g} {s.requests:>6} {s.ok:>6} {att:>7} {ttft:>9} {tpot:>9}"
            lines.append(f"{row} {s.goodput_rps:>8.2f}{mark}")
        return "\n".join(lines)


class NoCapacityError(GpuInferenceError):
    """Not even the lowest rate met the SLO; `calibration` holds the measured table."""

    def __init__(self, calibration: Calibration) -> None:
        self.calibration = calibration
        first = calibration.steps[0]
        att = f"{first.attainment:.1%}" if first.attainment is not None else "no requests"
        super().__init__(
            f"no rate met the SLO (TTFT <= {calibration.slo.ttft_s:g}s, TPOT <= {calibration.slo.tpot_s:g}s) "
            f"for {calibration.target_attainment:.1%} of requests: at the lowest rate, {first.rate:g} req/s, "
            f"{att} did (TTFT p99 {first.ttft_p99_s}, TPOT p99 {first.tpot_p99_s}, {first.failed} failed). "
            "Fix: relax the SLO, start lower (start_rate/rates), or check the replica"
        )


def _step(rate: float, duration_s: float, summary: OpenLoopSummary, target: float) -> CalibrationStep:
    stats = summary.stats
    att = stats.attainment
    fraction = att.fraction if att is not None else None
    return CalibrationStep(
        rate=rate,
        duration_s=duration_s,
        requests=stats.requests,
        ok=stats.ok,
        failed=stats.failed,
        attainment=fraction,
        met_target=fraction is not None and fraction >= target,
        achieved_rps=stats.achieved_rps,
        goodput_rps=(att.met if att is not None else 0) / duration_s,
        ttft_p50_s=stats.ttft.p50,
        ttft_p99_s=stats.ttft.p99,
        tpot_p50_s=stats.tpot.p50,
        tpot_p99_s=stats.tpot.p99,
        dropped_at_cap=summary.dropped_at_cap,
        simulated=summary.simulated,
        records_path=summary.records_path,
    )


def _capacity(steps: list[CalibrationStep]) -> float | None:
    best = None
    for s in steps:
        if not s.met_target:
            break
        best = s.rate
    return best


async def calibrate_async(url: str, slo: Slo, options: CalibrationOptions) -> Calibration:
    """Measure one replica's capacity at `slo` (see the module docstring)."""
    options.out_dir.mkdir(parents=True, exist_ok=True)
    for stale in options.out_dir.glob("step-*.jsonl"):  # a longer earlier climb's steps
        stale.unlink()
    steps: list[CalibrationStep] = []
    misses_in_a_row = 0
    for i, rate in enumerate(options.ladder()):
        if i and options.cooldown_s:
            await asyncio.sleep(options.cooldown_s)
        duration = options.step_seconds(rate)
        request = options.request.model_copy(update={"seed": options.request.seed + i})
        summary = await run_open_loop_async(
            url,
            ConstantRate(rate=rate, duration_s=duration),
            request,
            options.out_dir / f"step-{i:02d}.jsonl",
            slo=slo,
        )
        step = _step(rate, duration, summary, options.target_attainment)
        steps.append(step)
        log.info(
            "calibrate: %g req/s for %.0fs: %d requests, attainment %s%s",
            rate,
            duration,
            step.requests,
            "-" if step.attainment is None else f"{step.attainment:.1%}",
            "" if step.met_target else " (below target)",
        )
        misses_in_a_row = 0 if step.met_target else misses_in_a_row + 1
        if misses_in_a_row >= options.stop_after_misses:
            break
    notes = []
    capacity = _capacity(steps)
    after = [s.rate for s in steps if s.met_target and (capacity is None or s.rate > capacity)]
    if after:
        notes.append(
            f"steps at {', '.join(f'{r:g}' for r in after)} req/s met the target again after a miss: "
            "the capacity is taken before the first miss; lengthen step_s for steadier steps"
        )
    capped = [s.rate for s in steps if s.dropped_at_cap]
    if capped:
        notes.append(
            f"the client's max_in_flight ({options.request.max_in_flight}) was hit at "
            f"{', '.join(f'{r:g}' for r in capped)} req/s; dropped arrivals counted as misses"
        )
    if steps and capacity == steps[-1].rate and steps[-1].met_target:
        notes.append(f"every step met the target up to {capacity:g} req/s: raise max_rate to find the limit")
    calibration = Calibration(
        url=url,
        slo=slo,
        target_attainment=options.target_attainment,
        capacity_rps=capacity,
        steps=steps,
        simulated=any(s.simulated for s in steps),
        notes=notes,
    )
    (options.out_dir / "calibration.json").write_text(calibration.model_dump_json(indent=2) + "\n")
    if capacity is None:
        raise NoCapacityError(calibration)
    return calibration


def calibrate(url: str, slo: Slo, options: CalibrationOptions | None = None) -> Calibration:
    """Blocking form of `calibrate_async`. Raises NoCapacityError if no rate met the SLO."""
    return asyncio.run(calibrate_async(url, slo, options or CalibrationOptions()))


def calibration_options(params: Mapping[str, Any], *, setting: str = "calibration") -> CalibrationOptions:
    """CalibrationOptions from a mapping of values; bad input raises ConfigError naming the field."""
    try:
        return CalibrationOptions.model_validate(params)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        name = f"{setting} {where}".strip()
        raise ConfigError(
            name, err["msg"].removeprefix("Value error, "), "see docs/loadtest.md, Calibration"
        ) from None
