"""Integration tests against the local cluster: real kube-apiserver, controller manager,
scheduler, HPA, Prometheus and prometheus-adapter; SIMULATED nodes and GPUs.

One cluster per session; `local down` runs in teardown whatever happens in the tests.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from gpu_inference.services.local.cluster import LocalCluster

from .clusters import OUT, PORT_OFFSET, gpu_utilization_config, running

log = logging.getLogger(__name__)

CLUSTER_NAME = os.environ.get("GPU_INFERENCE_TEST_CLUSTER", "gi-integration")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    cfg = gpu_utilization_config(
        CLUSTER_NAME,
        front_door_port=28000 + PORT_OFFSET,
        prometheus_port=29090 + PORT_OFFSET,
        adapter_port=26443 + PORT_OFFSET,
    )
    # The host processes' and control plane's logs are kept for a post-mortem.
    with running(cfg, logs=OUT / "integration-logs") as cluster:
        yield cluster


@pytest.fixture(scope="session")
def kube_config(local_cluster: LocalCluster) -> str:
    """pytest-helm-charts' kube_cluster fixture connects through this kubeconfig."""
    return str(local_cluster.kubeconfig)


@pytest.fixture(scope="session")
def api(local_cluster: LocalCluster) -> client.ApiClient:
    return local_cluster._api()


@pytest.fixture(scope="session")
def llm_calibration(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """calibration.json of one SIMULATED llm replica at the default SLO (TTFT 2 s, TPOT 200 ms, 95 %),
    measured once for the session with the climb the demo runs (10 s steps: shorter steps build no
    queue and overstate the capacity, which leaves the demo's oracle too lean)."""
    from gpu_inference.adapters.openloop import OpenLoopOptions
    from gpu_inference.domain.requests import Slo
    from gpu_inference.services.loadtest.calibrate import CalibrationOptions
    from gpu_inference.services.loadtest.calibrate_sim import calibrate_simulated

    out = tmp_path_factory.mktemp("llm") / "calibration"
    options = CalibrationOptions.quick(0.95, OpenLoopOptions(), out)
    cal = calibrate_simulated("llm", Slo(ttft_s=2.0, tpot_s=0.2), options)
    assert cal.capacity_rps is not None, cal.table()
    return out.with_name(out.name + "-fine") / "calibration.json"
