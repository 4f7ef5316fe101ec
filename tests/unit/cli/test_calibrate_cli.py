"""`gpu-inference calibrate`: the targets it suggests come from the measured steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_inference.cli.calibrate import suggested_targets
from gpu_inference.domain.requests import RequestRecord, Slo
from gpu_inference.services.loadtest.calibrate import Calibration, CalibrationStep

pytestmark = pytest.mark.unit


def _step(tmp_path: Path, rate: float, latency_s: float, met: bool = True) -> CalibrationStep:
    path = tmp_path / f"step-{rate:g}.jsonl"
    records = [
        RequestRecord(
            id=i, scheduled_s=i / rate, target_rate=rate, start_s=i / rate, sent_at=1e9 + i / rate,
            end_s=i / rate + latency_s, status=200, outcome="ok",
        )
        for i in range(10)
    ]  # fmt: skip
    path.write_text("".join(r.model_dump_json() + "\n" for r in records))
    return CalibrationStep(
        rate=rate, duration_s=10, requests=10, ok=10, failed=0, attainment=1.0 if met else 0.5,
        met_target=met, achieved_rps=rate, goodput_rps=rate, ttft_p50_s=None, ttft_p99_s=None,
        tpot_p50_s=None, tpot_p99_s=None, dropped_at_cap=0, simulated=True, records_path=str(path),
    )  # fmt: skip


def test_targets_are_read_off_the_step_nearest_85_percent_of_capacity(tmp_path: Path) -> None:
    steps = [_step(tmp_path, 10, 1.0), _step(tmp_path, 20, 2.0), _step(tmp_path, 24, 4.0)]
    steps.append(_step(tmp_path, 30, 9.0, met=False))
    cal = Calibration(
        url="http://127.0.0.1:1", slo=Slo(ttft_s=2, tpot_s=0.2), target_attainment=0.95,
        capacity_rps=24, steps=steps, simulated=True,
    )  # fmt: skip
    lines = "\n".join(suggested_targets(cal))
    assert "requestRate.target=20.4" in lines
    # 20 req/s x 2 s mean latency = 40 in flight (Little's law), from the 20 req/s step
    assert "runningRequests.target=40" in lines


def test_no_capacity_no_suggestion(tmp_path: Path) -> None:
    cal = Calibration(
        url="http://127.0.0.1:1", slo=Slo(ttft_s=2, tpot_s=0.2), target_attainment=0.95,
        capacity_rps=None, steps=[_step(tmp_path, 10, 9.0, met=False)], simulated=True,
    )  # fmt: skip
    assert suggested_targets(cal) == []
