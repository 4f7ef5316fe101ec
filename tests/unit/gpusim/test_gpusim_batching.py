"""The llm profile's engine (vLLM V1-style continuous batching), driven on a virtual clock."""

from __future__ import annotations

import statistics

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpu_inference.gpusim.batching import BatchEngine
from gpu_inference.gpusim.model import CLASSIC_DEFAULT, LLM_DEFAULT, TESLA_T4, GpuDevice, Profile
from gpu_inference.gpusim.virtual import Arrival, poisson_arrivals, run_virtual
from gpu_inference.gpusim.vllm_metrics import VllmMetrics

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


def burst(n: int, prompt: int, output: int, at: float = 0.0, tag: str = "r") -> list[Arrival]:
    return [Arrival(at, prompt, output, f"{tag}{i}") for i in range(n)]


def small_kv(tokens: int = 5000, max_model_len: int = 2048) -> Profile:
    """The default llm profile with a memory fraction that leaves about `tokens` of KV cache."""
    p = LLM_DEFAULT
    pool_mib = tokens * p.kv_mib_per_token
    fraction = (p.static_mib() + pool_mib) / TESLA_T4.fb_total_mib
    return p.with_overrides(memory_fraction=fraction, max_model_len=max_model_len)


# ---------------------------------------------------------------------------------------------
# defaults follow the chart's server


def test_llm_defaults_are_vllm_v011_on_a_t4() -> None:
    p = LLM_DEFAULT
    assert (p.max_batch, p.max_num_batched_tokens, p.block_size) == (256, 2048, 16)
    assert p.memory_fraction == 0.9
    assert p.model == "Qwen/Qwen2.5-1.5B-Instruct"
    # 28 layers x 2 KV heads x 128 dims x 2 (K, V) x 2 bytes = 28 KiB per token
    assert p.kv_mib_per_token * 1024**2 == 28 * 2 * 128 * 2 * 2
    # weights 1.54e9 x 2 bytes stream once per step at 80 % of 320 GB/s, plus 4 ms overhead
    assert p.step_base_s == pytest.approx(0.004 + 1.54e9 * 2 / (320e9 * 0.8))
    assert p.step_per_token_s == pytest.approx(2 * 1.54e9 / (65e12 * 0.35))
    kv = p.kv_capacity_tokens()
    assert kv % p.block_size == 0
    assert kv == pytest.approx((15360 * 0.9 - p.static_mib()) / p.kv_mib_per_token, abs=p.block_size)


# ---------------------------------------------------------------------------------------------
# utilization


def test_one_decoding_sequence_reads_about_100_percent_utilization() -> None:
    eng = BatchEngine(LLM_DEFAULT, 0.0)
    dev = GpuDevice(TESLA_T4, "node-a", 0, last_collect=0.0)
    eng.submit("only", 20, 2000, 0.0)  # ~32 s of decoding at batch 1
    samples = []
    for t in (5.0, 10.0, 15.0):
        window = eng.take_window(t)
        samples.append(dev.collect(t, window, LLM_DEFAULT.static_mib(), eng.duty_over(t - 1.0, t)))
        assert eng.running == 1
    assert [s.util_pct for s in samples] == [100, 100, 100]
    assert eng.steps > 100  # it is decoding one token per step, not idling
    # the same single request on the classic profile's engine does not look like this once done:
    eng.advance(60.0)
    assert eng.running == 0
    idle = dev.collect(60.0, eng.take_window(60.0), LLM_DEFAULT.static_mib(), eng.duty_over(59.0, 60.0))
    assert idle.util_pct == 0


def test_util_is_sampled_over_the_nvml_period_not_the_collection_interval() -> None:
    eng = BatchEngine(LLM_DEFAULT, 0.0)
    dev = GpuDevice(TESLA_T4, "node-a", 0, last_collect=0.0)
    eng.submit("early", 20, 100, 0.0)  # busy for ~1.6 s of a 30 s collection interval
    window = eng.take_window(30.0)
    sampled = dev.collect(30.0, window, 0, eng.duty_over(29.0, 30.0))
    assert sampled.util_pct == 0  # NVML reports the last sample period only
    assert window.busy_s > 1.0  # although the interval was partly busy


def test_seeded_util_noise_is_reproducible() -> None:
    noisy = type(TESLA_T4)(**{**TESLA_T4.__dict__, "util_noise_pct": 5.0})
    readings = []
    for _ in range(2):
        eng = BatchEngine(LLM_DEFAULT, 0.0)
        eng.submit("x", 20, 5000, 0.0)
        dev = GpuDevice(noisy, "node-a", 0, last_collect=0.0)
        readings.append([dev.collect(t, eng.take_window(t), 0, 0.8).util_pct for t in range(1, 20)])
    assert readings[0] == readings[1]
    assert len(set(readings[0])) > 3  # it is noisy
    assert all(0 <= u <= 100 for u in readings[0])


# ---------------------------------------------------------------------------------------------
# batching, chunked prefill, queueing


def test_tpot_grows_with_batch_size() -> None:
    tpot = []
    for b in (1, 8, 64, 256):
        run = run_virtual(LLM_DEFAULT, burst(b, 50, 100))
        assert len(run.finished) == b
        tpot.append(statistics.mean(f.tpot_s for f in run.finished.values()))
    assert tpot == sorted(tpot), tpot
    assert len(set(tpot)) == 4, tpot
    assert tpot[0] == pytest.approx(LLM_DEFAULT.step_s(1, 100), rel=0.05)
    assert tpot[-1] > 2 * tpot[0]


