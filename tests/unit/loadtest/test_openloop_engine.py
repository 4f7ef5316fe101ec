"""The open-loop engine against a fake streaming server on 127.0.0.1 (real HTTP, real SSE)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from openloop_testkit import MODEL, Plan, SseServer

from gpu_inference.adapters.openloop import (
    OpenLoopOptions,
    base_url,
    build_prompt,
    read_records,
    run_open_loop,
)
from gpu_inference.domain.rate_shapes import ConstantRate, SpikeRate, poisson_arrivals
from gpu_inference.domain.requests import Slo, slo_attainment
from gpu_inference.errors import ConfigError

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


def test_arrivals_follow_the_shape_integral(tmp_path: Path) -> None:
    shape = SpikeRate(base_rate=10, peak_rate=60, duration_s=2.0)  # 0.4 s + 0.6 s at 10, 1.0 s at 60
    expected = shape.expected_arrivals()
    assert expected == pytest.approx(70.0, rel=1e-6)
    out = tmp_path / "records.jsonl"
    with SseServer(Plan(ttft_s=0.005, itl_s=0.002, tokens=3)) as server:
        summary = run_open_loop(server.url, shape, OpenLoopOptions(seed=7), out)
        received = len(server.seen.bodies)
    schedule = poisson_arrivals(shape, 7)
    # Every arrival the seeded schedule drew was sent, once, and recorded.
    assert summary.scheduled == len(schedule) == received
    records = read_records(out)
    assert len(records) == len(schedule)
    assert sorted(r.scheduled_s for r in records) == pytest.approx(schedule)
    # Poisson: the count is within 4 standard deviations of the integral of the rate.
    assert abs(len(schedule) - expected) <= 4 * math.sqrt(expected)
    # The spike's share of arrivals: 60/70 of the mass lies in [0.4, 1.4).
    in_spike = sum(1 for t in schedule if 0.4 <= t < 1.4)
    assert abs(in_spike - 60) <= 4 * math.sqrt(60)
    assert summary.stats.ok == len(schedule)
    assert summary.expected_arrivals == pytest.approx(expected)
    # Sent on time (open loop): no request left long after its due time (a closed loop would wait
    # for replies; the bound leaves room for a busy test host).
    assert summary.stats.max_send_lag_s is not None
    assert summary.stats.max_send_lag_s < 0.25
    assert summary.wall_s >= shape.run_duration_s


def test_ttft_and_tpot_are_measured(tmp_path: Path) -> None:
    plan = Plan(ttft_s=0.12, itl_s=0.04, tokens=6)
    shape = ConstantRate(rate=8, duration_s=1.0)
    with SseServer(plan) as server:
        summary = run_open_loop(
            server.url, shape, OpenLoopOptions(api="completions", seed=3), tmp_path / "r.jsonl"
        )
    records = read_records(tmp_path / "r.jsonl")
    assert records
    assert all(r.ok for r in records)
    for r in records:
        assert r.ttft_s is not None
        assert r.tpot_s is not None
        assert 0.12 * 0.95 <= r.ttft_s <= 0.12 + 0.15
        assert 0.04 * 0.95 <= r.tpot_s <= 0.04 + 0.04
        assert len(r.itl_s) == 5
        # One late chunk shortens the next gap, so single gaps are only bounded above; their sum is not.
        assert all(0 <= g <= 0.04 + 0.1 for g in r.itl_s)
        assert sum(r.itl_s) >= 5 * 0.04 * 0.95
        assert r.completion_tokens == 6
        assert r.tokens_source == "usage"
        assert r.prompt_tokens is not None
        assert r.prompt_tokens > 0
        assert r.status == 200
        assert r.end_s is not None
        assert r.end_s - r.start_s >= 0.12 + 5 * 0.04 * 0.95
        assert r.simulated
        assert r.simulator_profile == "fake"
    assert summary.stats.ttft.p50 == pytest.approx(0.12, abs=0.1)
    assert summary.simulated


def test_tokens_counted_from_chunks_without_usage(tmp_path: Path) -> None:
    with SseServer(Plan(tokens=5, itl_s=0.01, usage=False, simulated=False)) as server:
        run_open_loop(
            server.url, ConstantRate(rate=5, duration_s=0.6), OpenLoopOptions(seed=1), tmp_path / "r.jsonl"
        )
    records = read_records(tmp_path / "r.jsonl")
    assert records
    for r in records:
        assert r.ok
        assert r.completion_tokens == 5
        assert r.tokens_source == "chunks"
        assert r.prompt_tokens is None
        assert not r.simulated
        assert r.simulator_profile is None


def test_request_body_is_a_streamed_openai_request(tmp_path: Path) -> None:
    options = OpenLoopOptions(api="chat", prompt_tokens=50, max_tokens=17, ignore_eos=True, seed=2)
    with SseServer(Plan(tokens=2)) as server:
        summary = run_open_loop(
            server.url + "/v1/", ConstantRate(rate=20, duration_s=0.5), options, tmp_path / "r.jsonl"
        )
        bodies, paths = server.seen.bodies, server.seen.paths
    assert bodies, "no request was sent"
    assert set(paths) == {"/v1/chat/completions"}
    body = bodies[0]
    assert body["model"] == MODEL == summary.model  # learnt from GET /v1/models
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 17
    assert body["ignore_eos"] is True
    content = body["messages"][0]["content"]
    # ~50 tokens: the simulator counts ceil(bytes / 4).
    assert math.ceil(len(content.encode()) / 4) == pytest.approx(50, abs=2)


def test_http_5xx_and_broken_streams_are_errors(tmp_path: Path) -> None:
    def plan(i: int, _body: object, _rid: str) -> Plan:
        return [Plan(status=503), Plan(error_chunk=True), Plan(omit_done=True), Plan(tokens=0), Plan()][i % 5]

    with SseServer(plan) as server:
        summary = run_open_loop(
            server.url, ConstantRate(rate=30, duration_s=1.0), OpenLoopOptions(seed=5), tmp_path / "r.jsonl"
        )
    records = {r.id: r for r in read_records(tmp_path / "r.jsonl")}
    by_order = [records[i] for i in sorted(records)]
    assert len(by_order) >= 10
    # The server picks each request's plan by the id the engine sends in X-Request-Id.
    kinds = [r.outcome for r in by_order[:5]]
    assert kinds == ["http_error", "stream_error", "stream_error", "stream_error", "ok"]
    assert by_order[0].status == 503
    assert "HTTP 503" in (by_order[0].error or "")
    assert "fake engine failure" in (by_order[1].error or "")
    assert by_order[1].ttft_s is not None  # one token came before the error chunk
    assert "[DONE]" in (by_order[2].error or "")
    assert "no generated text" in (by_order[3].error or "")
    assert summary.stats.failed == sum(1 for r in by_order if not r.ok) > 0
    slo = Slo(ttft_s=10, tpot_s=10)
    att = slo_attainment(by_order, slo)
    assert att.missed_error == summary.stats.failed
    assert att.met == summary.stats.ok


def test_an_unreadable_stream_still_leaves_a_record(tmp_path: Path) -> None:
    with SseServer(Plan(first_chunk_bytes=1_000_000)) as server:
        summary = run_open_loop(
            server.url, ConstantRate(rate=10, duration_s=0.4), OpenLoopOptions(seed=2), tmp_path / "r.jsonl"
        )
    records = read_records(tmp_path / "r.jsonl")
    assert len(records) == summary.scheduled > 0
    assert all(r.outcome == "stream_error" for r in records)


def test_request_timeout_is_recorded(tmp_path: Path) -> None:
    options = OpenLoopOptions(seed=1, request_timeout_s=0.3)
    started = time.monotonic()
    with SseServer(Plan(hang=True)) as server:
        summary = run_open_loop(
            server.url, ConstantRate(rate=10, duration_s=0.5), options, tmp_path / "r.jsonl"
        )
    elapsed = time.monotonic() - started
    records = read_records(tmp_path / "r.jsonl")
    assert records
    assert all(r.outcome == "timeout" for r in records)
    for r in records:
        assert r.end_s is not None
        assert 0.3 <= r.end_s - r.start_s <= 0.3 + 0.3
        assert r.status == 200  # the head arrived (the chat role chunk too), the tokens never did
    assert summary.stats.ok == 0
    assert summary.stats.outcomes["timeout"] == len(records)
    assert elapsed < 0.5 + 0.3 + 2.0


def test_deadline_cancels_and_records_open_requests(tmp_path: Path) -> None:
    options = OpenLoopOptions(seed=4, request_timeout_s=30, drain_s=0.2)
    shape = ConstantRate(rate=20, duration_s=0.6)
    started = time.monotonic()
    with SseServer(Plan(hang=True)) as server:
        summary = run_open_loop(server.url, shape, options, tmp_path / "r.jsonl")
    elapsed = time.monotonic() - started
    records = read_records(tmp_path / "r.jsonl")
    assert len(records) == summary.scheduled > 0
    assert all(r.outcome == "cancelled" for r in records)
    assert summary.cancelled_at_deadline == len(records)
    # Stopped at the shape's end plus the drain, not at the 30 s request timeout.
    assert summary.wall_s == pytest.approx(0.6 + 0.2, abs=0.25)
    for r in records:
        assert r.end_s is not None
        assert r.end_s == pytest.approx(0.8, abs=0.25)
    assert elapsed < 5


def test_concurrency_cap_drops_and_reports(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    options = OpenLoopOptions(seed=9, max_in_flight=3, request_timeout_s=30, drain_s=0.1)
    with SseServer(Plan(hang=True)) as server:
        summary = run_open_loop(
            server.url, ConstantRate(rate=40, duration_s=0.5), options, tmp_path / "r.jsonl"
        )
        peak_seen_by_server = server.seen.peak_in_flight
    records = read_records(tmp_path / "r.jsonl")
    dropped = [r for r in records if r.outcome == "dropped"]
    assert summary.cap_hit
    assert summary.dropped_at_cap == len(dropped) == len(records) - 3
    assert summary.peak_in_flight == 3
    assert peak_seen_by_server <= 3
    assert all(r.end_s is None and "max_in_flight" in (r.error or "") for r in dropped)
    assert "max_in_flight" in caplog.text


def test_no_cap_hit_when_the_server_keeps_up(tmp_path: Path) -> None:
    options = OpenLoopOptions(seed=9, max_in_flight=3)
    with SseServer(Plan(tokens=1)) as server:
        summary = run_open_loop(
            server.url, ConstantRate(rate=10, duration_s=0.5), options, tmp_path / "r.jsonl"
        )
    assert not summary.cap_hit
    assert summary.dropped_at_cap == 0


def test_a_client_that_falls_behind_its_schedule_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def block(_record: object) -> None:
        time.sleep(0.25)  # a host too slow for the rate: the event loop stalls

    with SseServer(Plan(tokens=1)) as server:
        summary = run_open_loop(
            server.url,
            ConstantRate(rate=20, duration_s=0.5),
            OpenLoopOptions(seed=1),
            tmp_path / "r.jsonl",
            on_record=block,
        )
    assert summary.stats.max_send_lag_s is not None
    assert summary.stats.max_send_lag_s > 0.1
    assert "did not keep the schedule" in caplog.text


def test_records_are_written_as_requests_finish(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    seen_on_disk: list[int] = []

    def on_record(_record: object) -> None:
        seen_on_disk.append(len(out.read_text().splitlines()))

    with SseServer(Plan(tokens=2)) as server:
        run_open_loop(
            server.url,
            ConstantRate(rate=10, duration_s=0.5),
            OpenLoopOptions(seed=1),
            out,
            on_record=on_record,
        )
    assert seen_on_disk == list(range(1, len(seen_on_disk) + 1))
    lines = out.read_text().splitlines()
    assert all(json.loads(line)["v"] == 1 for line in lines)


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5:8000", "http://example.com", "ftp://127.0.0.1/", "127.0.0.1:8000"]
)
def test_non_loopback_or_bad_urls_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="url"):
        run_open_loop(url, ConstantRate(rate=1, duration_s=1), OpenLoopOptions(), tmp_path / "r.jsonl")
    assert not (tmp_path / "r.jsonl").exists()


def test_remote_urls_need_allow_remote() -> None:
    assert base_url("http://10.0.0.5:8000/v1", allow_remote=True) == "http://10.0.0.5:8000"
    assert base_url("http://[::1]:8000/", allow_remote=False) == "http://[::1]:8000"


def test_a_url_without_the_api_is_a_clear_error(tmp_path: Path) -> None:
    with SseServer() as server:
        url = server.url + "/nothing-here"
        with pytest.raises(ConfigError, match="/v1/models"):
            run_open_loop(url, ConstantRate(rate=1, duration_s=1), OpenLoopOptions(), tmp_path / "r.jsonl")


def test_prompt_length() -> None:
    for n in (1, 2, 10, 128):
        assert math.ceil(len(build_prompt(n).encode()) / 4) == pytest.approx(n, abs=2)
