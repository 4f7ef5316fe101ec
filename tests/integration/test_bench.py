"""`gpu-inference bench --matrix bench/matrix-ci.yaml` end to end: calibration, one cell on its own
local cluster (real HPA, SIMULATED GPUs), the tables and page written with measured numbers, and no
cluster left behind."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpu_inference.services.local.cluster import LocalCluster
from gpu_inference.services.local.config import LocalClusterConfig

from .clusters import PORT_OFFSET

pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parents[2]


def test_ci_matrix_runs_and_writes_measured_tables(tmp_path: Path) -> None:
    name = "gi-bench-test"
    out = tmp_path / "bench"
    ports = {"--front-door-port": 22100, "--prometheus-port": 22190, "--adapter-port": 22543}
    cmd = [
        sys.executable,
        "-m",
        "gpu_inference.cli.main",
        "bench",
        "--matrix",
        str(ROOT / "bench" / "matrix-ci.yaml"),
    ]
    cmd += ["--out", str(out), "--name", name]
    for opt, port in ports.items():
        cmd += [opt, str(port + PORT_OFFSET)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=840, check=False)
    finally:
        LocalCluster(LocalClusterConfig(name=name)).down()  # also when the run was cut short
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "wall time:" in proc.stdout
    assert "SIMULATED" in proc.stdout

    for f in ("bench.json", "bench.csv", "bench.md", "bench.html", "results.jsonl"):
        assert (out / f).is_file(), f
    [cell] = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert cell["ok"] is True, cell.get("error")
    assert cell["capacity_rps"] > 0
    assert cell["requests"] > 0
    assert cell["step_at_s"] is not None
    assert cell["first_decision_s"] is not None
    assert cell["first_decision_s"] >= 0
    assert cell["ready_capacity_s"] is not None
    assert cell["ready_capacity_s"] >= cell["first_decision_s"]
    assert cell["gpu_hours"] > 0
    assert cell["oracle_gpu_hours"] > 0
    assert 0 <= cell["slo_attainment"] <= 1
    assert cell["peak_replicas"] > 1

    doc = json.loads((out / "bench.json").read_text())
    assert doc["simulated"] is True
    [row] = doc["rows"]
    assert row["figures"]["first_decision_s"]["median"] == pytest.approx(cell["first_decision_s"])
    [line] = list(csv.DictReader((out / "bench.csv").open()))
    assert float(line["gpu_hours_median"]) == pytest.approx(cell["gpu_hours"], rel=1e-4)
    assert "SIMULATED" in (out / "bench.html").read_text()
    assert not LocalClusterConfig(name=name).workdir.exists()
