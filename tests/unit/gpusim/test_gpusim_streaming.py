"""Streaming (SSE), vLLM's metric names/types/buckets, and how the simulator announces its profile.

Real servers on loopback addresses; each test runs its own event loop and stops what it started.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from gpusim_testkit import front_door, hand_driven, replica_starter, serving
from prometheus_client.parser import text_string_to_metric_families

from gpu_inference.gpusim import openai_api
from gpu_inference.gpusim.model import CLASSIC_DEFAULT, LLM_DEFAULT
from gpu_inference.gpusim.server import PROFILE_HEADER, SIMULATED_HEADER, DispatchMode, Endpoint

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

MODEL = "Qwen/Qwen2.5-1.5B-Instruct"
VLLM_TTFT = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
             20.0, 40.0, 80.0, 160.0, 640.0, 2560.0]  # fmt: skip
VLLM_ITL = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
            40.0, 80.0]  # fmt: skip
VLLM_REQUEST_LATENCY = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
                        120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0]  # fmt: skip


start_replica = replica_starter(MODEL, LLM_DEFAULT)


async def read_stream(resp: aiohttp.ClientResponse) -> tuple[bytes, list[float]]:
    """The whole body, and when each piece of it arrived (monotonic seconds)."""
    body, arrivals = b"", []
    async for chunk in resp.content.iter_any():
        body += chunk
        arrivals.append(time.monotonic())
    return body, arrivals


def stream_body(tokens: int, chat: bool = False, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "max_tokens": tokens, "ignore_eos": True, "stream": True, **extra}
    if chat:
        body["messages"] = [{"role": "user", "content": "Say something about GPUs."}]
    else:
        body["prompt"] = "Say something about GPUs."
    return body


def test_completion_stream_parses_into_tokens_and_done(loopback_host: Callable[[], str]) -> None:
    async def scenario() -> None:
        async with serving(start_replica(loopback_host())) as (listener, _):
            async with aiohttp.ClientSession() as http:
                t0 = time.monotonic()
                url = f"http://{listener.address}/v1/completions"
                async with http.post(url, json=stream_body(20, stream_options={"include_usage": True})) as r:
                    assert r.status == 200
                    assert r.headers["Content-Type"].startswith("text/event-stream")
                    assert r.headers[PROFILE_HEADER] == "llm"
                    body, arrivals = await read_stream(r)
                async with http.post(url, json={**stream_body(20), "stream": False}) as r:
                    whole = await r.json()
            payloads, done = openai_api.parse_sse(body)
            assert done
            assert body.endswith(b"data: [DONE]\n\n")
            *chunks, usage = payloads
            assert usage["choices"] == []
            assert usage["usage"]["completion_tokens"] == 20
            assert all(c["object"] == "text_completion" for c in chunks)
            text = "".join(c["choices"][0]["text"] for c in chunks)
            assert text == whole["choices"][0]["text"]
            assert len(text.split()) == 20
            assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "length"
            assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
            # tokens leave as the model makes them: ~one step (16 ms) apart, not all at the end
            assert len(arrivals) >= 10
            assert arrivals[-1] - arrivals[0] >= 0.5 * 19 * LLM_DEFAULT.step_s(1, 0)
            assert arrivals[0] - t0 < 0.5 * (arrivals[-1] - t0)

    asyncio.run(scenario())


def test_chat_stream_through_the_front_door(loopback_host: Callable[[], str]) -> None:
    async def scenario() -> None:
        async with serving(start_replica(loopback_host(), key="ns/a")) as (a, _):
            door = front_door(loopback_host(), DispatchMode.ROUND_ROBIN, profile_name="llm")
            async with door as (fd, front):
                fd.set_endpoints([Endpoint("ns/a", a.host, a.port)])
                async with aiohttp.ClientSession() as http:
                    url = f"http://{front.address}/v1/chat/completions"
                    async with http.post(url, json=stream_body(12, chat=True, n=2)) as r:
                        assert r.status == 200
                        assert r.headers[SIMULATED_HEADER] == "true"
                        assert r.headers[PROFILE_HEADER] == "llm"
                        body, arrivals = await read_stream(r)
                payloads, done = openai_api.parse_sse(body)
                assert done
                assert len(arrivals) >= 5  # streamed through, not buffered by the front door
                by_choice: dict[int, list[dict[str, Any]]] = {}
                for p in payloads:
                    assert p["object"] == "chat.completion.chunk"
                    (choice,) = p["choices"]
                    by_choice.setdefault(choice["index"], []).append(choice)
                assert sorted(by_choice) == [0, 1]
                for choices in by_choice.values():
                    assert choices[0]["delta"] == {"role": "assistant", "content": ""}
                    content = "".join(c["delta"].get("content", "") for c in choices[1:])
                    assert len(content.split()) == 12
                    assert choices[-1]["finish_reason"] == "length"

    asyncio.run(scenario())


def test_metrics_have_vllms_names_types_labels_and_buckets(loopback_host: Callable[[], str]) -> None:
    async def scenario() -> dict[str, Any]:
        async with (
            serving(start_replica(loopback_host())) as (listener, _),
            aiohttp.ClientSession() as http,
        ):
            base = f"http://{listener.address}"
            for stream in (False, True):
                async with http.post(
                    f"{base}/v1/completions", json={**stream_body(8), "stream": stream}
                ) as r:
                    await r.read()
            async with http.get(f"{base}/metrics") as r:
                assert r.headers[PROFILE_HEADER] == "llm"
                return {f.name: f for f in text_string_to_metric_families(await r.text())}

    fams = asyncio.run(scenario())
    expected = {
        "vllm:num_requests_running": "gauge",
        "vllm:num_requests_waiting": "gauge",
        "vllm:kv_cache_usage_perc": "gauge",
        "vllm:num_preemptions": "counter",
        "vllm:prompt_tokens": "counter",
        "vllm:generation_tokens": "counter",
        "vllm:request_success": "counter",
        "vllm:time_to_first_token_seconds": "histogram",
        "vllm:time_per_output_token_seconds": "histogram",
        "vllm:inter_token_latency_seconds": "histogram",
        "vllm:e2e_request_latency_seconds": "histogram",
        "vllm:request_queue_time_seconds": "histogram",
        "gpu_inference_simulated": "gauge",
        "gpusim_info": "gauge",
    }
    assert {name: fams[name].type for name in expected if name in fams} == expected
    for name in expected:
        if name.startswith("vllm:"):
            labels = fams[name].samples[0].labels
            assert (labels["model_name"], labels["engine"]) == (MODEL, "0"), name

    def bounds(name: str) -> list[float]:
        les = [s.labels["le"] for s in fams[name].samples if s.name == f"{name}_bucket"]
        return [float(le) for le in les if le != "+Inf"]

    # vLLM v0.11's bounds (vllm/v1/metrics/loggers.py), written out here on purpose
    assert bounds("vllm:time_to_first_token_seconds") == VLLM_TTFT
    assert bounds("vllm:inter_token_latency_seconds") == VLLM_ITL
    assert bounds("vllm:time_per_output_token_seconds") == VLLM_ITL
    assert bounds("vllm:e2e_request_latency_seconds") == VLLM_REQUEST_LATENCY
    assert bounds("vllm:request_queue_time_seconds") == VLLM_REQUEST_LATENCY

    def value(name: str, sample: str) -> float:
        return float(next(s.value for s in fams[name].samples if s.name == sample))

    assert value("vllm:generation_tokens", "vllm:generation_tokens_total") == 16
    assert value("vllm:inter_token_latency_seconds", "vllm:inter_token_latency_seconds_count") == 14
    assert value("vllm:time_to_first_token_seconds", "vllm:time_to_first_token_seconds_count") == 2
    (info,) = fams["gpusim_info"].samples
    assert info.labels["profile"] == "llm"
    assert info.labels["model"] == MODEL
    assert info.value == 1


def test_profile_endpoint_header_and_gauge_say_which_profile_runs(loopback_host: Callable[[], str]) -> None:
    async def scenario() -> None:
        async with (
            serving(start_replica(loopback_host(), LLM_DEFAULT, key="ns/llm")) as (llm, _),
            serving(start_replica(loopback_host(), CLASSIC_DEFAULT, key="ns/classic")) as (classic, _),
            aiohttp.ClientSession() as http,
        ):
            for listener, name in ((llm, "llm"), (classic, "classic")):
                async with http.get(f"http://{listener.address}/gpusim/profile") as r:
                    assert r.headers[PROFILE_HEADER] == name
                    doc = await r.json()
                assert doc["profile"] == name
                assert doc["simulated"] is True
                assert doc["replica"]["pod"] == f"ns/{name}"
                assert all(p["source"] for p in doc["parameters"].values())
                async with http.get(f"http://{listener.address}/health") as r:
                    assert r.headers[PROFILE_HEADER] == name
                json.dumps(doc)  # plain JSON
            async with http.get(f"http://{llm.address}/gpusim/profile") as r:
                doc = await r.json()
            assert doc["parameters"]["max_batch"]["value"] == 256
            assert doc["parameters"]["max_num_batched_tokens"]["value"] == 2048
            assert "get_batch_defaults" in doc["parameters"]["max_num_batched_tokens"]["source"]

    asyncio.run(scenario())


def test_classic_profile_streams_too(loopback_host: Callable[[], str]) -> None:
    slow = CLASSIC_DEFAULT.with_overrides(capacity_tps=100.0)  # 10 ms per token

    async def scenario() -> None:
        async with serving(start_replica(loopback_host(), slow)) as (listener, _):
            async with aiohttp.ClientSession() as http:
                url = f"http://{listener.address}/v1/completions"
                async with http.post(url, json=stream_body(30)) as r:
                    body, arrivals = await read_stream(r)
            payloads, done = openai_api.parse_sse(body)
            assert done
            assert len("".join(p["choices"][0]["text"] for p in payloads).split()) == 30
            assert arrivals[-1] - arrivals[0] >= 0.15  # spread over the ~0.3 s the tokens take

    asyncio.run(scenario())


def test_whole_simulator_llm_one_stream_reads_full_utilization(
    loopback_host: Callable[[], str], make_pod: Callable[..., Any], make_node: Callable[..., Any]
) -> None:
    from gpu_inference.gpusim.simulator import Simulator

    ip_pod, ip_dcgm = loopback_host(), loopback_host()
    cfg = hand_driven(LLM_DEFAULT, loopback_host())

    async def scenario() -> None:
        sim = Simulator(cfg)
        await sim.start()
        try:
            sim.on_watch_event("node", "SYNC", [make_node("gpu-1")])
            args = ["--served-model-name", MODEL]
            sim.on_watch_event("inference", "SYNC", [make_pod("inf", node="gpu-1", pod_ip=ip_pod, args=args)])
            exporter = make_pod("dcgm", node="gpu-1", pod_ip=ip_dcgm, gpus=0, port=9400, port_name="metrics")
            sim.on_watch_event("exporter", "SYNC", [exporter])
            await sim.reconcile()
            front = f"http://{sim.front_door_address}"
            body = stream_body(2000)
            async with aiohttp.ClientSession() as http, http.post(f"{front}/v1/completions", json=body) as r:
                assert r.headers[PROFILE_HEADER] == "llm"
                await r.content.readuntil(b"\n\n")  # the first token is out
                await asyncio.sleep(1.2)  # longer than NVML's 1 s sample period
                sim.collect()
                async with http.get(f"http://{ip_dcgm}:9400/metrics") as m:
                    assert m.headers[PROFILE_HEADER] == "llm"
                    dcgm = {f.name: f for f in text_string_to_metric_families(await m.text())}
                async with http.get(f"http://{ip_pod}:8000/metrics") as m:
                    vllm = {f.name: f for f in text_string_to_metric_families(await m.text())}
                async with http.get(f"{front}/gpusim/profile") as m:
                    profile = await m.json()
            assert dcgm["DCGM_FI_DEV_GPU_UTIL"].samples[0].value == 100  # one sequence decoding
            assert vllm["vllm:num_requests_running"].samples[0].value == 1
            assert vllm["vllm:num_requests_waiting"].samples[0].value == 0
            assert profile["profile"] == "llm"
            status = sim.status()
            assert status["profile"]["name"] == "llm"
        finally:
            await sim.stop()

    asyncio.run(scenario())


def test_a_client_that_leaves_mid_stream_frees_its_batch_slot(loopback_host: Callable[[], str]) -> None:
    async def scenario() -> None:
        async with serving(start_replica(loopback_host())) as (listener, replica):
            url = f"http://{listener.address}/v1/completions"
            async with aiohttp.ClientSession() as http, http.post(url, json=stream_body(2000)) as r:
                await r.content.readuntil(b"\n\n")
                assert replica.runner.engine.running == 1
                r.close()  # the client goes away
                for _ in range(100):
                    replica.runner.sync()
                    if replica.runner.engine.running == 0:
                        break
                    await asyncio.sleep(0.02)
            assert replica.runner.engine.running == 0
            assert replica.runner.in_flight == 0

    asyncio.run(scenario())
