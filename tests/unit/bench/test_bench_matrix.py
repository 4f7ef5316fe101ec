"""The benchmark matrix file and time compression: parsing, one-line errors, cells, scaled intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_inference.domain.bench import (
    deep_merge,
    duration_s,
    format_duration,
    load_matrix,
    parse_matrix,
    scaled_timing_values,
)
from gpu_inference.errors import ConfigError
from gpu_inference.services.bench.run import chart_defaults, check_matrix, compress, merged_values

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
BENCH = ROOT / "bench"


def _raw(**over: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "t",
        "time_scale": 5,
        "seeds": [1, 2, 3],
        "shapes": [{"name": "step", "kind": "step", "params": {"duration_s": 120, "peak_x": 2}}],
        "configs": [{"name": "chart-defaults"}, {"name": "other", "set": ["autoscaling.maxReplicas=3"]}],
    }
    raw.update(over)
    return raw


@pytest.mark.parametrize("path", sorted(BENCH.glob("matrix*.yaml")), ids=lambda p: p.name)
def test_shipped_matrices_parse_and_compress(path: Path) -> None:
    m = load_matrix(path)
    check_matrix(m)  # every (config, k) of the file compresses within the floors
    assert m.cells()


def test_ci_matrix_is_one_short_compressed_cell() -> None:
    m = load_matrix(BENCH / "matrix-ci.yaml")
    cells = m.cells()
    assert len(cells) == 1
    assert cells[0].time_scale > 1
    assert m.shapes[0].build(10.0, cells[0].time_scale).run_duration_s <= 120


def test_reported_matrix_has_three_seeds_and_every_baseline() -> None:
    m = load_matrix(BENCH / "matrix.yaml")
    assert len(m.seeds) >= 3
    names = {c.name for c in m.configs}
    assert {"community-defaults", "chart-defaults", "vllm-recommended"} <= names
    assert m.faithfulness is not None
    assert m.faithfulness.time_scale != m.time_scale


def test_full_matrix_lists_every_shape_kind() -> None:
    m = load_matrix(BENCH / "matrix-full.yaml")
    assert {s.kind for s in m.shapes} >= {
        "step",
        "spike",
        "ramp",
        "diurnal",
        "bursts",
        "from-idle",
        "constant",
    }


def test_cells_are_the_product_plus_faithfulness() -> None:
    m = parse_matrix(_raw(faithfulness={"shape": "step", "config": "chart-defaults", "time_scale": 1}))
    cells = m.cells()
    assert len(cells) == 1 * 2 * 1 * 3 + 3
    assert {c.time_scale for c in cells[-3:]} == {1.0}
    assert len({c.id for c in cells}) == len(cells)


def test_a_shape_can_be_limited_to_some_configs() -> None:
    shapes = [
        {"name": "step", "kind": "step", "params": {"peak_x": 2}},
        {
            "name": "flat",
            "kind": "constant",
            "params": {"rate_x": 0.5},
            "configs": ["other"],
            "stationary": True,
        },
    ]
    cells = parse_matrix(_raw(shapes=shapes)).cells()
    assert [c.config for c in cells if c.shape == "flat"] == ["other"] * 3


def test_rates_in_capacity_multiples_and_the_clock() -> None:
    m = parse_matrix(
        _raw(
            shapes=[
                {"name": "step", "kind": "step", "params": {"duration_s": 100, "peak_x": 2.5}},
                {"name": "day", "kind": "diurnal", "params": {"peak_x": 2, "base_x": 0.5}},
            ]
        )
    )
    step = m.shapes[0].build(4.0, 5)
    assert step.max_rate() == pytest.approx(10.0)
    assert step.run_duration_s == pytest.approx(20.0)
    day = m.shapes[1].build(4.0, 5)
    assert day.time_scale == pytest.approx(144 * 5)  # the shape's own day compression, times k
    assert m.shapes[1].nominal(4.0).run_duration_s == pytest.approx(600.0)


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"colour": "red"}, "matrix: colour"),
        ({"seeds": []}, "matrix: seeds"),
        ({"time_scale": 0}, "matrix: time_scale"),
        ({"shapes": [{"name": "x", "kind": "zigzag"}]}, "matrix: shapes[x].kind"),
        ({"shapes": [{"name": "x", "kind": "step", "pace": 1}]}, "matrix: shapes[x].pace"),
        ({"configs": [{"name": "a", "set": ["wiring.scrapeInterval=5s"]}]}, "matrix: configs[a].set"),
        ({"configs": [{"name": "a", "set": ["novalue"]}]}, "matrix: configs[a].set"),
        ({"configs": [{"name": "a"}, {"name": "a"}]}, "matrix: configs"),
        ({"faithfulness": {"shape": "step", "config": "nope"}}, "matrix"),
    ],
)
def test_bad_matrix_is_one_line_naming_the_key(change: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_matrix(_raw(**change))
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(names), msg
    assert "Fix:" in msg


def test_missing_matrix_file_and_values_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--matrix"):
        load_matrix(tmp_path / "nope.yaml")
    f = tmp_path / "m.yaml"
    f.write_text(yaml.safe_dump(_raw(configs=[{"name": "a", "values": ["missing.yaml"]}])))
    with pytest.raises(ConfigError, match=r"configs\[a\]\.values"):
        load_matrix(f)
    f.write_text("[1, 2")
    with pytest.raises(ConfigError, match="not YAML"):
        load_matrix(f)


def test_durations() -> None:
    assert duration_s("15s") == 15
    assert duration_s("1m30s") == 90
    assert duration_s("500ms") == 0.5
    assert duration_s(7) == 7
    with pytest.raises(ValueError, match="not a duration"):
        duration_s("15 seconds")
    assert format_duration(3) == "3s"
    assert format_duration(1.5) == "1500ms"


def test_merge_is_helms() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert deep_merge(base, {"a": {"c": [3]}, "e": 2}) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base["a"]["c"] == [1, 2]


def test_chart_defaults_divided_by_five() -> None:
    c = scaled_timing_values(chart_defaults(), 5)
    assert c.hpa_sync_period_s == 3
    assert c.values["wiring"] == {"scrapeInterval": "3s", "relistInterval": "6s"}
    assert c.values["dcgm-exporter"]["collectIntervalMs"] == 1000
    b = c.values["autoscaling"]["behavior"]
    assert b["scaleDown"]["stabilizationWindowSeconds"] == 60
    assert [p["periodSeconds"] for p in b["scaleUp"]["policies"]] == [3, 3]
    assert b["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert c.intervals["wiring.scrapeInterval"] == (15.0, 3.0)


def test_community_defaults_compress() -> None:
    m = load_matrix(BENCH / "matrix.yaml")
    cell = next(c for c in m.cells() if c.config == "community-defaults")
    c = compress(m, cell)
    assert c.values["dcgm-exporter"]["collectIntervalMs"] == 30000 / cell.time_scale
    merged = merged_values(m.config("community-defaults"))
    assert merged["wiring"]["scrapeInterval"] == "30s"


def test_signal_window_is_compressed() -> None:
    values = deep_merge(
        chart_defaults(), {"autoscaling": {"signalSettings": {"queueDepth": {"window": "1m"}}}}
    )
    c = scaled_timing_values(values, 5)
    assert c.values["autoscaling"]["signalSettings"]["queueDepth"] == {"window": "12s"}
    assert "gpuUtilization" not in c.values["autoscaling"]["signalSettings"]  # no window: nothing to scale


def test_time_scale_under_the_floor_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        scaled_timing_values(chart_defaults(), 15)  # DCGM collection 5 s / 15 = 0.33 s
    assert err.value.setting == "time_scale"
    assert "floor" in err.value.problem


def test_time_scale_that_makes_seconds_fractional_is_refused() -> None:
    with pytest.raises(ConfigError, match="whole number of seconds"):
        scaled_timing_values(chart_defaults(), 4)  # 15 s / 4


def test_check_matrix_names_the_config() -> None:
    m = parse_matrix(_raw(time_scale=10))
    with pytest.raises(ConfigError, match=r"time_scale 10 \(config chart-defaults\)"):
        check_matrix(m)


def test_rate_x_of_a_constant_shape() -> None:
    m = parse_matrix(_raw(shapes=[{"name": "flat", "kind": "constant", "params": {"rate_x": 1.5}}]))
    assert m.shapes[0].build(10.0, 5).max_rate() == pytest.approx(15.0)
