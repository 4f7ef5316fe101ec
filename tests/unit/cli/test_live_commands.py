"""The live EKS test's commands parse against the CLI as it is (the live test itself needs AWS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer

from gpu_inference.cli.main import app

pytestmark = pytest.mark.unit


def _live_commands(out: Path) -> dict[str, list[str]]:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "live" / "test_eks_live.py"
    spec = importlib.util.spec_from_file_location("eks_live", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    commands: dict[str, list[str]] = module.live_commands(out)
    return commands


@pytest.mark.parametrize("step", ["deploy", "calibrate", "verify", "destroy"])
def test_each_live_command_parses(step: str, tmp_path: Path) -> None:
    args = _live_commands(tmp_path)[step]
    group: Any = typer.main.get_command(app)
    ctx = group.make_context("gpu-inference", [args[0]], resilient_parsing=True)
    command = group.get_command(ctx, args[0])
    assert command is not None, f"no command {args[0]}"
    sub = command.make_context(args[0], list(args[1:]), parent=ctx)
    assert sub.params  # parsed into parameters, nothing left over
    if step == "verify":
        assert sub.params["eks"] is True
        assert sub.params["calibration"] == tmp_path / "calibrate" / "calibration.json"


def test_a_wrong_option_does_not_parse(tmp_path: Path) -> None:
    group: Any = typer.main.get_command(app)
    ctx = group.make_context("gpu-inference", ["verify-scaleup"], resilient_parsing=True)
    command = group.get_command(ctx, "verify-scaleup")
    assert command is not None
    with pytest.raises(Exception, match="no-such-option") as err:
        command.make_context("verify-scaleup", ["--eks", "--no-such-option"], parent=ctx)
    assert "UsageError" in [c.__name__ for c in type(err.value).__mro__]