def test_chunked_prefill_of_a_long_prompt_slows_everyones_decode() -> None:
    p = LLM_DEFAULT
    decoders = burst(8, 20, 400, tag="d")
    long_prompt = Arrival(2.0, 4000, 10, "long")
    run = run_virtual(p, [*decoders, long_prompt])
    gaps_before = [
        g for f in (run.finished[a.rid] for a in decoders) for g in f.inter_token_s[5:50]
    ]  # after everyone's prefill
    worst = max(
        b - a
        for f in (run.finished[a.rid] for a in decoders)
        for a, b in zip(f.token_times, f.token_times[1:], strict=False)
        if a >= 2.0
    )
    assert max(gaps_before) < 0.03
    assert worst > 10 * statistics.median(gaps_before)
    # the prompt is split into token-budget chunks: no step computes all 4000 prompt tokens at once
    assert worst < p.step_s(4000, 4000)
    assert worst >= p.step_s(p.max_num_batched_tokens, 0)
    ttft = run.finished["long"].ttft_s
    assert ttft > 2 * p.step_s(p.max_num_batched_tokens, 0) * 0.9  # two chunks at least


def test_waiting_only_past_max_num_seqs() -> None:
    p = LLM_DEFAULT.with_overrides(max_batch=4)
    fits = run_virtual(p, burst(4, 20, 50), probe_times=[0.3, 0.6])  # the first 4 finish at ~0.9 s
    over = run_virtual(p, burst(6, 20, 50), probe_times=[0.3, 0.6])
    assert [s.waiting for s in fits.snapshots] == [0, 0]
    assert [(s.running, s.waiting) for s in over.snapshots] == [(4, 2), (4, 2)]
    full = run_virtual(LLM_DEFAULT, burst(200, 20, 50), probe_times=[0.5])
    assert full.snapshots[0].waiting == 0  # 200 < 256 and the KV cache is ample
    assert full.snapshots[0].running == 200


def test_waiting_past_the_kv_cache_with_batch_slots_free() -> None:
    p = small_kv(tokens=3000)
    run = run_virtual(p, burst(4, 1000, 20), probe_times=[0.5])
    snap = run.snapshots[0]
    assert snap.running < p.max_batch
    assert snap.waiting > 0
    assert snap.running + snap.waiting == 4
    assert snap.kv_usage > 0.6
    assert len(run.finished) == 4  # all served eventually


def test_kv_exhaustion_preempts_and_the_counter_shows_it() -> None:
    p = small_kv(tokens=5000)
    eng = BatchEngine(p, 0.0)
    metrics = VllmMetrics("m", p, lambda: eng)
    usage = []
    run = run_virtual(eng, burst(8, 100, 1500), on_event=lambda e, t: usage.append(e.kv_usage))
    assert eng.num_preemptions > 0
    assert max(usage) <= 1.0
    assert len(run.finished) == 8
    assert all(f.completion_tokens == 1500 and len(f.token_times) == 1500 for f in run.finished.values())
    assert sum(f.preemptions for f in run.finished.values()) == eng.num_preemptions
    fams = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    assert fams["vllm:num_preemptions"].type == "counter"
    (sample,) = [s for s in fams["vllm:num_preemptions"].samples if s.name == "vllm:num_preemptions_total"]
    assert sample.value == eng.num_preemptions
    # the same load with the chart's KV cache never preempts
    roomy = BatchEngine(LLM_DEFAULT, 0.0)
    run_virtual(roomy, burst(8, 100, 1500))
    assert roomy.num_preemptions == 0


def test_preempted_request_recomputes_and_its_stream_pauses() -> None:
    p = small_kv(tokens=5000)
    run = run_virtual(p, burst(8, 100, 1500))
    victim = max(run.finished.values(), key=lambda f: f.preemptions)
    assert victim.preemptions > 0
    worst_gap = max(victim.inter_token_s)
    assert worst_gap > 20 * statistics.median(victim.inter_token_s)


def test_submit_rejects_what_can_never_run() -> None:
    eng = BatchEngine(small_kv(tokens=3000), 0.0)
    with pytest.raises(ValueError, match="KV"):
        eng.submit("big", 2000, 2000, 0.0)
    with pytest.raises(ValueError, match="completion_tokens"):
        eng.submit("none", 10, 0, 0.0)


def test_abort_frees_kv_blocks() -> None:
    eng = BatchEngine(LLM_DEFAULT, 0.0)
    eng.submit("a", 500, 1000, 0.0)
    eng.advance(1.0)
    assert eng.used_blocks > 0
    assert eng.abort("a", 1.0)
    assert eng.used_blocks == 0
    assert eng.running == 0
    assert not eng.abort("a", 1.0)
    eng.advance(5.0)
    assert eng.pop_finished() == []


# ---------------------------------------------------------------------------------------------
# the virtual clock


def test_virtual_runs_are_deterministic_and_fast() -> None:
    load = poisson_arrivals(rate=20.0, duration=30.0, prompt_tokens=200, completion_tokens=300, seed=7)
    a = run_virtual(LLM_DEFAULT, load)
    b = run_virtual(LLM_DEFAULT, load)
    assert a.finished == b.finished
    assert len(a.finished) == len(load) > 400
    other = run_virtual(LLM_DEFAULT, poisson_arrivals(20.0, 30.0, 200, 300, seed=8))
    assert other.finished != a.finished


def test_classic_profile_is_unchanged_by_batching() -> None:
    """classic keeps one request at a time: the second of two simultaneous requests queues."""
    run = run_virtual(CLASSIC_DEFAULT, burst(2, 32, 64), probe_times=[0.01])
    assert (run.snapshots[0].running, run.snapshots[0].waiting) == (1, 1)
    first, second = sorted(run.finished.values(), key=lambda f: f.finished)
    assert second.started == pytest.approx(first.finished)
