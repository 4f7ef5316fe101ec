"""Capacity calibration against a fake replica whose latency grows with concurrency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openloop_testkit import Plan, SseServer

from gpu_inference.adapters.openloop import OpenLoopOptions, read_records
from gpu_inference.domain.requests import Slo
from gpu_inference.errors import ConfigError
from gpu_inference.services.loadtest.calibrate import (
    CalibrationOptions,
    NoCapacityError,
    calibrate,
    calibration_options,
)

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

#: Two parallel slots, 10 ms to the first token, 4 tokens 10 ms apart: ~40 ms a request, ~50 req/s.
REPLICA = Plan(ttft_s=0.01, itl_s=0.01, tokens=4)
SLO = Slo(ttft_s=0.2, tpot_s=0.05)


def options(tmp_path: Path, **kw: object) -> CalibrationOptions:
    base: dict[str, object] = {
        "rates": [5, 10, 120],
        "step_s": 0.8,
        "min_requests": 1,
        "cooldown_s": 0.1,
        "target_attainment": 0.99,
        "request": OpenLoopOptions(seed=21, request_timeout_s=1.0, max_tokens=4),
        "out_dir": tmp_path / "cal",
    }
    base.update(kw)
    return CalibrationOptions.model_validate(base)


def test_capacity_is_the_highest_rate_before_the_slo_breaks(tmp_path: Path) -> None:
    with SseServer(REPLICA, slots=2) as server:
        result = calibrate(server.url, SLO, options(tmp_path))
    assert [s.rate for s in result.steps] == [5, 10, 120]
    assert [s.met_target for s in result.steps] == [True, True, False]
    assert result.capacity_rps == 10
    overloaded = result.steps[2]
    assert overloaded.attainment is not None
    assert overloaded.attainment < 0.99
    # Latency grows with the load: the queue at 120 req/s pushes TTFT past the SLO.
    assert overloaded.ttft_p99_s is None or overloaded.ttft_p99_s > SLO.ttft_s
    assert result.steps[0].ttft_p99_s is not None
    assert result.steps[0].ttft_p99_s < SLO.ttft_s
    assert result.simulated  # the fake names itself as the simulator does
    # The table and each step's records are on disk, and the attainment is recomputable from them.
    saved = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert saved["capacity_rps"] == 10
    step_records = read_records(Path(result.steps[2].records_path))
    assert len(step_records) == overloaded.requests
    assert sum(1 for r in step_records if r.ok and r.ttft_s is not None and r.ttft_s <= 0.2) < 0.99 * len(
        step_records
    )
    assert "MISS" in result.table()
    assert "SIMULATED" in result.table()


def test_no_rate_meets_the_slo_is_a_clear_error(tmp_path: Path) -> None:
    impossible = Slo(ttft_s=0.001, tpot_s=0.05)  # the replica needs 10 ms to the first token
    with SseServer(REPLICA, slots=2) as server, pytest.raises(NoCapacityError) as err:
        calibrate(server.url, impossible, options(tmp_path))
    message = str(err.value)
    assert "no rate met the SLO" in message
    assert "5 req/s" in message
    assert "Fix:" in message
    assert "\n" not in message
    cal = err.value.calibration
    assert cal.capacity_rps is None
    assert len(cal.steps) == 1  # stops at the first miss
    assert cal.steps[0].attainment == 0.0
    assert (tmp_path / "cal" / "calibration.json").exists()


def test_a_step_that_fails_then_recovers_is_noted_not_counted(tmp_path: Path) -> None:
    def plan(_i: int, _body: object, rid: str) -> Plan:
        # Step 1 (seed 22) is answered with 503s; the others are healthy.
        return Plan(status=503) if rid.startswith("openloop-22-") else REPLICA

    opts = options(tmp_path, rates=[5, 8, 10], stop_after_misses=2)
    with SseServer(plan, slots=2) as server:
        result = calibrate(server.url, SLO, opts)
    assert [s.met_target for s in result.steps] == [True, False, True]
    assert result.steps[1].failed == result.steps[1].requests > 0
    assert result.capacity_rps == 5
    assert any("met the target again" in n for n in result.notes)


def test_every_step_met_says_the_limit_was_not_found(tmp_path: Path) -> None:
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "step-07.jsonl").write_text("from an earlier, longer climb\n")
    with SseServer(REPLICA, slots=2) as server:
        result = calibrate(server.url, SLO, options(tmp_path, rates=[4, 8]))
    assert result.capacity_rps == 8
    assert any("raise max_rate" in n for n in result.notes)
    assert sorted(p.name for p in (tmp_path / "cal").glob("step-*.jsonl")) == [
        "step-00.jsonl",
        "step-01.jsonl",
    ]


def test_ladder_and_step_length() -> None:
    opts = CalibrationOptions(start_rate=1, growth=2, max_rate=10, step_s=5, min_requests=20)
    assert opts.ladder() == [1, 2, 4, 8]
    assert opts.step_seconds(1) == 20  # enough requests at a low rate
    assert opts.step_seconds(8) == 5


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"rates": [4, 2]}, "calibration rates: rates must be positive and increasing"),
        ({"rates": []}, "rates is empty"),
        ({"target_attainment": 1.5}, "calibration target_attainment"),
        ({"start_rate": 50, "max_rate": 10}, "start_rate 50 is above max_rate 10"),
        ({"step_s": 0}, "calibration step_s"),
    ],
)
def test_bad_options_name_the_setting(params: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match="Fix:") as err:
        calibration_options(params)
    assert message.rsplit(": ", maxsplit=1)[-1] in str(err.value)
    assert str(err.value).startswith("calibration")
