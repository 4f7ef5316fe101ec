"""The CLI's error boundary: one line on stderr, exit 2 for bad input, 3 for a crash, no traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gpu_inference.cli.common import ErrorBoundary, error_line
from gpu_inference.cli.main import app
from gpu_inference.errors import ConfigError, ToolNotFoundError

pytestmark = pytest.mark.unit

LINE = re.compile(r"^Error: .+ \(.+\): .+$")


def _probe_app() -> typer.Typer:
    probe = typer.Typer(cls=ErrorBoundary)

    @probe.command("bad")
    def bad() -> None:
        raise ConfigError("--thing", "'x' is not a thing", "pass a thing")

    @probe.command("crash")
    def crash() -> None:
        raise KeyError("surprise")

    @probe.command("verdict")
    def verdict() -> None:
        raise typer.Exit(code=1)

    return probe


def test_config_error_is_one_line_naming_the_setting_and_the_fix() -> None:
    r = CliRunner().invoke(_probe_app(), ["bad"])
    assert r.exit_code == 2
    assert r.stderr.strip() == "Error: 'x' is not a thing (--thing): pass a thing"
    assert "Traceback" not in r.output


def test_crash_is_one_line_exit_3_and_the_traceback_is_in_the_log(state_home: Path) -> None:
    r = CliRunner().invoke(_probe_app(), ["crash"])
    assert r.exit_code == 3
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.output
    log = Path(lines[0].rsplit("the traceback is in ", 1)[1].split(";")[0])
    assert log.parent == state_home / "gpu-inference" / "logs"
    text = log.read_text()
    assert "Traceback" in text
    assert "KeyError: 'surprise'" in text


def test_verdict_failure_keeps_exit_1() -> None:
    assert CliRunner().invoke(_probe_app(), ["verdict"]).exit_code == 1


def test_usage_errors_keep_exit_2() -> None:
    r = CliRunner().invoke(app, ["local", "up", "--no-such-option"])
    assert r.exit_code == 2
    assert "No such option" in r.output


def test_tool_not_found_names_path_and_the_fix() -> None:
    line = error_line(ToolNotFoundError("kwokctl", "Run `make tools`."))
    assert LINE.match(line), line
    assert "(PATH)" in line
    assert line.endswith("Run `make tools`.")


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["local", "up", "--name", "Bad_Name"], "--name"),
        (["local", "down", "--name", "Bad_Name"], "--name"),
        (["local", "status", "--name", "../etc"], "--name"),
        (["local", "up", "--profile", "gpu"], "--profile"),
        (["local", "up", "--timing", "slow"], "--timing"),
        (["local", "up", "--time-scale", "0"], "--time-scale"),
        (["local", "up", "--set", "novalue"], "--set"),
    ],
)
def test_local_commands_with_bad_input_exit_2_without_traceback(argv: list[str], option: str) -> None:
    r = CliRunner().invoke(app, argv)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert LINE.match(lines[0]), lines[0]
    assert f"({option})" in lines[0]


def test_local_up_with_a_missing_values_file_names_it(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["local", "up", "--values", str(tmp_path / "nope.yaml")])
    assert r.exit_code == 2
    assert "(--values)" in r.stderr
    assert "nope.yaml" in r.stderr


def test_the_installed_command_prints_no_traceback(state_home: Path) -> None:
    """Through a real process, as a user runs it (stderr is not a terminal here)."""
    proc = subprocess.run(
        [sys.executable, "-m", "gpu_inference.cli.main", "local", "up", "--name", "Bad_Name"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"XDG_STATE_HOME": str(state_home), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("Error: ")
    assert "(--name)" in proc.stderr
