"""End to end on loopback: a real locust subprocess against a small OpenAI-compatible server, the
sampler against recorded Prometheus/Kubernetes answers that follow the load, and the reports.

The cluster here is scripted (it reacts to the traffic the fake API receives); the real HPA on
the local cluster is exercised by the lead's demo and integration tests.
"""

from __future__ import annotations

import json
import re
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from loadtest_testkit import (
    HPA,
    NAMESPACE,
    ClusterBackend,
    ClusterState,
    OpenAIState,
    RouteServer,
    fake_target,
)
from typer.testing import CliRunner

from gpu_inference.cli.main import app
from gpu_inference.domain.timeline import RunReport, TimelineSample
from gpu_inference.services.loadtest.runner import VerifyOptions, run_verify_scaleup

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]

#: A shape file this tool has never seen: 2 users for 10 s.
FLAT_SHAPE = """
from locust import LoadTestShape

class Flat(LoadTestShape):
    def tick(self):
        return None if self.get_run_time() >= 10 else (2, 10)
"""


METRIC_MISSING = [
    {
        "type": "AbleToScale",
        "status": "True",
        "reason": "SucceededGetScale",
        "message": "the HPA controller was able to get the target's current scale",
    },
    {
        "type": "ScalingActive",
        "status": "False",
        "reason": "FailedGetPodsMetric",
        "message": (
            "the HPA was unable to compute the replica count: unable to get metric DCGM_FI_DEV_GPU_UTIL: "
            "no metrics returned from custom metrics API"
        ),
    },
]


def follows_the_load(api: OpenAIState, backend: ClusterBackend) -> Callable[[], ClusterState]:
    """What a working HPA shows, compressed, and driven by what the sampler has seen so it holds on a
    slow machine too: no metric for the first two samples (verify-scaleup waits for it before sending
    load), then a hot GPU for two samples once requests arrive, a second replica not yet Ready
    for two, then both Ready and cooler; when requests stop, two idle replicas for two samples, then one.
    """
    marks: dict[str, int] = {}

    def script() -> ClusterState:
        seen = backend.samples_served
        if seen < 2:  # a fresh install: the adapter has no data for the HPA yet
            return ClusterState(utils=[], hpa_value=None, conditions=METRIC_MISSING)
        if api.first_request_at is None or api.last_request_at is None:
            return ClusterState(utils=[20.0], hpa_value="20")
        if time.time() - api.last_request_at > 1.0:
            after_stop = seen - marks.setdefault("stop", seen)
            if after_stop < 2:
                return ClusterState(
                    desired=2, current=2, ready=2, utils=[0.0, 0.0], gpu_nodes=2, hpa_value="0"
                )
            return ClusterState(utils=[0.0], hpa_value="0")
        under_load = seen - marks.setdefault("start", seen)
        if under_load < 2:
            return ClusterState(utils=[96.0], hpa_value="96")
        if under_load < 4:
            return ClusterState(desired=2, current=2, ready=1, utils=[96.0, 0.0], gpu_nodes=2, hpa_value="48")
        return ClusterState(desired=2, current=2, ready=2, utils=[55.0, 45.0], gpu_nodes=2, hpa_value="50")

    return script


