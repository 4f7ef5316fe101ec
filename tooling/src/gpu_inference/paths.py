"""Where the project's files live: the chart, the eksctl config, the load tests."""

from __future__ import annotations

import os
from pathlib import Path

from gpu_inference.errors import ConfigError

_MARKER = Path("charts/gpu-inference/Chart.yaml")


def project_root() -> Path:
    """The checkout that holds charts/, eksctl/ and loadtest/.

    $GPU_INFERENCE_HOME wins; otherwise the nearest parent of the working directory
    or of this package that contains charts/gpu-inference/Chart.yaml.
    """
    env = os.environ.get("GPU_INFERENCE_HOME")
    if env:
        root = Path(env).resolve()
        if not (root / _MARKER).is_file():
            raise ConfigError("GPU_INFERENCE_HOME", f"{root} has no {_MARKER}", "point it at a checkout")
        return root
    for start in (Path.cwd().resolve(), Path(__file__).resolve()):
        for candidate in (start, *start.parents):
            if (candidate / _MARKER).is_file():
                return candidate
    raise ConfigError(
        "GPU_INFERENCE_HOME",
        "cannot find the project checkout (charts/gpu-inference/Chart.yaml)",
        "run from inside the checkout or set GPU_INFERENCE_HOME",
    )


def chart_dir() -> Path:
    return project_root() / "charts" / "gpu-inference"


def eksctl_config() -> Path:
    return project_root() / "eksctl" / "cluster.yaml"


def loadtest_dir() -> Path:
    return project_root() / "loadtest"


def state_dir() -> Path:
    """Per-user state (local clusters' pid files and logs), outside the checkout."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "gpu-inference"
