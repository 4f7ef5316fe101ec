"""The JSON documents a run reads back (report.json, calibration.json): one-line errors on bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_inference.domain.requests import Slo
from gpu_inference.domain.timeline import load_report
from gpu_inference.errors import ConfigError
from gpu_inference.services.loadtest.calibrate import Calibration
from gpu_inference.services.loadtest.runner import load_calibration

pytestmark = pytest.mark.unit


def test_a_missing_report_names_the_setting_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--run: .*report.json not found\. Fix: pass the --out directory"):
        load_report(tmp_path)


def test_a_foreign_report_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text('{"kind": "something else"}')
    with pytest.raises(ConfigError, match=r"--run: .* is not a report.json this tool wrote") as info:
        load_report(tmp_path)
    assert info.value.fix == "rerun the load test"


def test_calibration_files_missing_foreign_or_without_a_capacity(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--calibration: .* not found"):
        load_calibration(tmp_path / "calibration.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(ConfigError, match=r"is not a calibration.json this tool wrote") as info:
        load_calibration(bad)
    assert info.value.fix == "rerun calibrate"
    none = tmp_path / "none.json"
    cal = Calibration(
        url="http://127.0.0.1:1",
        slo=Slo(ttft_s=2, tpot_s=0.2),
        target_attainment=0.95,
        capacity_rps=None,
        steps=[],
        simulated=True,
    )
    none.write_text(cal.model_dump_json())
    with pytest.raises(ConfigError, match=r"found no rate that met the SLO"):
        load_calibration(none)
    good = tmp_path / "good.json"
    good.write_text(cal.model_copy(update={"capacity_rps": 38.0}).model_dump_json())
    assert load_calibration(good).capacity_rps == 38.0
