"""Real HTTP servers on loopback addresses: the vLLM API, the front door, the whole simulator.

Each test runs its own event loop (asyncio.run) and stops every server on the way out, whatever happens.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from gpusim_testkit import front_door, hand_driven, replica_starter, serving, usage
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from gpu_inference.gpusim.model import CLASSIC_DEFAULT, LLM_DEFAULT, TESLA_T4
from gpu_inference.gpusim.pods import AddressMode, PodKind, PodTracker
from gpu_inference.gpusim.server import SIMULATED_HEADER, DispatchMode, Endpoint
from gpu_inference.gpusim.simulator import SimConfig, Simulator

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

MODEL = "org/model-7b"
FAST = replace(CLASSIC_DEFAULT, capacity_tps=100_000.0)


start_replica = replica_starter(MODEL, FAST)


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample_value(fams: dict[str, Any], family: str, sample: str) -> float:
    return float(next(s.value for s in fams[family].samples if s.name == sample))


def completion(max_tokens: int = 4, prompt: str = "abcd") -> dict[str, Any]:
    return {"model": MODEL, "prompt": prompt, "max_tokens": max_tokens}


# ---------------------------------------------------------------------------------------------


def test_replica_serves_the_vllm_api(loopback_host: Callable[[], str]) -> None:
    async def scenario() -> None:
        listener, _ = await start_replica(loopback_host())
        base = f"http://{listener.address}"
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/health") as r:
                    assert r.status == 200
                    assert r.headers[SIMULATED_HEADER] == "true"
                async with http.get(f"{base}/v1/models") as r:
                    assert (await r.json())["data"][0]["id"] == MODEL
                async with http.post(f"{base}/v1/completions", json=completion(5, "x" * 40)) as r:
                    body = await r.json()
                    assert r.status == 200, body
                    assert body["object"] == "text_completion"
                    assert body["usage"] == usage(10, 5)
                chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
                async with http.post(f"{base}/v1/chat/completions", json=chat) as r:
                    body = await r.json()
                    assert r.status == 200, body
                    assert body["object"] == "chat.completion"
                    assert body["usage"]["completion_tokens"] == 3
                async with http.post(f"{base}/v1/completions", json={"model": "nope", "prompt": "x"}) as r:
                    assert r.status == 404
                    assert "does not exist" in (await r.json())["error"]["message"]
                async with http.post(f"{base}/v1/completions", data=b"{not json") as r:
                    assert r.status == 400
                async with http.get(f"{base}/metrics") as r:
                    fams = families(await r.text())
            for name in (
                "vllm:num_requests_running",
                "vllm:num_requests_waiting",
                "vllm:kv_cache_usage_perc",
                "vllm:e2e_request_latency_seconds",
                "vllm:time_to_first_token_seconds",
                "vllm:request_queue_time_seconds",
                "vllm:prompt_tokens",
                "vllm:generation_tokens",
                "vllm:request_success",
                "gpu_inference_simulated",
            ):
                assert name in fams, name
            assert fams["vllm:num_requests_running"].samples[0].labels == {"model_name": MODEL, "engine": "0"}
            success = {
                s.labels["finished_reason"]: s.value
                for s in fams["vllm:request_success"].samples
                if s.name == "vllm:request_success_total"
            }
            assert success == {"stop": 0, "length": 2, "abort": 0}  # classic: every reply runs to its budget
            assert sample_value(fams, "vllm:prompt_tokens", "vllm:prompt_tokens_total") == 10 + 8
            assert sample_value(fams, "vllm:generation_tokens", "vllm:generation_tokens_total") == 8
            e2e = sample_value(
                fams, "vllm:e2e_request_latency_seconds", "vllm:e2e_request_latency_seconds_count"
            )
            assert e2e == 2
            assert sample_value(fams, "gpu_inference_simulated", "gpu_inference_simulated") == 1
        finally:
            await listener.stop()

    asyncio.run(scenario())


def test_requests_really_take_the_modelled_time(loopback_host: Callable[[], str]) -> None:
    slow = replace(CLASSIC_DEFAULT, capacity_tps=100.0)  # 20 tokens + 1/20 prompt = 0.2005 s each

    async def scenario() -> None:
        async with serving(start_replica(loopback_host(), slow)) as (listener, _):
            url = f"http://{listener.address}/v1/completions"
            async with aiohttp.ClientSession() as http:

                async def one() -> float:
                    t0 = time.monotonic()
                    async with http.post(url, json=completion(20)) as r:
                        assert r.status == 200
                    return time.monotonic() - t0

                alone = await one()
                both = await asyncio.gather(one(), one())  # one slot: the second queues
            assert alone >= 0.2
            assert max(both) >= 0.4
            assert alone < 5  # generous: only catches a hang

    asyncio.run(scenario())


def test_front_door_round_robin_spreads_over_replicas(loopback_host: Callable[[], str]) -> None:
    async def scenario() -> None:
        a, ra = await start_replica(loopback_host(), key="ns/a")
        b, rb = await start_replica(loopback_host(), key="ns/b")
        try:
            async with front_door(loopback_host(), DispatchMode.ROUND_ROBIN) as (fd, front):
                fd.set_endpoints([Endpoint("ns/a", a.host, a.port), Endpoint("ns/b", b.host, b.port)])
                async with aiohttp.ClientSession() as http:
                    for _ in range(10):
                        async with http.post(
                            f"http://{front.address}/v1/completions", json=completion()
                        ) as r:
                            assert r.status == 200
                            assert r.headers[SIMULATED_HEADER] == "true"
                assert fd.routed == {"ns/a": 5, "ns/b": 5}
            for rep in (ra, rb):
                served = rep.registry.get_sample_value(
                    "vllm:request_success_total",
                    {"model_name": MODEL, "engine": "0", "finished_reason": "length"},
                )
                assert served == 5
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(scenario())


def test_front_door_least_outstanding_avoids_the_busy_replica(loopback_host: Callable[[], str]) -> None:
    slow = replace(CLASSIC_DEFAULT, capacity_tps=100.0)

    async def scenario() -> None:
        a, _ = await start_replica(loopback_host(), slow, key="ns/a")
        b, _ = await start_replica(loopback_host(), slow, key="ns/b")
        try:
            async with front_door(loopback_host(), DispatchMode.LEAST_OUTSTANDING) as (fd, front):
                url = f"http://{front.address}/v1/completions"
                fd.set_endpoints([Endpoint("ns/a", a.host, a.port), Endpoint("ns/b", b.host, b.port)])
                async with aiohttp.ClientSession() as http:

                    async def post(tokens: int) -> int:
                        async with http.post(url, json=completion(tokens)) as r:
                            return r.status

                    long = asyncio.create_task(post(100))  # 1 s on whichever replica gets it
                    for _ in range(100):
                        if fd.outstanding("ns/a") + fd.outstanding("ns/b") == 1:
                            break
                        await asyncio.sleep(0.01)
                    busy = "ns/a" if fd.outstanding("ns/a") else "ns/b"
                    idle = "ns/b" if busy == "ns/a" else "ns/a"
                    for _ in range(4):
                        assert await post(1) == 200
                    assert await long == 200
                assert fd.routed == {busy: 1, idle: 4}
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(scenario())


def test_front_door_answers_503_without_ready_replicas_and_502_when_one_fails(
    loopback_host: Callable[[], str],
) -> None:
    async def scenario() -> None:
        async with front_door(loopback_host(), DispatchMode.ROUND_ROBIN) as (fd, front):
            async with aiohttp.ClientSession() as http:
                async with http.post(f"http://{front.address}/v1/completions", json=completion()) as r:
                    assert r.status == 503
                    assert r.headers[SIMULATED_HEADER] == "true"
                    assert "no Ready inference replica" in (await r.json())["error"]["message"]
                fd.set_endpoints([Endpoint("ns/gone", loopback_host(), 1)])  # nothing listens there
                async with http.get(f"http://{front.address}/v1/models") as r:
                    assert r.status == 502
            assert (fd.unavailable, fd.upstream_errors) == (1, 1)

    asyncio.run(scenario())


# ---------------------------------------------------------------------------------------------
# the whole simulator, fed with V1 objects instead of a watch


def test_simulator_follows_pods_and_serves_dcgm_metrics(
    loopback_host: Callable[[], str],
    make_pod: Callable[..., client.V1Pod],
    make_node: Callable[..., client.V1Node],
) -> None:
    profile = replace(CLASSIC_DEFAULT, capacity_tps=200.0)  # 20-token requests take 0.1 s
    ip_a, ip_b, ip_dcgm = loopback_host(), loopback_host(), loopback_host()
    cfg = hand_driven(profile, loopback_host())
    exporter = dict(gpus=0, container="exporter", port=9400, port_name="metrics")

    async def scenario() -> None:
        sim = Simulator(cfg)
        await sim.start()
        try:
            sim.on_watch_event("node", "SYNC", [make_node("gpu-1"), make_node("gpu-2")])
            sim.on_watch_event(
                "inference",
                "SYNC",
                [
                    make_pod("inf-a", node="gpu-1", pod_ip=ip_a, args=["--served-model-name", MODEL]),
                    make_pod("inf-b", node="gpu-2", pod_ip=ip_b, args=["--served-model-name", MODEL]),
                ],
            )
            sim.on_watch_event(
                "exporter", "SYNC", [make_pod("dcgm-1", node="gpu-1", pod_ip=ip_dcgm, **exporter)]
            )
            await sim.reconcile()
            front = f"http://{sim.front_door_address}"
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://{ip_a}:8000/health") as r:
                    assert r.status == 200
                results = await asyncio.gather(
                    *(http.post(f"{front}/v1/completions", json=completion(20)) for _ in range(4))
                )
                assert [r.status for r in results] == [200] * 4
                for r in results:
                    r.release()
                sim.collect()
                async with http.get(f"http://{ip_dcgm}:9400/metrics") as r:
                    assert r.headers[SIMULATED_HEADER] == "true"
                    fams = families(await r.text())
                util = fams["DCGM_FI_DEV_GPU_UTIL"].samples
                assert len(util) == 1  # this exporter sees its own node's GPU only
                assert util[0].labels["Hostname"] == "gpu-1"
                assert (util[0].labels["pod"], util[0].labels["namespace"], util[0].labels["container"]) == (
                    "inf-a",
                    "default",
                    "vllm",
                )
                assert util[0].value > 0
                fb = fams["DCGM_FI_DEV_FB_USED"].samples[0].value
                assert fb >= profile.weights_mib + profile.context_mib
                async with http.get(f"{front}/sim/status") as r:
                    status = await r.json()
                assert status["simulated"] is True
                assert status["notice"].startswith("SIMULATED")
                assert [(x["pod"], x["serving"]) for x in status["replicas"]] == [
                    ("default/inf-a", True),
                    ("default/inf-b", True),
                ]
                assert {g["node"]: g["pod"] for g in status["gpus"]} == {
                    "gpu-1": "default/inf-a",
                    "gpu-2": "default/inf-b",
                }
                assert status["front_door"]["routed"] == {"default/inf-a": 2, "default/inf-b": 2}

                # inf-a goes NotReady: it leaves the Service and stops listening, keeps its GPU
                sim.on_watch_event(
                    "inference", "MODIFIED", make_pod("inf-a", node="gpu-1", pod_ip=ip_a, ready=False)
                )
                await sim.reconcile()
                with pytest.raises(aiohttp.ClientConnectionError):
                    async with http.get(f"http://{ip_a}:8000/health"):
                        pass
                async with http.post(f"{front}/v1/completions", json=completion()) as r:
                    assert r.status == 200
                assert status_routed(sim) == {"default/inf-a": 2, "default/inf-b": 3}
                sim.collect()
                async with http.get(f"http://{ip_dcgm}:9400/metrics") as r:
                    fams = families(await r.text())
                assert fams["DCGM_FI_DEV_GPU_UTIL"].samples[0].labels["pod"] == "inf-a"

                # both pods deleted: 503, and the GPU on gpu-1 loses its pod labels
                sim.on_watch_event("inference", "SYNC", [])
                await sim.reconcile()
                async with http.post(f"{front}/v1/completions", json=completion()) as r:
                    assert r.status == 503
                sim.collect()
                async with http.get(f"http://{ip_dcgm}:9400/metrics") as r:
                    fams = families(await r.text())
                assert "pod" not in fams["DCGM_FI_DEV_GPU_UTIL"].samples[0].labels
                assert fams["DCGM_FI_DEV_FB_USED"].samples[0].value == 0
        finally:
            await sim.stop()
        async with aiohttp.ClientSession() as http:
            for url in (
                front + "/sim/status",
                f"http://{ip_dcgm}:9400/metrics",
                f"http://{ip_b}:8000/health",
            ):
                with pytest.raises(aiohttp.ClientConnectionError):
                    async with http.get(url):
                        pass

    asyncio.run(scenario())


def status_routed(sim: Simulator) -> dict[str, int]:
    return dict(sim.status()["front_door"]["routed"])


def test_llm_replica_reports_queue_not_just_utilization(loopback_host: Callable[[], str]) -> None:
    """With the llm profile, requests past the batch size wait, and /metrics shows it."""
    tiny_batch = LLM_DEFAULT.with_overrides(max_batch=2)

    async def scenario() -> None:
        async with serving(start_replica(loopback_host(), tiny_batch)) as (listener, replica):
            url = f"http://{listener.address}"
            async with aiohttp.ClientSession() as http:
                tasks = [
                    asyncio.create_task(
                        http.post(f"{url}/v1/completions", json={**completion(200), "ignore_eos": True})
                    )
                    for _ in range(5)
                ]
                for _ in range(200):
                    if replica.runner.in_flight == 5:
                        break
                    await asyncio.sleep(0.01)
                # requests that arrive during a step join at the next one (as in vLLM's engine loop)
                for _ in range(100):
                    async with http.get(f"{url}/metrics") as r:
                        fams = families(await r.text())
                    if fams["vllm:num_requests_running"].samples[0].value == 2:
                        break
                    await asyncio.sleep(0.01)
                assert fams["vllm:num_requests_running"].samples[0].value == 2
                assert fams["vllm:num_requests_waiting"].samples[0].value == 3
                assert fams["vllm:kv_cache_usage_perc"].samples[0].value > 0
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(scenario())


def test_allocate_mode_serves_pods_on_its_own_addresses_and_records_them(
    loopback_host: Callable[[], str],
    make_pod: Callable[..., client.V1Pod],
) -> None:
    """For clusters whose pod IPs are not loopback: one simulator-chosen address per pod."""
    base = loopback_host().rsplit(".", 1)[0]
    cfg = hand_driven(FAST, loopback_host(), address_mode=AddressMode.ALLOCATE, allocate_cidr=f"{base}.0/30")
    recorded: list[tuple[str, str, str]] = []

    async def scenario() -> None:
        sim = Simulator(cfg, annotator=lambda ns, name, addr: recorded.append((ns, name, addr)))
        await sim.start()
        try:
            sim.on_watch_event(
                "inference", "SYNC", [make_pod("a", pod_ip="10.244.0.5"), make_pod("b", pod_ip="10.244.0.6")]
            )
            await sim.reconcile()
            assert sorted(recorded) == [
                ("default", "a", f"{base}.1:8000"),
                ("default", "b", f"{base}.2:8000"),
            ]
            async with aiohttp.ClientSession() as http:
                for host in (f"{base}.1", f"{base}.2"):
                    async with http.get(f"http://{host}:8000/v1/models") as r:
                        assert r.status == 200
            await sim.reconcile()
            assert len(recorded) == 2  # annotated once per address
        finally:
            await sim.stop()

    asyncio.run(scenario())


def test_replica_profile_follows_the_pods_vllm_flags(
    make_pod: Callable[..., client.V1Pod], caplog: pytest.LogCaptureFixture
) -> None:
    args = [
        "--max-num-seqs=64",
        "--gpu-memory-utilization=0.5",
        "--max-model-len=1000000",
        "--max-num-batched-tokens",
        "512",
    ]
    tracker = PodTracker()
    tracker.apply_pod(PodKind.INFERENCE, "ADDED", make_pod("p", pod_ip="127.9.9.9", args=args))
    (state,) = tracker.desired().replicas
    llm = Simulator(SimConfig(profile=LLM_DEFAULT))._profile_for(state, TESLA_T4)
    assert (llm.max_batch, llm.memory_fraction, llm.max_num_batched_tokens) == (64, 0.5, 512)
    assert llm.sources["max_batch"] == "pod flag --max-num-seqs"
    assert llm.kv_capacity_tokens() < LLM_DEFAULT.kv_capacity_tokens()
    assert llm.max_model_len == LLM_DEFAULT.max_model_len  # 1e6 tokens do not fit the KV cache
    assert "ignoring its --max-model-len" in caplog.text
    classic = Simulator(SimConfig(profile=CLASSIC_DEFAULT))._profile_for(state, TESLA_T4)
    assert classic.max_batch == CLASSIC_DEFAULT.max_batch  # vLLM batching flags mean nothing here
