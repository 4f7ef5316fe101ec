"""Rate shapes: their phases, the clock compression, the integral, the seeded Poisson arrivals."""

from __future__ import annotations

import math

import pytest

from gpu_inference.domain.rate_shapes import (
    SHAPES,
    BurstsRate,
    ConstantRate,
    DiurnalRate,
    FromIdleRate,
    RampRate,
    SpikeRate,
    StepRate,
    parse_rate_shape,
    poisson_arrivals,
    rate_shape,
)
from gpu_inference.errors import ConfigError

pytestmark = pytest.mark.unit


def test_step_climbs_in_equal_steps_then_holds_like_the_locust_shape() -> None:
    # loadtest/shapes/step.py: ceil(peak * (step + 1) / steps) users; here the same fractions of the rate.
    s = StepRate(peak_rate=20, steps=4, rise_fraction=0.5, duration_s=400)
    assert [s.demand(t) for t in (0, 49.9, 50, 100, 150, 199.9, 200, 399.9)] == [5, 5, 10, 15, 20, 20, 20, 20]
    assert s.demand(400) == 0
    assert s.demand(-1) == 0
    assert s.expected_arrivals() == pytest.approx(50 * (5 + 10 + 15 + 20) + 200 * 20)


def test_ramp_spike_diurnal_bursts_idle() -> None:
    ramp = RampRate(base_rate=2, peak_rate=10, duration_s=100, rise_fraction=0.5)
    assert [ramp.demand(t) for t in (0, 25, 50, 99)] == [2, 6, 10, 10]
    spike = SpikeRate(base_rate=1, peak_rate=30, duration_s=100)
    assert [spike.demand(t) for t in (0, 19.9, 20, 69.9, 70)] == [1, 1, 30, 30, 1]
    assert spike.expected_arrivals() == pytest.approx(50 * 30 + 50 * 1)
    day = DiurnalRate(base_rate=2, peak_rate=10)
    assert day.run_duration_s == pytest.approx(600)  # 86400 s at k = 144
    assert day.demand(0) == pytest.approx(2)
    assert day.demand(300) == pytest.approx(10)
    assert day.demand(150) == pytest.approx(6)
    assert day.expected_arrivals() == pytest.approx(600 * 6, rel=1e-4)
    bursts = BurstsRate(base_rate=0, peak_rate=8, on_s=10, off_s=20, duration_s=90)
    assert [bursts.demand(t) for t in (0, 19.9, 20, 29.9, 30, 50, 89)] == [0, 0, 8, 8, 0, 8, 8]
    assert bursts.expected_arrivals() == pytest.approx(3 * 10 * 8)
    idle = FromIdleRate(peak_rate=5, idle_s=30, duration_s=100)
    assert [idle.demand(t) for t in (0, 29.9, 30, 99)] == [0, 0, 5, 5]
    assert idle.expected_arrivals() == pytest.approx(70 * 5)


def test_time_scale_compresses_the_clock_not_the_rate() -> None:
    slow = SpikeRate(base_rate=1, peak_rate=30, duration_s=3600)
    fast = SpikeRate(base_rate=1, peak_rate=30, duration_s=3600, time_scale=60)
    assert fast.run_duration_s == pytest.approx(60)
    for t in (0.0, 11.9, 12.0, 41.9, 42.0, 59.9):
        assert fast.demand(t) == slow.demand(t * 60)
    assert fast.max_rate() == slow.max_rate() == 30
    assert fast.expected_arrivals() == pytest.approx(slow.expected_arrivals() / 60)


def test_expected_arrivals_over_a_window() -> None:
    s = ConstantRate(rate=4, duration_s=10)
    assert s.expected_arrivals(2, 5) == pytest.approx(12)
    assert s.expected_arrivals(8, 20) == pytest.approx(8)
    assert s.expected_arrivals(5, 5) == 0


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_poisson_count_matches_the_integral_for_every_shape(kind: str) -> None:
    params = {"peak_rate": 40, "duration_s": 60}
    if kind == "constant":
        params = {"rate": 40, "duration_s": 60}
    if kind == "bursts":
        params |= {"on_s": 5, "off_s": 5}
    if kind == "from-idle":
        params |= {"idle_s": 10}
    if kind == "diurnal":
        params |= {"base_rate": 5, "time_scale": 1}
    shape = rate_shape(kind, params)
    expected = shape.expected_arrivals()
    arrivals = poisson_arrivals(shape, seed=11)
    assert arrivals == sorted(arrivals)
    assert all(0 <= t < shape.run_duration_s for t in arrivals)
    assert abs(len(arrivals) - expected) <= 4 * math.sqrt(expected), (len(arrivals), expected)
    # Arrivals follow the shape in time, too: per 10 s slice, within 4 standard deviations.
    for t0 in range(0, 60, 10):
        m = shape.expected_arrivals(t0, t0 + 10)
        n = sum(1 for t in arrivals if t0 <= t < t0 + 10)
        assert abs(n - m) <= 4 * math.sqrt(m) + 1, (kind, t0, n, m)


def test_seeded_arrivals_repeat_and_seeds_differ() -> None:
    shape = ConstantRate(rate=10, duration_s=30)
    assert poisson_arrivals(shape, 1) == poisson_arrivals(shape, 1)
    assert poisson_arrivals(shape, 1) != poisson_arrivals(shape, 2)
    # Exponential gaps: the mean gap is 1/rate (within a few standard errors for ~300 gaps).
    gaps = [b - a for a, b in zip(poisson_arrivals(shape, 3), poisson_arrivals(shape, 3)[1:], strict=False)]
    assert sum(gaps) / len(gaps) == pytest.approx(0.1, rel=0.25)
    assert poisson_arrivals(FromIdleRate(peak_rate=5, idle_s=10, duration_s=20), 1)[0] >= 10


def test_parse_from_key_value_settings() -> None:
    shape = parse_rate_shape("ramp", ["peak_rate=12", "base_rate = 2", "duration_s=60", "time_scale=2"])
    assert isinstance(shape, RampRate)
    assert shape.run_duration_s == 30
    assert shape.demand(29) == 12


@pytest.mark.parametrize(
    ("kind", "settings", "message"),
    [
        ("wave", [], "unknown rate shape 'wave'"),
        ("ramp", [], "'ramp' peak_rate: Field required"),
        ("step", ["peak_rate=abc"], "'step' peak_rate"),
        ("step", ["peak_rate=5", "users=3"], "'step' users"),
        ("spike", ["peak_rate=5", "spike_start=0.8"], "spike_start 0.8 must be below spike_end 0.7"),
        ("ramp", ["peak_rate=5", "base_rate=6"], "base_rate 6 is above peak_rate 5"),
        ("from-idle", ["peak_rate=5", "idle_s=400"], "idle_s 400 leaves no load"),
        ("constant", ["rate=-1"], "'constant' rate"),
        ("constant", ["rate=1", "time_scale=0"], "'constant' time_scale"),
        ("constant", ["rate"], "'rate' is not KEY=VALUE"),
    ],
)
def test_bad_parameters_name_the_setting(kind: str, settings: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match="Fix:") as err:
        parse_rate_shape(kind, settings, setting="--rate")
    assert message in str(err.value)
    assert str(err.value).startswith("--rate")
    assert "\n" not in str(err.value)
