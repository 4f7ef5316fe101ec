"""verify-scaleup in open-loop mode: Poisson arrivals, per-request records, SLO attainment, demand."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from loadtest_testkit import ClusterBackend, ClusterState, RouteServer, fake_target, write_kubeconfig
from openloop_testkit import Plan, SseServer

from gpu_inference.adapters.openloop import OpenLoopOptions, read_records
from gpu_inference.domain.rate_shapes import StepRate
from gpu_inference.services.cost.report import usage_from_report
from gpu_inference.services.loadtest.runner import REQUESTS_FILE, VerifyOptions, run_verify_scaleup

pytestmark = pytest.mark.unit


def scripted(load_from: dict[str, float]) -> Callable[[], ClusterState]:
    """A working HPA, driven by the clock: hot at the step, a second replica Ready 3 s later."""

    def script() -> ClusterState:
        if "t" not in load_from:
            return ClusterState(utils=[20.0], hpa_value="20")
        dt = time.time() - load_from["t"]
        if dt < 2:
            return ClusterState(utils=[20.0], hpa_value="20")
        if dt < 4:
            return ClusterState(utils=[96.0], hpa_value="96")
        if dt < 6:
            return ClusterState(desired=2, current=2, ready=1, utils=[96.0, 0.0], gpu_nodes=2, hpa_value="48")
        if dt < 11:
            return ClusterState(
                desired=2, current=2, ready=2, utils=[55.0, 45.0], gpu_nodes=2, hpa_value="50"
            )
        return ClusterState(utils=[0.0], hpa_value="0")

    return script


def run(tmp_path: Path, plan: Plan, **criteria: float) -> tuple[object, Path]:
    load_from: dict[str, float] = {}
    backend = ClusterBackend(ClusterState)
    backend.script = scripted(load_from)
    cluster = RouteServer(backend)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", cluster.url)
    out = tmp_path / "run"

    def on_sample(s: object) -> None:
        if getattr(s, "phase", "") == "load" and "t" not in load_from:
            load_from["t"] = time.time()

    try:
        with SseServer(plan) as api:
            report = run_verify_scaleup(
                VerifyOptions(
                    target=fake_target(api.url, cluster.url, kubeconfig),
                    out_dir=out,
                    interval_s=1.0,
                    mode="open",
                    rate_shape=StepRate(peak_rate=8, duration_s=10, steps=1),
                    open_loop=OpenLoopOptions(api="completions", max_tokens=4, seed=3, request_timeout_s=5),
                    scale_up_within_s=30,
                    scale_down_within_s=30,
                    capacity_rps=5,
                    **criteria,
                ),
                on_sample=on_sample,
            )
    finally:
        cluster.close()
    return report, out


def test_open_loop_run_records_every_request_and_judges_the_slo(tmp_path: Path) -> None:
    report, out = run(tmp_path, Plan())
    records = read_records(out / REQUESTS_FILE)
    assert len(records) > 20
    assert report.run.mode == "open"  # type: ignore[attr-defined]
    load = [s for s in report.timeline if s.phase == "load"]  # type: ignore[attr-defined]
    assert any(s.demand_rps == 8 for s in load)
    assert sum(s.requests.finished for s in load if s.requests) > 0
    names = {c.name: c for c in report.checks}  # type: ignore[attr-defined]
    assert "slo_attainment" in names
    assert names["slo_attainment"].passed, names["slo_attainment"].detail
    assert report.slo_attainment == 1.0  # type: ignore[attr-defined]
    # tokens and bytes for the cost report come from the records, not from locust (absent here)
    ok = [r for r in records if r.ok]
    assert all(r.response_bytes > 0 for r in ok)
    assert report.completion_tokens == sum(r.completion_tokens or 0 for r in ok) > 0  # type: ignore[attr-defined]
    assert report.prompt_tokens == sum(r.prompt_tokens or 0 for r in ok) > 0  # type: ignore[attr-defined]
    usage = usage_from_report(report)  # type: ignore[arg-type]
    assert usage.response_bytes == sum(r.response_bytes for r in ok)


def test_a_slow_server_fails_the_slo_attainment_check(tmp_path: Path) -> None:
    report, _ = run(tmp_path, Plan(ttft_s=0.3), slo_ttft_ms=100)
    check = next(c for c in report.checks if c.name == "slo_attainment")  # type: ignore[attr-defined]
    assert not check.passed
    assert "TTFT <= 100 ms" in check.detail
