"""Local clusters for the integration tests: the settings most of them share, and one way to bring a
cluster up fresh and always take it down (keeping its logs for a post-mortem when asked)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gpu_inference.services.local.cluster import LocalCluster
from gpu_inference.services.local.config import LocalClusterConfig

#: Shifts the test clusters' host ports, so two checkouts can test on one machine.
PORT_OFFSET = int(os.environ.get("GPU_INFERENCE_TEST_PORT_OFFSET", "0"))
#: Where clusters' logs are kept after the tests.
OUT = Path(__file__).resolve().parents[2] / "out"


def gpu_utilization_config(name: str, **settings: Any) -> LocalClusterConfig:
    """A cluster that follows the design's signal (GPU utilization) on the classic (one request at a
    time) server, with quick model loads, image pulls and scale-down; `settings` add to or override these."""
    defaults: dict[str, Any] = {
        "profile": "classic",
        "model_load_s": 8.0,
        "image_pull_s": 4.0,
        "scale_down_unneeded_s": 30.0,
        "scale_down_window_s": 45,
        "set_values": ("autoscaling.signals={gpuUtilization}",),
    }
    return LocalClusterConfig(name=name, **{**defaults, **settings})


def keep_logs(cluster: LocalCluster, logs: Path) -> None:
    """Copy the host processes' and the control plane's logs to logs/host and logs/control-plane,
    replacing those of an earlier run."""
    sources = {
        "host": cluster.workdir / "logs",
        "control-plane": cluster.workdir / "kwok" / "clusters" / cluster.cfg.name / "logs",
    }
    for name, src in sources.items():
        shutil.rmtree(logs / name, ignore_errors=True)
        if src.is_dir():
            shutil.copytree(src, logs / name, dirs_exist_ok=True)


@contextmanager
def running(cfg: LocalClusterConfig, logs: Path | None = None) -> Iterator[LocalCluster]:
    """The cluster of `cfg`, up (after removing leftovers of an interrupted run); on the way out, whatever
    happened, its logs are kept under `logs` (when given) and the cluster is taken down."""
    cluster = LocalCluster(cfg)
    cluster.down()  # leftovers of an interrupted run
    try:
        cluster.up()
        yield cluster
    finally:
        if logs is not None:
            keep_logs(cluster, logs)
        cluster.down()
