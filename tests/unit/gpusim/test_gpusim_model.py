"""The classic engine and the DCGM device figures, driven with injected time (no sleeping).

The llm engine (vLLM-style batching) has its own tests: test_gpusim_batching.py."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

import pytest

from gpu_inference.errors import ConfigError
from gpu_inference.gpusim.model import (
    CLASSIC_DEFAULT,
    LLM_DEFAULT,
    TESLA_T4,
    Engine,
    GpuDevice,
    GpuSample,
    Profile,
    ProfileKind,
    gpu_spec_for_node,
    make_engine,
)

pytestmark = pytest.mark.unit

PROMPT, COMPLETION = 32, 64  # work per request: 64 + 32/20 = 65.6 decode-equivalent tokens


@dataclass
class Run:
    samples: list[GpuSample]
    waiting: list[int]
    e2e: list[float]

    def mean_util(self, last: int) -> float:
        return sum(s.util_pct for s in self.samples[-last:]) / last


def drive(profile: Profile, rate: float, duration: float = 120.0, interval: float = 1.0) -> Run:
    """Deterministic arrivals every 1/rate s; one DCGM collection per interval."""
    eng = make_engine(profile, 0.0)
    dev = GpuDevice(TESLA_T4, "node-a", 0, last_collect=0.0)
    samples: list[GpuSample] = []
    waiting: list[int] = []
    e2e: list[float] = []
    k, arrival, tick = 0, 0.0, interval
    while tick <= duration + 1e-9:
        while arrival < tick:
            eng.submit(f"r{k}", PROMPT, COMPLETION, arrival)
            k += 1
            arrival += 1.0 / rate
        window = eng.take_window(tick)
        e2e += [f.e2e_s for f in eng.pop_finished()]
        samples.append(dev.collect(tick, window, profile.static_mib()))
        waiting.append(eng.waiting)
        tick += interval
    return Run(samples, waiting, e2e)


def service_time(profile: Profile) -> float:
    return profile.work(PROMPT, COMPLETION) / profile.capacity_tps


# ---------------------------------------------------------------------------------------------
# classic


def test_classic_utilization_follows_load() -> None:
    s = service_time(CLASSIC_DEFAULT)  # 0.164 s: capacity about 6.1 requests/s
    utils = []
    for rate in (1.0, 2.0, 3.0, 4.0, 5.0):
        util = drive(CLASSIC_DEFAULT, rate).mean_util(last=60)
        assert util == pytest.approx(100 * rate * s, abs=1.5), rate
        utils.append(util)
    assert utils == sorted(utils)
    assert utils[-1] > 80  # the HPA target is reachable with the classic profile


def test_classic_saturates_and_latency_grows_with_the_queue() -> None:
    over = drive(CLASSIC_DEFAULT, rate=8.0, duration=60)  # 8/s against ~6.1/s of capacity
    assert over.mean_util(last=30) == 100
    assert over.waiting[-1] > over.waiting[29] > over.waiting[5] > 0
    assert over.e2e[-1] > 10 * over.e2e[0]
    under = drive(CLASSIC_DEFAULT, rate=4.0, duration=60)
    assert max(under.waiting) == 0
    assert max(under.e2e) == pytest.approx(service_time(CLASSIC_DEFAULT))


def test_engine_timeline_is_exact() -> None:
    profile = replace(CLASSIC_DEFAULT, capacity_tps=100.0)
    eng = Engine(profile, 10.0)
    eng.submit("a", prompt_tokens=200, completion_tokens=50, now=10.0)  # work 50 + 200/20 = 60
    eng.submit("b", prompt_tokens=200, completion_tokens=50, now=10.0)
    assert (eng.running, eng.waiting) == (1, 1)
    assert eng.next_event_time() == pytest.approx(10.6)
    eng.advance(11.0)
    (first,) = eng.pop_finished()  # b is still running
    assert first.finished == pytest.approx(10.6)
    assert first.ttft_s == pytest.approx((200 / 20 + 1) / 100)
    eng.advance(20.0)
    (b,) = eng.pop_finished()
    assert b.started == pytest.approx(10.6)
    assert b.finished == pytest.approx(11.2)
    assert b.queue_s == pytest.approx(0.6)
    assert eng.next_event_time() is None


def test_abort_frees_the_slot_for_the_next_request() -> None:
    eng = Engine(CLASSIC_DEFAULT, 0.0)
    eng.submit("a", 10, 100, 0.0)
    eng.submit("b", 10, 100, 0.0)
    assert eng.abort("a", 0.1)
    assert (eng.running, eng.waiting) == (1, 0)
    assert not eng.abort("missing", 0.1)
    eng.advance(100.0)
    assert [f.rid for f in eng.pop_finished()] == ["b"]


# ---------------------------------------------------------------------------------------------
# device figures


@pytest.mark.parametrize("profile", [CLASSIC_DEFAULT, LLM_DEFAULT], ids=lambda p: str(p.kind))
def test_vram_temperature_and_power_are_monotone_in_load(profile: Profile) -> None:
    rates = (0.5, 2.0, 4.0, 8.0)
    finals = [drive(profile, r, duration=300).samples[-30:] for r in rates]
    fb = [sum(s.fb_used_mib for s in f) / len(f) for f in finals]
    power = [sum(s.power_w for s in f) / len(f) for f in finals]
    temp = [f[-1].temp_c for f in finals]
    for series in (fb, power, temp):
        assert series == sorted(series), series
        assert series[0] < series[-1], series
    assert all(s.fb_used_mib + s.fb_free_mib == TESLA_T4.fb_total_mib for f in finals for s in f)
    assert all(TESLA_T4.idle_power_w <= s.power_w <= TESLA_T4.tdp_w for f in finals for s in f)


def test_idle_gpu_reports_idle_figures() -> None:
    dev = GpuDevice(TESLA_T4, "node-a", 0, last_collect=0.0)
    s = dev.collect(1.0, None, static_mib=0)
    assert s == GpuSample(
        util_pct=0,
        fb_used_mib=0,
        fb_free_mib=15360,
        temp_c=round(TESLA_T4.temp_idle_c),
        power_w=TESLA_T4.idle_power_w,
        sm_clock_mhz=TESLA_T4.sm_clock_idle_mhz,
        mem_clock_mhz=TESLA_T4.mem_clock_idle_mhz,
        mem_copy_util_pct=0,
        energy_mj=round(TESLA_T4.idle_power_w * 1000),  # 1 s at idle power
    )


def test_energy_counter_integrates_power() -> None:
    eng = Engine(replace(CLASSIC_DEFAULT, capacity_tps=1.0), 0.0)
    eng.submit("busy", 0, 10_000, 0.0)
    dev = GpuDevice(TESLA_T4, "node-a", 0, last_collect=0.0)
    energies, powers = [], []
    for t in range(1, 11):
        s = dev.collect(float(t), eng.take_window(float(t)), 0)
        energies.append(s.energy_mj)
        powers.append(s.power_w)
    assert energies == sorted(energies)
    assert energies[-1] == pytest.approx(sum(powers) * 1000, abs=2)
    assert powers[-1] == TESLA_T4.tdp_w


def test_temperature_follows_load_with_the_thermal_time_constant() -> None:
    eng = Engine(replace(CLASSIC_DEFAULT, capacity_tps=1.0), 0.0)
    eng.submit("long", 0, 10_000, 0.0)  # keeps the GPU fully busy throughout
    dev = GpuDevice(TESLA_T4, "node-a", 0, last_collect=0.0)
    tau = TESLA_T4.thermal_tau_s
    t = 0.0
    while t < tau - 1e-9:
        t += 1.0
        dev.collect(t, eng.take_window(t), 0)
    rise = TESLA_T4.temp_full_load_c - TESLA_T4.temp_idle_c
    assert dev.temp_c - TESLA_T4.temp_idle_c == pytest.approx(rise * (1 - math.exp(-1)), rel=1e-6)


def test_engine_younger_than_the_interval_counts_the_rest_as_idle() -> None:
    dev = GpuDevice(TESLA_T4, "node-a", 0, last_collect=0.0)
    eng = Engine(replace(CLASSIC_DEFAULT, capacity_tps=1.0), 0.5)  # the pod arrived mid-interval
    eng.submit("x", 0, 100, 0.5)
    sample = dev.collect(1.0, eng.take_window(1.0), 0)
    assert sample.util_pct == 50


# ---------------------------------------------------------------------------------------------
# parameters


@pytest.mark.parametrize(
    ("profile", "option"),
    [
        (LLM_DEFAULT.with_overrides(capacity_tps=100_000.0), "--capacity"),  # > max_batch x single stream
        (LLM_DEFAULT.with_overrides(capacity_tps=10.0), "--capacity"),  # below single stream
        (replace(CLASSIC_DEFAULT, capacity_tps=0.0), "--capacity"),
        (replace(CLASSIC_DEFAULT, max_batch=0), "--max-batch"),
        (replace(LLM_DEFAULT, max_model_len=1_000_000), "--max-model-len"),  # KV cache too small
        (replace(LLM_DEFAULT, weights_mib=16_000), "weights_mib/context_mib"),
    ],
)
def test_bad_parameters_fail_naming_the_option(profile: Profile, option: str) -> None:
    with pytest.raises(ConfigError) as err:
        profile.validate()
    assert err.value.setting == option
    assert "Fix:" in str(err.value)


def test_defaults_are_valid_and_distinct() -> None:
    CLASSIC_DEFAULT.validate()
    LLM_DEFAULT.validate()
    assert CLASSIC_DEFAULT.kind is ProfileKind.CLASSIC
    assert LLM_DEFAULT.kind is ProfileKind.LLM


def test_node_labels_select_the_gpu_model() -> None:
    assert gpu_spec_for_node({"k8s.amazonaws.com/accelerator": "nvidia-tesla-t4"}) == (TESLA_T4, True)
    assert gpu_spec_for_node({"node.kubernetes.io/instance-type": "g4dn.xlarge"}) == (TESLA_T4, True)
    assert gpu_spec_for_node({"node.kubernetes.io/instance-type": "p5.48xlarge"}) == (TESLA_T4, False)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", list(ProfileKind))
def test_engine_finishes_work_when_the_clock_is_large(kind: ProfileKind) -> None:
    """At a large clock value a sequence's last sliver of work is below the float resolution of
    the clock; the engine must still complete it instead of looping without progress."""
    rng = random.Random(1)
    start = 1e9
    engine = make_engine(CLASSIC_DEFAULT if kind is ProfileKind.CLASSIC else LLM_DEFAULT, now=start)
    t = start
    aborted = 0
    for i in range(500):
        t += rng.random() * 0.05
        engine.submit(f"r{i}", rng.randint(1, 50), rng.randint(1, 64), t)
        if rng.random() < 0.2:
            aborted += engine.abort(f"r{rng.randint(0, i)}", t + rng.random() * 1e-7)
        engine.advance(t + rng.random() * 1e-9)
    engine.advance(t + 3600)
    assert len(engine.pop_finished()) + aborted == 500