def test_verify_scaleup_end_to_end_with_an_unseen_shape(
    openai_server: RouteServer,
    openai_state: OpenAIState,
    backend: ClusterBackend,
    backend_server: RouteServer,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    backend.script = follows_the_load(openai_state, backend)
    shape = tmp_path / "flat.py"
    shape.write_text(textwrap.dedent(FLAT_SHAPE))
    out = tmp_path / "run"
    seen: list[TimelineSample] = []
    report = run_verify_scaleup(
        VerifyOptions(
            target=fake_target(openai_server.url, backend_server.url, kubeconfig, simulated=True),
            shape=str(shape),
            out_dir=out,
            interval_s=1.0,
            max_tokens=8,
            slo_p95_ms=5000,
            scale_up_within_s=30,
            scale_down_within_s=30,
            # This run proves the plumbing with an unseen shape; over-provisioning has its own tests.
            skip_overprovision=True,
        ),
        on_sample=seen.append,
    )
    failed = [f"{c.name}: {c.detail}" for c in report.checks if not c.passed]
    assert report.passed, failed
    assert report.simulated
    assert report.kind == "verify-scaleup"
    assert (report.initial_replicas, report.peak_replicas, report.final_replicas) == (1, 2, 1)
    assert report.seconds_to_first_scale_up is not None
    assert report.seconds_to_first_scale_up < 10
    assert report.seconds_to_ready is not None
    assert report.seconds_to_scale_down is not None
    # What locust counted is what the server served, but for answers still in flight when locust
    # stopped its 2 users (the server saw them, the users were stopped before reading them).
    completions = report.total_requests - 2  # each user's GET /v1/models
    assert openai_state.completions - 2 <= completions <= openai_state.completions
    assert report.total_failures == 0
    assert report.error_ratio == 0
    # max_tokens=8, counted from each answer's usage (tokens and requests are two counters in locust:
    # at the stop they may differ by the answers in flight)
    assert report.completion_tokens % 8 == 0
    assert abs(report.completion_tokens // 8 - completions) <= 2
    assert openai_state.completion_tokens - 16 <= report.completion_tokens <= openai_state.completion_tokens
    assert report.prompt_tokens in range(openai_state.prompt_tokens - 60, openai_state.prompt_tokens + 1)
    assert report.max_p95_ms is not None
    assert report.max_p95_ms < 2000
    phases = [s.phase for s in report.timeline]
    assert phases[:3] == ["baseline"] * 3  # waited two samples for the HPA's metric
    assert report.timeline[0].hpa is not None
    assert report.timeline[0].hpa.conditions[1].reason == "FailedGetPodsMetric"
    assert phases[3] == "load"
    assert "load" in phases
    assert phases[-1] == "tail"
    assert len(seen) == len(report.timeline)
    assert report.run.shape.name == "flat.py"
    assert report.run.locust_exit_code == 0
    # report.json carries at least the fields the issue names, and reads back as the same report.
    raw = json.loads((out / "report.json").read_text())
    for key in (
        "passed",
        "reasons",
        "simulated",
        "initial_replicas",
        "peak_replicas",
        "seconds_to_first_scale_up",
        "seconds_to_ready",
        "seconds_to_scale_down",
        "max_p95_ms",
        "error_ratio",
        "cost",
        "timeline",
    ):
        assert key in raw, key
    assert RunReport.model_validate(raw).passed
    assert raw["cost"]["simulated"]
    assert raw["cost"]["total_usd"] > 0
    assert raw["cost"]["node_hours"][0]["instance_type"] == "g4dn.xlarge"
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 5  # utilization, replicas, GPU nodes, traffic, $/h
    assert "SIMULATED GPU figures" in html
    assert "PASSED: scale-up verified" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<link" not in html
    assert (out / "timeline.jsonl").read_text().count("\n") == len(report.timeline)
    assert (out / "locust_stats_history.csv").is_file()
    assert (out / "tokens.jsonl").is_file()


def test_verify_scaleup_cli_exits_1_when_the_hpa_never_scales(
    openai_server: RouteServer,
    openai_state: OpenAIState,
    backend_server: RouteServer,
    cluster_state: ClusterState,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    cluster_state.utils = [97.0]  # hot GPU, but desired replicas stay at 1
    openai_state.broken_every = 4  # and a quarter of the answers break the protocol
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "verify-scaleup", "--target", openai_server.url, "--prometheus-url", backend_server.url,
            "--kubeconfig", str(kubeconfig), "--namespace", NAMESPACE, "--hpa", HPA, "--shape", "step",
            "--duration", "4s", "--peak-users", "2", "--interval", "1", "--skip-scale-down",
            "--out", str(out),
            "--max-tokens", "4",
            # locust's closed loop (its users and shape), judged against a given per-replica capacity
            "--mode", "closed", "--capacity-rps", "5",
        ],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "[FAIL] scaled_up_in_time: the HPA never scaled up" in result.output
    assert "[FAIL] error_ratio" in result.output
    assert "scale-up NOT verified" in result.output
    report = RunReport.model_validate_json((out / "report.json").read_text())
    assert report.passed is False
    assert not report.simulated
    assert report.total_failures > 0
    broken = openai_state.completions // 4  # served malformed; up to 2 may still be in flight at the stop
    assert broken - 2 <= report.total_failures <= broken
    assert "FAILED: scale-up not verified" in (out / "report.html").read_text()


def test_loadtest_against_an_unreachable_target_names_the_option(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["loadtest", "--target", "http://127.0.0.1:9", "--duration", "5", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2
    assert not (tmp_path / "x" / "report.json").exists()


def test_verify_scaleup_needs_the_cluster_to_watch(openai_server: RouteServer, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["verify-scaleup", "--target", openai_server.url, "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2


def test_loadtest_without_a_cluster_records_traffic_only(
    openai_server: RouteServer, openai_state: OpenAIState, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "loadtest", "--target", openai_server.url, "--shape", "spike", "--duration", "3s",
            "--peak-users", "2", "--interval", "1", "--observe-after", "1s", "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = RunReport.model_validate_json((out / "report.json").read_text())
    assert report.kind == "loadtest"
    assert report.passed is None
    assert report.checks == []
    assert report.cost is None  # no nodes were watched: nothing to price
    assert openai_state.completions - 2 <= report.total_requests - 2 <= openai_state.completions
    assert report.run.load_stopped_at is not None
    assert report.run.load_stopped_at - report.run.load_started_at < 8
    assert {s.phase for s in report.timeline} == {"baseline", "load", "tail"}
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 1  # requests and latency only
    assert "SIMULATED" not in html
    assert f"Report: {out / 'report.html'}" in result.output
