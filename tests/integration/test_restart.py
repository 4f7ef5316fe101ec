"""`local up` right after `local down` on the same ports: sockets the stopped servers left in
TIME_WAIT must not count as "already in use"."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gpu_inference.services.local.config import LocalClusterConfig

pytestmark = pytest.mark.timeout(600)

NAME = "gi-restart"
OFFSET = int(os.environ.get("GPU_INFERENCE_TEST_PORT_OFFSET", "0"))
PORTS = {
    "--front-door-port": 28100 + OFFSET,
    "--prometheus-port": 29190 + OFFSET,
    "--adapter-port": 26543 + OFFSET,
}


def _cli(*argv: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpu_inference.cli.main", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _time_wait_ports() -> set[int]:
    out = subprocess.run(["ss", "-tanH", "state", "time-wait"], capture_output=True, text=True, check=True)
    ports = set()
    for line in out.stdout.splitlines():
        fields = line.split()
        local = fields[2] if len(fields) >= 4 else fields[0]
        ports.add(int(local.rsplit(":", 1)[1]))
    return ports


def test_up_right_after_down_on_the_same_ports() -> None:
    up = ["local", "up", "--name", NAME, "--profile", "classic"]
    for flag, port in PORTS.items():
        up += [flag, str(port)]
    try:
        first = _cli(*up)
        assert first.returncode == 0, first.stderr[-3000:]
        # Traffic on the metric path, so the servers hold connections when they stop.
        status = _cli("local", "status", "--name", NAME, timeout=60)
        assert status.returncode == 0
        down = _cli("local", "down", "--name", NAME, timeout=200)
        assert down.returncode == 0, down.stderr[-3000:]
        lingering = _time_wait_ports() & set(PORTS.values())
        assert lingering, "no server port in TIME_WAIT after down: this test would not show the problem"
        again = _cli(*up)
        assert "already in use" not in again.stderr, again.stderr[-3000:]
        assert again.returncode == 0, again.stderr[-3000:]
    finally:
        _cli("local", "down", "--name", NAME, timeout=200)
    assert not LocalClusterConfig(name=NAME).workdir.exists()
