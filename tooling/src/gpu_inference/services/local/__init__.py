"""The local cluster: real control plane, simulated GPU nodes and GPUs (see cluster.py)."""

from __future__ import annotations

from typing import Any


def target(name: str = "gpu-inference") -> Any:
    """The load-test target of a running local cluster (front door, Prometheus, kubeconfig), from the
    settings its `local up` saved."""
    from gpu_inference.errors import ConfigError
    from gpu_inference.services.local.cluster import LocalCluster

    cluster = LocalCluster.named(name)  # the ports and names `local up` saved
    if not cluster.exists():
        raise ConfigError(
            "--local", f"no local cluster named {name!r} is running", "run `gpu-inference local up` first"
        )
    return cluster.target()
