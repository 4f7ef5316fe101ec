"""Integration tests against the local cluster: real kube-apiserver, controller manager,
scheduler, HPA, Prometheus and prometheus-adapter; SIMULATED nodes and GPUs.

One cluster per session; `local down` runs in teardown whatever happens in the tests.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from gpu_inference.services.local.cluster import LocalCluster
from gpu_inference.services.local.config import LocalClusterConfig

log = logging.getLogger(__name__)

CLUSTER_NAME = os.environ.get("GPU_INFERENCE_TEST_CLUSTER", "gi-integration")
#: Shifts the session cluster's host ports, so two checkouts can test on one machine.
PORT_OFFSET = int(os.environ.get("GPU_INFERENCE_TEST_PORT_OFFSET", "0"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    cfg = LocalClusterConfig(
        name=CLUSTER_NAME,
        front_door_port=28000 + PORT_OFFSET,
        prometheus_port=29090 + PORT_OFFSET,
        adapter_port=26443 + PORT_OFFSET,
        model_load_s=8.0,
        image_pull_s=4.0,
        scale_down_unneeded_s=30.0,
        scale_down_window_s=45,
    )
    cluster = LocalCluster(cfg)
    cluster.down()  # leftovers of an interrupted run
    try:
        cluster.up()
        yield cluster
    finally:
        # Keep the host processes' and control plane's logs for a post-mortem, then remove all.
        logs = Path(__file__).resolve().parents[2] / "out" / "integration-logs"
        shutil.rmtree(logs, ignore_errors=True)
        sources = {
            "host": cluster.workdir / "logs",
            "control-plane": cluster.workdir / "kwok" / "clusters" / CLUSTER_NAME / "logs",
        }
        for name, src in sources.items():
            if src.is_dir():
                shutil.copytree(src, logs / name, dirs_exist_ok=True)
        cluster.down()


@pytest.fixture(scope="session")
def kube_config(local_cluster: LocalCluster) -> str:
    """pytest-helm-charts' kube_cluster fixture connects through this kubeconfig."""
    return str(local_cluster.kubeconfig)


@pytest.fixture(scope="session")
def api(local_cluster: LocalCluster) -> client.ApiClient:
    return local_cluster._api()
