"""The open-loop engine against the GPU simulator's own replica server (llm profile, 127.0.0.1)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gpu_inference.adapters import openloop
from gpu_inference.adapters.openloop import (
    OpenLoopOptions,
    OpenLoopSummary,
    read_records,
    run_open_loop_async,
)
from gpu_inference.domain.rate_shapes import ConstantRate
from gpu_inference.gpusim import server as gpusim_server
from gpu_inference.gpusim.model import LLM_DEFAULT, make_engine
from gpu_inference.gpusim.server import EngineRunner, Listener, Replica, make_replica_app

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


async def _run_against_replica(out: Path, options: OpenLoopOptions) -> tuple[OpenLoopSummary, str]:
    loop = asyncio.get_running_loop()
    runner = EngineRunner(make_engine(LLM_DEFAULT, loop.time()), loop.time)
    replica = Replica(
        key="ns/pod",
        model_name="sim/model",
        max_model_len=LLM_DEFAULT.max_model_len,
        runner=runner,
        clock=loop.time,
    )
    listener = Listener(make_replica_app(replica), "127.0.0.1", 0)
    await listener.start()
    try:
        summary = await run_open_loop_async(
            f"http://{listener.address}", ConstantRate(rate=6, duration_s=1.0), options, out
        )
        return summary, replica.profile_name
    finally:
        runner.close()
        await listener.stop()


def test_the_simulator_is_recognised_and_measured(tmp_path: Path) -> None:
    assert openloop.SIMULATED_HEADER == gpusim_server.SIMULATED_HEADER
    assert openloop.PROFILE_HEADER == gpusim_server.PROFILE_HEADER
    out = tmp_path / "r.jsonl"
    options = OpenLoopOptions(seed=3, prompt_tokens=64, max_tokens=12, ignore_eos=True, request_timeout_s=20)
    summary, profile = asyncio.run(_run_against_replica(out, options))
    records = read_records(out)
    assert records
    assert summary.model == "sim/model"
    assert summary.simulated
    for r in records:
        assert r.ok, r.error
        assert r.simulated
        assert r.simulator_profile == profile
        assert r.completion_tokens == 12  # ignore_eos: every reply is max_tokens long
        assert r.tokens_source == "usage"
        assert r.prompt_tokens is not None
        assert r.prompt_tokens >= 64
        assert r.ttft_s is not None
        assert r.tpot_s is not None
        assert r.ttft_s > 0
        assert r.tpot_s > 0
