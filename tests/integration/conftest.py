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
        # These tests follow the design's signal on the classic (one request at a time) server.
        profile="classic",
        set_values=("autoscaling.signals={gpuUtilization}",),
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


@pytest.fixture(scope="session")
def llm_calibration(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """calibration.json of one SIMULATED llm replica at the default SLO (TTFT 2 s, TPOT 200 ms, 95 %),
    measured once for the session: a doubling climb from 4 req/s in 6 s steps, then finer steps."""
    from gpu_inference.adapters.openloop import OpenLoopOptions
    from gpu_inference.domain.requests import Slo
    from gpu_inference.services.loadtest.calibrate import CalibrationOptions
    from gpu_inference.services.loadtest.calibrate_sim import calibrate_simulated

    out = tmp_path_factory.mktemp("llm") / "calibration"
    options = CalibrationOptions(
        start_rate=4,
        growth=2,
        step_s=6,
        min_requests=20,
        cooldown_s=1,
        target_attainment=0.95,
        request=OpenLoopOptions(prompt_tokens=128, max_tokens=64, max_in_flight=1024),
        out_dir=out,
    )
    cal = calibrate_simulated("llm", Slo(ttft_s=2.0, tpot_s=0.2), options)
    assert cal.capacity_rps is not None, cal.table()
    return out.with_name(out.name + "-fine") / "calibration.json"
