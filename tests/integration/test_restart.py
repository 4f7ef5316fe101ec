"""`local up` right after `local down` on the same ports: sockets the stopped servers left in
TIME_WAIT must not count as "already in use"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from gpu_inference.services.local.cluster import LocalCluster
from gpu_inference.services.local.config import LocalClusterConfig

from .clusters import PORT_OFFSET

pytestmark = pytest.mark.timeout(600)

NAME = "gi-restart"
PORTS = {
    "--front-door-port": 28100 + PORT_OFFSET,
    "--prometheus-port": 29190 + PORT_OFFSET,
    "--adapter-port": 26543 + PORT_OFFSET,
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


def _hpa_bounds() -> tuple[int, int]:
    cluster = LocalCluster.named(NAME)
    hpas = client.AutoscalingV2Api(cluster._api()).list_namespaced_horizontal_pod_autoscaler(
        cluster.cfg.namespace
    )
    h = hpas.items[0]
    return int(h.spec.min_replicas), int(h.spec.max_replicas)


def test_up_right_after_down_on_the_same_ports(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("autoscaling:\n  minReplicas: 1\n  maxReplicas: 2\n")
    up = ["local", "up", "--name", NAME, "--profile", "auto", "--values", str(values)]
    up += ["--set", "autoscaling.maxReplicas=3"]
    for flag, port in PORTS.items():
        up += [flag, str(port)]
    try:
        first = _cli(*up)
        assert first.returncode == 0, first.stderr[-3000:]
        # The user's file and --set went over the overlay as helm merges them (--set last).
        assert _hpa_bounds() == (1, 3)
        saved = LocalClusterConfig.saved(NAME)
        assert saved is not None
        assert saved.values_files == (values.resolve(),)
        assert saved.set_values == ("autoscaling.maxReplicas=3",)
        assert saved.profile == "llm", "auto did not follow the chart's vllm preset"
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
