"""`local status/down` and `--local` use the settings `local up` saved; shared option groups."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from gpu_inference.cli import options
from gpu_inference.cli.main import app
from gpu_inference.services import local
from gpu_inference.services.local.cluster import LocalCluster
from gpu_inference.services.local.config import LocalClusterConfig

pytestmark = pytest.mark.unit


def _started(name: str, **settings: object) -> LocalClusterConfig:
    """What `local up` leaves before anything runs: saved settings and a kubeconfig."""
    cfg = LocalClusterConfig.from_options(name=name, **settings)
    cfg.save()
    (cfg.workdir / "kubeconfig").write_text("{}")
    return cfg


def test_status_reports_the_saved_ports_and_settings() -> None:
    _started("side", front_door_port=18100, prometheus_port=19190, adapter_port=16543, timing="eks")
    r = CliRunner().invoke(app, ["local", "status", "--name", "side"])
    assert r.exit_code == 0, r.output
    status = json.loads(r.stdout)
    assert status["endpoints"]["front_door_url"] == "http://127.0.0.1:18100"
    assert status["endpoints"]["prometheus_url"] == "http://127.0.0.1:19190"
    assert status["settings"]["timing"] == "eks"


def test_local_target_uses_the_saved_front_door(monkeypatch: pytest.MonkeyPatch) -> None:
    _started("side", front_door_port=18100, prometheus_port=19190, adapter_port=16543)
    _started("gpu-inference")  # another cluster on the default ports
    monkeypatch.setattr(LocalCluster, "hpa_name", lambda self: "gpu-inference")
    t = local.target("side")
    assert t.url == "http://127.0.0.1:18100"
    assert t.prometheus_url == "http://127.0.0.1:19190"


def test_down_removes_the_cluster_it_saved() -> None:
    cfg = _started("side", front_door_port=18100)
    r = CliRunner().invoke(app, ["local", "down", "--name", "side"])
    assert r.exit_code == 0, r.output
    assert not cfg.workdir.exists()


def test_up_refuses_a_running_cluster_with_other_settings() -> None:
    _started("side", front_door_port=18100)
    r = CliRunner().invoke(app, ["local", "up", "--name", "side", "--front-door-port", "18200"])
    assert r.exit_code == 2
    assert "already running with other settings" in r.stderr
    assert "local down --name side" in r.stderr


def _help(*argv: str) -> str:
    out = CliRunner().invoke(app, [*argv, "--help"], terminal_width=200).output
    return re.sub(r"\x1b\[[0-9;]*m", "", out)


def test_loadtest_and_verify_scaleup_show_the_same_option_groups() -> None:
    for command in ("loadtest", "verify-scaleup"):
        text = _help(command)
        for panel in (options.TARGET, options.LOAD, options.OUTPUT):
            assert f" {panel} " in text, f"{command} --help lacks the {panel} group"
        for flag in ("--target", "--local", "--prometheus-url", "--shape", "--peak-users", "--out"):
            assert flag in text


def test_local_up_help_lists_the_new_settings() -> None:
    text = _help("local", "up")
    for flag in ("--values", "--set", "--timing", "--time-scale", "--seed", "--profile"):
        assert flag in text
