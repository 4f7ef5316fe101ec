"""One cell's figures from a timeline and request records; median and spread over seeds; the tables."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpu_inference.cli.main import app
from gpu_inference.domain.bench import (
    Cell,
    CellResult,
    aggregate,
    cell_figures,
    fmt_spread,
    spread,
    step_time_s,
)
from gpu_inference.domain.rate_shapes import ConstantRate, FromIdleRate, StepRate
from gpu_inference.domain.requests import RequestRecord, Slo
from gpu_inference.domain.timeline import HpaStatus, TimelineSample, WorkloadStatus
from gpu_inference.rendering import bench_html, bench_tables

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
T0 = 1_000_000.0
SLO = Slo(ttft_s=2.0, tpot_s=0.2)


def _sample(t: float, desired: int, ready: int, current: int | None = None) -> TimelineSample:
    return TimelineSample(
        t=T0 + t,
        elapsed_s=t,
        phase="load" if t >= 0 else "baseline",
        hpa=HpaStatus(current_replicas=current if current is not None else desired, desired_replicas=desired),
        workload=WorkloadStatus(replicas=desired, ready_replicas=ready),
    )


def _timeline(decide_at: float, ready_at: float, end: float = 100, dt: float = 5) -> list[TimelineSample]:
    out = [_sample(-10, 1, 1), _sample(-5, 1, 1)]
    t = 0.0
    while t < end:
        out.append(_sample(t, 3 if t >= decide_at else 1, 3 if t >= ready_at else 1))
        t += dt
    return out


def _record(i: int, ttft: float | None, outcome: str = "ok", at: float = 50.0) -> RequestRecord:
    return RequestRecord(
        id=i,
        scheduled_s=at,
        target_rate=25,
        start_s=at,
        sent_at=T0 + at,
        ttft_s=ttft,
        tpot_s=0.05 if ttft is not None else None,
        end_s=at + 1 if outcome == "ok" else None,
        outcome=outcome,  # type: ignore[arg-type]
    )


def _figures(cell: Cell, samples: list[TimelineSample], shape: StepRate, **kw: object) -> CellResult:
    args: dict[str, object] = {
        "capacity_rps": 10.0,
        "min_replicas": 1,
        "max_replicas": 4,
        "slo": SLO,
        "steady_after_s": 30.0,
        "load_started_at": T0,
        "usd_per_replica_hour": 0.5,
    }
    args.update(kw)
    records = args.pop("records", [])
    return cell_figures(cell, samples, records, shape, **args)  # type: ignore[arg-type]


CELL = Cell(shape="step", config="c", timing="fast", seed=1, time_scale=1)


def test_decision_ready_and_gpu_hours_against_the_oracle() -> None:
    shape = StepRate(peak_rate=25, duration_s=100, steps=1)
    r = _figures(CELL, _timeline(decide_at=15, ready_at=40), shape)
    assert r.ok
    assert r.step_at_s == 0
    assert r.first_decision_s == 15
    assert r.ready_capacity_s == 40
    assert r.gpu_hours == pytest.approx((15 * 1 + 85 * 3) / 3600)
    assert r.oracle_gpu_hours == pytest.approx(300 / 3600)
    assert r.gpu_hours_ratio == pytest.approx(270 / 300)
    assert r.steady_gpu_hours_ratio == pytest.approx(1.0)  # from 30 s on: 3 replicas, as the oracle
    assert r.cost_usd == pytest.approx(r.gpu_hours * 0.5)
    assert r.reversals == 0
    assert r.reversals_per_30min is None  # not a stationary shape
    assert r.minutes_pinned_at_max == 0
    assert r.peak_replicas == 3


def test_a_slower_autoscaler_measures_slower() -> None:
    shape = StepRate(peak_rate=25, duration_s=100, steps=1)
    fast = _figures(CELL, _timeline(decide_at=15, ready_at=40), shape)
    slow = _figures(CELL, _timeline(decide_at=45, ready_at=70), shape)
    assert slow.first_decision_s is not None
    assert fast.first_decision_s is not None
    assert slow.first_decision_s > fast.first_decision_s
    assert slow.gpu_hours is not None
    assert fast.gpu_hours is not None
    assert slow.gpu_hours < fast.gpu_hours


def test_time_scale_reports_nominal_seconds_and_hours() -> None:
    shape = StepRate(peak_rate=25, duration_s=500, steps=1, time_scale=5)  # 100 run seconds
    cell = CELL.model_copy(update={"time_scale": 5.0})
    r = _figures(cell, _timeline(decide_at=15, ready_at=40), shape, steady_after_s=150.0)
    assert r.first_decision_s == 75
    assert r.ready_capacity_s == 200
    assert r.gpu_hours == pytest.approx(5 * 270 / 3600)
    assert r.steady_gpu_hours_ratio == pytest.approx(1.0)


def test_step_time_of_a_start_from_idle() -> None:
    shape = FromIdleRate(peak_rate=25, duration_s=100, idle_s=30)
    assert step_time_s(shape, 10, 1, 4) == pytest.approx(30)
    samples = [_sample(-5, 1, 1)] + [
        _sample(t, 3 if t >= 40 else 1, 3 if t >= 60 else 1) for t in range(0, 100, 5)
    ]
    r = _figures(CELL, samples, shape)  # type: ignore[arg-type]
    assert r.step_at_s == pytest.approx(30)
    assert r.first_decision_s == pytest.approx(10)
    assert r.ready_capacity_s == pytest.approx(30)


def test_no_step_when_the_minimum_suffices() -> None:
    shape = ConstantRate(rate=5, duration_s=100)
    samples = [_sample(t, 1, 1) for t in range(-5, 100, 5)]
    r = _figures(CELL, samples, shape)  # type: ignore[arg-type]
    assert r.step_at_s is None
    assert r.first_decision_s is None
    assert r.gpu_hours_ratio == pytest.approx(1.0)


def test_reversals_per_30_min_on_stationary_load() -> None:
    shape = ConstantRate(rate=25, duration_s=900)
    desired = {t: (3 if t < 300 or t >= 400 else 2) for t in range(0, 900, 10)}
    samples = [_sample(-10, 3, 3)] + [_sample(t, d, d) for t, d in desired.items()]
    r = _figures(CELL, samples, shape, stationary=True)  # type: ignore[arg-type]
    assert r.reversals == 1  # down, then up: one change of direction
    assert r.reversals_per_30min == pytest.approx(1 / (900 / 1800))


def test_minutes_pinned_at_max_only_when_the_oracle_wants_more() -> None:
    shape = StepRate(peak_rate=50, duration_s=120, steps=1)  # oracle wants 5, max is 3
    samples = [_sample(-5, 1, 1)] + [_sample(t, 3, 3) for t in range(0, 120, 5)]
    r = _figures(CELL, samples, shape, max_replicas=3)
    assert r.minutes_pinned_at_max == pytest.approx(2.0)
    under = StepRate(peak_rate=15, duration_s=120, steps=1)  # oracle wants 2
    assert _figures(CELL, samples, under, max_replicas=3).minutes_pinned_at_max == 0


def test_slo_attainment_from_records_and_the_steady_part() -> None:
    shape = StepRate(peak_rate=25, duration_s=100, steps=1)
    records = [
        _record(0, 0.5, at=10),  # before the steady phase (30 s)
        _record(1, 3.0, at=12),  # TTFT miss, not steady
        _record(2, 0.5, at=50),
        _record(3, 0.5, at=60),
        _record(4, None, outcome="http_error", at=70),
        _record(5, None, outcome="cancelled", at=99),  # not counted
    ]
    r = _figures(CELL, _timeline(15, 40), shape, records=records)
    assert r.requests == 5
    assert r.errors == 1
    assert r.error_ratio == pytest.approx(0.2)
    assert r.slo_attainment == pytest.approx(3 / 5)
    assert r.steady_slo_attainment == pytest.approx(2 / 3)
    assert r.ttft_p95_ms == pytest.approx(3000)


def test_no_samples_during_the_load_is_a_failed_cell() -> None:
    shape = StepRate(peak_rate=25, duration_s=100, steps=1)
    r = _figures(CELL, [_sample(-5, 1, 1)], shape)
    assert not r.ok
    assert r.error


def test_spread_is_median_and_range_of_known_values() -> None:
    s = spread([3, None, 1, 2])
    assert (s.median, s.low, s.high, s.n) == (2, 1, 3, 3)
    assert spread([1, 4]).median == 2.5
    assert spread([None]).median is None
    assert fmt_spread(s, "{:.0f}") == "2 (1-3)"
    assert fmt_spread(spread([5]), "{:.0f}") == "5"
    assert fmt_spread(spread([]), "{:.0f}") == "n/a"


def _results() -> list[CellResult]:
    out = []
    for seed, decision in ((1, 10.0), (2, 30.0), (3, 20.0)):
        cell = Cell(shape="step", config="a", timing="fast", seed=seed, time_scale=5)
        out.append(
            CellResult(cell=cell, first_decision_s=decision, gpu_hours=0.1 * seed, oracle_gpu_hours=0.1)
        )
    bad = Cell(shape="step", config="b", timing="fast", seed=1, time_scale=5)
    out.append(CellResult(cell=bad, ok=False, error="boom", first_decision_s=999.0))
    return out


def test_aggregate_groups_by_everything_but_the_seed() -> None:
    rows = aggregate(_results())
    assert [r.group for r in rows] == ["step/a/fast/k5", "step/b/fast/k5"]
    a, b = rows
    assert a.seeds == [1, 2, 3]
    assert a.figures["first_decision_s"].median == 20
    assert (a.figures["first_decision_s"].low, a.figures["first_decision_s"].high) == (10, 30)
    assert a.figures["gpu_hours"].median == pytest.approx(0.2)
    assert b.failed == 1
    assert b.figures["first_decision_s"].n == 0  # a failed cell's figures are not aggregated


def test_tables_hold_the_aggregates(tmp_path: Path) -> None:
    rows = aggregate(_results())
    md = bench_tables.markdown_table(rows)
    lines = md.strip().splitlines()
    assert len(lines) == 2 + len(rows)
    assert "first scale-up decision (s)" in lines[0]
    assert "| step | a | fast | 5 | 1,2,3 | 20 (10-30) |" in md
    assert "1 (1 failed)" in md
    table = list(csv.DictReader(io.StringIO(bench_tables.csv_table(rows))))
    assert table[0]["first_decision_s_median"] == "20"
    assert table[0]["first_decision_s_min"] == "10"
    assert table[0]["first_decision_s_n"] == "3"
    assert table[1]["first_decision_s_median"] == ""
    doc = json.loads(bench_tables.json_table(rows, {"matrix": "t"}))
    assert doc["matrix"] == "t"
    assert doc["rows"][0]["figures"]["first_decision_s"]["median"] == 20
    page = bench_html.write_html(rows, _results(), {"matrix": "t"}, tmp_path / "bench.html").read_text()
    assert "SIMULATED" in page
    assert "20 (10-30)" in page
    assert "failed (boom)" in page


def test_cli_bad_matrix_is_one_line_and_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    f.write_text("name: t\nseeds: [1]\nshapes: []\nconfigs: [{name: a}]\n")
    result = CliRunner().invoke(app, ["bench", "--matrix", str(f), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert len(lines) == 1, result.output
    assert "shapes" in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_cli_time_scale_under_the_floor_is_refused_before_any_cluster(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "--matrix",
            str(ROOT / "bench" / "matrix-ci.yaml"),
            "--time-scale",
            "15",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2
    assert "time_scale" in result.output
    assert "floor" in result.output


def test_faithfulness_compares_medians_within_tolerance() -> None:
    from gpu_inference.domain.bench import Faithfulness, faithfulness

    def res(k: float, seed: int, decision: float, ratio: float) -> CellResult:
        cell = Cell(shape="step", config="a", timing="fast", seed=seed, time_scale=k)
        return CellResult(cell=cell, first_decision_s=decision, gpu_hours_ratio=ratio)

    rows = aggregate([res(5, 1, 30, 1.0), res(5, 2, 35, 1.1), res(1, 1, 20, 1.0), res(1, 2, 60, 1.5)])
    out = {r.figure: r for r in faithfulness(rows, Faithfulness(shape="step", config="a", time_scale=1), 5)}
    d = out["first_decision_s"]
    assert (d.compressed, d.reference, d.difference) == (32.5, 40, -7.5)
    assert d.within is True
    g = out["gpu_hours_ratio"]
    assert g.within is False  # 1.05 against 1.25: 0.2 is over 0.15
    assert out["slo_attainment"].within is None  # reported, not judged
    md = bench_tables.faithfulness_table(list(out.values()), 5, 1)
    assert "| gpu_hours_ratio | 1.05 | 1.25 | -0.2 | 0.15 | NO |" in md


def test_a_cell_waits_for_its_ports_then_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpu_inference.errors import ConfigError
    from gpu_inference.services.bench import run

    monkeypatch.setattr(run.time, "sleep", lambda _s: None)

    class Busy:
        def __init__(self, busy_for: int) -> None:
            self.calls = 0
            self.busy_for = busy_for

        def check_ports(self) -> None:
            self.calls += 1
            if self.calls <= self.busy_for:
                raise ConfigError("--front-door-port", "127.0.0.1:38000 is already in use", "wait")

    freed = Busy(2)
    run._wait_for_ports(freed)
    assert freed.calls == 3
    monkeypatch.setattr(run, "PORT_WAIT_S", 0.0)
    with pytest.raises(ConfigError, match="already in use"):
        run._wait_for_ports(Busy(10**6))


def test_the_load_phase_is_a_seeded_part_of_the_longest_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpu_inference.domain.bench import scaled_timing_values
    from gpu_inference.services.bench import run

    compressed = scaled_timing_values(run.chart_defaults(), 5)
    assert run.phase_window_s(compressed) == 3.0  # sync 3 s, scrape 3 s, collection 1 s
    slept: list[float] = []
    monkeypatch.setattr(run.time, "sleep", slept.append)

    def delays(seed: int) -> list[float]:
        slept.clear()
        hold = run._phase_delay(compressed, CELL.model_copy(update={"seed": seed}))
        hold(_sample(-3, 1, 1).model_copy(update={"hpa": HpaStatus(current_replicas=1, desired_replicas=0)}))
        reading = HpaStatus(current_replicas=1, desired_replicas=1, current_value=0.0)
        hold(_sample(-2, 1, 1).model_copy(update={"hpa": reading}))  # the HPA reads its metric: hold, once
        hold(_sample(-1, 1, 1).model_copy(update={"hpa": reading}))
        return list(slept)

    first = delays(1)
    assert len(first) == 1
    assert 0 <= first[0] <= 3.0
    assert delays(1) == first  # reproducible
    assert len({delays(s)[0] for s in range(1, 6)}) == 5  # seeds differ


def test_resume_keeps_only_ok_cells_of_the_same_matrix(tmp_path: Path) -> None:
    from gpu_inference.services.bench.run import _earlier_results

    a = Cell(shape="step", config="a", timing="fast", seed=1, time_scale=5)
    b = a.model_copy(update={"seed": 2})
    gone = a.model_copy(update={"config": "removed"})
    path = tmp_path / "results.jsonl"
    lines = [
        CellResult(cell=a, capacity_rps=32, first_decision_s=10),
        CellResult(cell=b, ok=False, error="boom"),
        CellResult(cell=gone, first_decision_s=5),
    ]
    path.write_text("".join(r.model_dump_json() + "\n" for r in lines))
    kept = _earlier_results(path, [a, b])
    assert list(kept) == [a.id]
    assert kept[a.id].first_decision_s == 10
    assert _earlier_results(tmp_path / "none.jsonl", [a]) == {}
