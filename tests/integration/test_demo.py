"""`make demo` end to end with a short load: its own local cluster, a verified scale-up, a cost
report and report.html, and nothing left behind afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gpu_inference.services.local.config import LocalClusterConfig

pytestmark = pytest.mark.timeout(900)


def test_demo_verifies_scale_up_and_cleans_up(tmp_path: Path, llm_calibration: Path) -> None:
    name = "gi-demo-test"
    out = tmp_path / "demo"
    cmd = [
        sys.executable,
        "-m",
        "gpu_inference.cli.main",
        "demo",
        "--name",
        name,
        "--out",
        str(out),
        "--duration",
        "300",
        # the session's measurement of one SIMULATED llm replica (the demo would otherwise measure it)
        "--calibration",
        str(llm_calibration),
    ]
    # The demo's default ports differ from the session cluster's (conftest): both may be up at once.
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=840, check=False)
    report_path = out / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    assert proc.returncode == 0, _failure(report, proc)
    assert report["passed"] is True
    assert report["simulated"] is True
    assert report["peak_replicas"] > report["initial_replicas"]
    assert report["total_requests"] > 0
    # the server the chart deploys (vllm preset -> llm profile), open-loop load, per-request SLO
    assert report["run"]["mode"] == "open"
    assert report["run"]["simulator"]["kind"] == "llm"
    assert report["slo_attainment"] is not None
    assert report["simulated_evidence"]
    assert report["cost"]["total_usd"] > 0
    assert (out / "cost.json").is_file()
    html = (out / "report.html").read_text()
    assert "<svg" in html
    assert "SIMULATED" in html
    assert "scale-up VERIFIED" in proc.stdout
    workdir = LocalClusterConfig(name=name).workdir
    assert not workdir.exists(), "demo left its cluster's files behind"
    left = subprocess.run(["pgrep", "-af", str(workdir)], capture_output=True, text=True, check=False).stdout
    assert not left.strip(), f"demo left processes behind:\n{left}"


def _failure(report: dict[str, Any], proc: subprocess.CompletedProcess[str]) -> str:
    """What a failed demo says first: the checks that failed and the run's figures, then its log."""
    failed = [f"{c['name']}: {c['detail']}" for c in report.get("checks", []) if not c.get("passed")]
    figures = {k: report.get(k) for k in ("peak_replicas", "slo_attainment", "total_requests")}
    return "\n".join(["failed checks:", *failed, f"figures: {figures}", proc.stderr[-6000:]])
