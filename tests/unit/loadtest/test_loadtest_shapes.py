"""Load shapes: their tick() sequences, and shape files the tool has never seen.

The shapes run in the real preview process (gpu_inference.services.loadtest.shape_probe), batched so
that locust is imported once per test module.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gpu_inference.errors import ConfigError
from gpu_inference.services.loadtest.shapes import (
    ShapeSchedule,
    bundled_shapes,
    preview_shapes,
    probe_shape,
    resolve_shape,
)

pytestmark = pytest.mark.unit

SHORT = {"LOADTEST_DURATION_S": "20", "LOADTEST_PEAK_USERS": "8", "LOADTEST_SPAWN_RATE": "4"}
CASES: dict[str, tuple[str, dict[str, str]]] = {
    "step": ("step", SHORT),
    "step-knobs": ("step", {**SHORT, "LOADTEST_STEPS": "2", "LOADTEST_RISE_FRACTION": "0.2"}),
    "ramp": ("ramp", {**SHORT, "LOADTEST_BASE_USERS": "2"}),
    "spike": ("spike", {**SHORT, "LOADTEST_BASE_USERS": "1"}),
    "diurnal": ("diurnal", {**SHORT, "LOADTEST_BASE_USERS": "1"}),
    "bad-number": ("ramp", {**SHORT, "LOADTEST_PEAK_USERS": "lots"}),
    "bad-duration": ("ramp", {**SHORT, "LOADTEST_DURATION_S": "0"}),
    "bad-base": ("ramp", {**SHORT, "LOADTEST_BASE_USERS": "50"}),
    "bad-spike": ("spike", {**SHORT, "LOADTEST_SPIKE_START": "0.8", "LOADTEST_SPIKE_END": "0.5"}),
}


@pytest.fixture(scope="module")
def previews() -> dict[str, ShapeSchedule | str]:
    names = list(CASES)
    results = preview_shapes([(resolve_shape(CASES[n][0]), CASES[n][1]) for n in names])
    return dict(zip(names, results, strict=True))


def steps_of(
    previews: dict[str, ShapeSchedule | str], name: str
) -> tuple[list[tuple[float, int, float]], float | None]:
    s = previews[name]
    assert isinstance(s, ShapeSchedule), s
    return [(st.t_s, st.users, st.spawn_rate) for st in s.steps], s.duration_s


def test_bundled_shapes_are_the_four_of_the_design() -> None:
    assert sorted(bundled_shapes()) == ["diurnal", "ramp", "spike", "step"]


def test_step_climbs_in_equal_steps_then_holds(previews: dict[str, ShapeSchedule | str]) -> None:
    # rise = 10 s in 4 steps of 2.5 s: 2, 4, 6, 8 users; the peak holds to the end at 20 s.
    assert steps_of(previews, "step") == ([(0, 2, 4.0), (3, 4, 4.0), (5, 6, 4.0), (8, 8, 4.0)], 20)


def test_step_takes_its_own_knobs(previews: dict[str, ShapeSchedule | str]) -> None:
    assert steps_of(previews, "step-knobs") == ([(0, 4, 4.0), (2, 8, 4.0)], 20)


def test_ramp_rises_linearly_from_the_base(previews: dict[str, ShapeSchedule | str]) -> None:
    steps, duration = steps_of(previews, "ramp")
    users = [u for _, u, _ in steps]
    assert steps[0] == (0, 2, 4.0)
    assert steps[-1] == (10, 8, 4.0)
    assert users == sorted(users)
    assert len(users) == len(set(users))
    assert duration == 20


def test_spike_jumps_to_the_peak_at_once_and_falls_back(previews: dict[str, ShapeSchedule | str]) -> None:
    assert steps_of(previews, "spike") == ([(0, 1, 8.0), (4, 8, 8.0), (14, 1, 8.0)], 20)


def test_diurnal_peaks_mid_run_and_returns_to_the_base(previews: dict[str, ShapeSchedule | str]) -> None:
    steps, duration = steps_of(previews, "diurnal")
    users = [u for _, u, _ in steps]
    peak_at = next(t for t, u, _ in steps if u == 8)
    assert users[0] == 1
    assert users[-1] == 1
    assert max(users) == 8
    assert 8 <= peak_at <= 10
    assert duration == 20


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("bad-number", "LOADTEST_PEAK_USERS='lots' is not a number"),
        ("bad-duration", "LOADTEST_DURATION_S='0' must be >= 1"),
        ("bad-base", "LOADTEST_BASE_USERS=50 is above LOADTEST_PEAK_USERS=8"),
        ("bad-spike", "need 0 <= LOADTEST_SPIKE_START < LOADTEST_SPIKE_END <= 1"),
    ],
)
def test_bad_shape_settings_fail_with_the_setting_named(
    previews: dict[str, ShapeSchedule | str], case: str, message: str
) -> None:
    assert isinstance(previews[case], str)
    assert message in str(previews[case])


SAWTOOTH = """
from locust import LoadTestShape

class Sawtooth(LoadTestShape):
    def tick(self):
        t = self.get_run_time()
        if t >= 9:
            return None
        return (1 + int(t) % 3, 10)
"""
BROKEN = {
    "no shape": ("x = 1\n", "must define exactly one LoadTestShape subclass, found: none"),
    "two shapes": (
        "from locust import LoadTestShape\n"
        "class A(LoadTestShape):\n    def tick(self): return None\n"
        "class B(LoadTestShape):\n    def tick(self): return None\n",
        "found: A, B",
    ),
    "tick raises": (
        "from locust import LoadTestShape\n"
        "class A(LoadTestShape):\n    def tick(self): raise RuntimeError('boom')\n",
        "RuntimeError: boom",
    ),
    "not python": ("def broken(:\n", "SyntaxError"),
}


def test_shape_files_never_seen_before(tmp_path: Path) -> None:
    """A new shape file is previewed and accepted; broken ones are refused with the cause."""
    good = tmp_path / "sawtooth.py"
    good.write_text(textwrap.dedent(SAWTOOTH))
    paths = [good]
    for i, (source, _) in enumerate(BROKEN.values()):
        paths.append(tmp_path / f"broken{i}.py")
        paths[-1].write_text(source)
    results = preview_shapes([(resolve_shape(str(p)), {}) for p in paths])
    s = results[0]
    assert isinstance(s, ShapeSchedule)
    assert s.class_name == "Sawtooth"
    assert [(st.t_s, st.users) for st in s.steps] == [(t, 1 + t % 3) for t in range(9)]
    assert s.duration_s == 9
    assert s.peak_users == 3
    for (_, message), result in zip(BROKEN.values(), results[1:], strict=True):
        assert isinstance(result, str)
        assert message in result


def test_probe_raises_a_config_error_naming_the_option(tmp_path: Path) -> None:
    path = tmp_path / "none.py"
    path.write_text("x = 1\n")
    with pytest.raises(ConfigError, match=r"--shape: .*none\.py failed to load or tick"):
        probe_shape(path, {})


def test_unknown_shape_names_list_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown shape 'sinus'.*diurnal, ramp, spike, step"):
        resolve_shape("sinus")
    with pytest.raises(ConfigError, match="not found"):
        resolve_shape(str(tmp_path / "missing.py"))
    (tmp_path / "shape.txt").write_text("")
    with pytest.raises(ConfigError, match=r"not a \.py file"):
        resolve_shape(str(tmp_path / "shape.txt"))
