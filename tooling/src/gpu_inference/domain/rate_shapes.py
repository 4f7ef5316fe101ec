"""Rate shapes for open-loop load: offered requests/s as a pure function of time.

Each shape is defined on a nominal clock of `duration_s` seconds and run `time_scale` (k)
times faster: a run lasts duration_s / k seconds and `demand(t)` at run time t is the
nominal rate at t * k. Rates are not scaled, only the clock: a diurnal day compressed 144x
into 10 minutes offers the same requests/s as the real day, its changes 144x faster.

The names and phases follow the locust shapes in loadtest/shapes/ where they have a
counterpart (users there, requests/s here):

=========  =====================================  ==========================================
shape      locust knob                            here
=========  =====================================  ==========================================
step       LOADTEST_PEAK_USERS, LOADTEST_STEPS,   peak_rate, steps (4), rise_fraction (0.5):
           LOADTEST_RISE_FRACTION                 peak * (i + 1) / steps, then the peak
ramp       LOADTEST_BASE_USERS -> PEAK_USERS      base_rate -> peak_rate over rise_fraction
spike      LOADTEST_SPIKE_START / _END            spike_start (0.2), spike_end (0.7)
diurnal    raised cosine over the duration        the same; nominal day 86400 s, k = 144
constant   -                                      one rate (calibration steps)
bursts     -                                      off_s at base_rate, on_s at peak_rate, repeated
from-idle  -                                      idle_s at zero, then peak_rate to the end
=========  =====================================  ==========================================

There is no spawn rate: arrivals are instantaneous by construction.
`poisson_arrivals` draws the arrival times of a non-homogeneous Poisson process with a seeded
RNG (thinning: candidates at the shape's peak rate, each kept with probability rate/peak).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from gpu_inference.domain.models import StrictModel
from gpu_inference.errors import ConfigError


class _RateShape(StrictModel):
    """Common parameters: the nominal duration and the clock compression."""

    #: Nominal length of the shape (seconds on its own clock).
    duration_s: float = Field(300.0, gt=0)
    #: k: the run's clock goes k times faster than the nominal one (run length duration_s / k).
    time_scale: float = Field(1.0, gt=0)

    description: ClassVar[str] = ""

    @property
    def run_duration_s(self) -> float:
        """How long a run of this shape lasts (seconds of wall time)."""
        return self.duration_s / self.time_scale

    def nominal_rate(self, u: float) -> float:
        """Requests/s at nominal time u (0 <= u < duration_s)."""
        raise NotImplementedError

    def max_rate(self) -> float:
        """An upper bound of the rate over the whole shape."""
        raise NotImplementedError

    def demand(self, t: float) -> float:
        """Offered requests/s at run time t (seconds since the run started); 0 outside the run."""
        if t < 0 or t >= self.run_duration_s:
            return 0.0
        return self.nominal_rate(t * self.time_scale)

    def breakpoints(self) -> list[float]:
        """Run times where the rate jumps (integration splits there); none for smooth shapes."""
        return []

    def expected_arrivals(self, t0: float = 0.0, t1: float | None = None) -> float:
        """Integral of demand over [t0, t1) run seconds: the mean number of Poisson arrivals."""
        end = self.run_duration_s if t1 is None else min(t1, self.run_duration_s)
        start = max(0.0, t0)
        if end <= start:
            return 0.0
        cuts = sorted({start, end, *(b for b in self.breakpoints() if start < b < end)})
        total = 0.0
        for a, b in itertools.pairwise(cuts):
            n = 200
            h = (b - a) / n
            total += sum(self.demand(a + (i + 0.5) * h) for i in range(n)) * h
        return total


class ConstantRate(_RateShape):
    """One rate for the whole run."""

    kind: Literal["constant"] = "constant"
    rate: float = Field(gt=0)

    description: ClassVar[str] = "one rate for the whole run"

    def nominal_rate(self, u: float) -> float:
        return self.rate

    def max_rate(self) -> float:
        return self.rate


class StepRate(_RateShape):
    """Climbs to the peak in equal steps over the rise, then holds it (like loadtest/shapes/step.py)."""

    kind: Literal["step"] = "step"
    peak_rate: float = Field(gt=0)
    steps: int = Field(4, ge=1)
    rise_fraction: float = Field(0.5, gt=0, le=1)

    description: ClassVar[str] = "peak * (i+1)/steps over the rise, then the peak"

    def nominal_rate(self, u: float) -> float:
        rise = self.duration_s * self.rise_fraction
        step = min(int(u / (rise / self.steps)), self.steps - 1)
        return self.peak_rate * (step + 1) / self.steps

    def max_rate(self) -> float:
        return self.peak_rate

    def breakpoints(self) -> list[float]:
        rise = self.duration_s * self.rise_fraction
        return [i * rise / self.steps / self.time_scale for i in range(1, self.steps)]


class _BasePeak(_RateShape):
    base_rate: float = Field(0.0, ge=0)
    peak_rate: float = Field(gt=0)

    @model_validator(mode="after")
    def _base_below_peak(self) -> _BasePeak:
        if self.base_rate > self.peak_rate:
            raise ValueError(f"base_rate {self.base_rate:g} is above peak_rate {self.peak_rate:g}")
        return self

    def max_rate(self) -> float:
        return self.peak_rate

    def between(self, frac: float) -> float:
        """The rate a fraction `frac` of the way from base (0) to peak (1)."""
        return self.base_rate + (self.peak_rate - self.base_rate) * frac


class RampRate(_BasePeak):
    """Linear from base to peak over the rise, then holds the peak (like loadtest/shapes/ramp.py)."""

    kind: Literal["ramp"] = "ramp"
    rise_fraction: float = Field(0.5, gt=0, le=1)

    description: ClassVar[str] = "base -> peak linearly over the rise, then the peak"

    def nominal_rate(self, u: float) -> float:
        return self.between(min(1.0, u / (self.duration_s * self.rise_fraction)))


class _TwoLevel(_BasePeak):
    """The peak rate while `at_peak(u)`, the base rate otherwise."""

    def at_peak(self, u: float) -> bool:
        """Whether nominal time u falls in a peak phase."""
        raise NotImplementedError

    def nominal_rate(self, u: float) -> float:
        return self.peak_rate if self.at_peak(u) else self.base_rate


class SpikeRate(_TwoLevel):
    """Base, the peak between spike_start and spike_end (fractions), base again (like spike.py)."""

    kind: Literal["spike"] = "spike"
    spike_start: float = Field(0.2, ge=0, le=1)
    spike_end: float = Field(0.7, ge=0, le=1)

    description: ClassVar[str] = "base, the peak from spike_start to spike_end, base"

    @model_validator(mode="after")
    def _ordered(self) -> SpikeRate:
        if not self.spike_start < self.spike_end:
            raise ValueError(f"spike_start {self.spike_start:g} must be below spike_end {self.spike_end:g}")
        return self

    def at_peak(self, u: float) -> bool:
        return self.spike_start * self.duration_s <= u < self.spike_end * self.duration_s

    def breakpoints(self) -> list[float]:
        return [f * self.run_duration_s for f in (self.spike_start, self.spike_end)]


class DiurnalRate(_BasePeak):
    """One day: a raised cosine from base at the start to the peak mid-run and back (like diurnal.py)."""

    kind: Literal["diurnal"] = "diurnal"
    duration_s: float = Field(86400.0, gt=0)
    time_scale: float = Field(144.0, gt=0)

    description: ClassVar[str] = "raised cosine: base at the ends, the peak at mid-run"

    def nominal_rate(self, u: float) -> float:
        return self.between((1 - math.cos(2 * math.pi * u / self.duration_s)) / 2)


class BurstsRate(_TwoLevel):
    """On/off bursts: off_s at the base rate, then on_s at the peak, repeated to the end."""

    kind: Literal["bursts"] = "bursts"
    on_s: float = Field(30.0, gt=0)
    off_s: float = Field(60.0, gt=0)

    description: ClassVar[str] = "off_s at base, on_s at peak, repeated"

    def at_peak(self, u: float) -> bool:
        return u % (self.on_s + self.off_s) >= self.off_s

    def breakpoints(self) -> list[float]:
        period = self.on_s + self.off_s
        cuts: list[float] = []
        start = 0.0
        while start < self.duration_s:
            cuts += [(start + self.off_s) / self.time_scale, (start + period) / self.time_scale]
            start += period
        return cuts


class FromIdleRate(_RateShape):
    """Start from idle: no requests for idle_s, then the peak rate to the end (cold start)."""

    kind: Literal["from-idle"] = "from-idle"
    peak_rate: float = Field(gt=0)
    idle_s: float = Field(60.0, ge=0)

    description: ClassVar[str] = "zero for idle_s, then the peak"

    @model_validator(mode="after")
    def _idle_inside(self) -> FromIdleRate:
        if self.idle_s >= self.duration_s:
            raise ValueError(f"idle_s {self.idle_s:g} leaves no load in duration_s {self.duration_s:g}")
        return self

    def nominal_rate(self, u: float) -> float:
        return self.peak_rate if u >= self.idle_s else 0.0

    def max_rate(self) -> float:
        return self.peak_rate

    def breakpoints(self) -> list[float]:
        return [self.idle_s / self.time_scale]


RateShape = Annotated[
    ConstantRate | StepRate | RampRate | SpikeRate | DiurnalRate | BurstsRate | FromIdleRate,
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter[RateShape] = TypeAdapter(RateShape)

#: Every shape by name.
SHAPES: dict[str, type[_RateShape]] = {
    "constant": ConstantRate,
    "step": StepRate,
    "ramp": RampRate,
    "spike": SpikeRate,
    "diurnal": DiurnalRate,
    "bursts": BurstsRate,
    "from-idle": FromIdleRate,
}


def rate_shape(kind: str, params: Mapping[str, Any], *, setting: str = "rate shape") -> RateShape:
    """Build a shape from its name and parameters (strings as from KEY=VALUE are fine).

    Bad input raises ConfigError naming `setting`, the shape and the parameter.
    """
    if kind not in SHAPES:
        raise ConfigError(setting, f"unknown rate shape '{kind}'", f"use one of {', '.join(SHAPES)}")
    try:
        return _ADAPTER.validate_python({**params, "kind": kind})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"] if p != kind)
        fields = ", ".join(f for f in SHAPES[kind].model_fields if f != "kind")
        name = f"{setting} '{kind}'" + (f" {where}" if where else "")
        raise ConfigError(
            name, err["msg"].removeprefix("Value error, "), f"give valid values; '{kind}' takes {fields}"
        ) from None


def parse_rate_shape(
    kind: str, settings: list[str] | Mapping[str, str], *, setting: str = "rate shape"
) -> RateShape:
    """`rate_shape` from KEY=VALUE strings (as a command line gives them)."""
    if isinstance(settings, Mapping):
        return rate_shape(kind, settings, setting=setting)
    params: dict[str, str] = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(setting, f"'{item}' is not KEY=VALUE", "write e.g. peak_rate=20")
        params[key.strip()] = value.strip()
    return rate_shape(kind, params, setting=setting)


def iter_poisson_arrivals(shape: RateShape, seed: int) -> Iterator[float]:
    """Arrival times (run seconds, increasing) of a Poisson process with rate shape.demand(t).

    Lewis-Shedler thinning: candidates at rate max_rate(), each kept with probability
    demand(t) / max_rate(). The same seed gives the same arrivals.
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible schedule, not a secret
    peak = shape.max_rate()
    end = shape.run_duration_s
    if peak <= 0:
        return
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= end:
            return
        if rng.random() * peak < shape.demand(t):
            yield t


def poisson_arrivals(shape: RateShape, seed: int) -> list[float]:
    """All arrival times of `iter_poisson_arrivals` as a list."""
    return list(iter_poisson_arrivals(shape, seed))
