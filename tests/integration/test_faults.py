"""Faults under load: the metric path breaks and heals, a GPU node disappears, a node fails to
provision. Each test starts from the minimum size and drives real load through the front door."""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from typing import Any

import pytest
from kubernetes import client

from gpu_inference.services.local import hostprocs
from gpu_inference.services.local.cluster import LocalCluster, LocalClusterError

from .helpers import (
    gpu_nodes,
    hpa,
    hpa_condition,
    hpa_current_gpu,
    inference_pods,
    ready,
    wait_for_hpa,
    wait_until,
)
from .load import Load

log = logging.getLogger(__name__)
pytestmark = pytest.mark.timeout(600)

#: Completions per second that keep one simulated T4 above the 80 % target (as in test_scaling).
ABOVE_TARGET_RATE = 9.0
#: A rate one replica serves below the target.
BELOW_TARGET_RATE = 3.0


def _metric_missing(h: client.V2HorizontalPodAutoscaler) -> bool:
    c = hpa_condition(h, "ScalingActive")
    return c is not None and c.status == "False" and c.reason == "FailedGetPodsMetric"


def _metric_flowing(h: client.V2HorizontalPodAutoscaler) -> bool:
    c = hpa_condition(h, "ScalingActive")
    return c is not None and c.status == "True" and hpa_current_gpu(h) is not None


def _target(h: client.V2HorizontalPodAutoscaler) -> float:
    from kubernetes.utils import parse_quantity

    return float(parse_quantity(h.spec.metrics[0].pods.target.average_value))


def _sim_status(cluster: LocalCluster) -> dict[str, Any]:
    with urllib.request.urlopen(f"{cluster.endpoints.front_door_url}/sim/status", timeout=5) as resp:
        data: dict[str, Any] = json.loads(resp.read())
    return data


def _simulated_util(cluster: LocalCluster) -> list[float]:
    """GPU utilization of the GPUs that hold an inference pod, read from the simulator itself
    (the same numbers the DCGM exporter pods serve), independent of Prometheus."""
    return [float(g["util_pct"]) for g in _sim_status(cluster).get("gpus", []) if g.get("pod")]


def _settle(api: client.ApiClient, cluster: LocalCluster) -> int:
    """Wait for the minimum size (replicas, GPU nodes) and a flowing metric; returns min replicas."""
    ns = cluster.cfg.namespace
    minimum = int(hpa(api, ns).spec.min_replicas)
    gpu_min = next(g.min_size for g in cluster_spec(cluster).node_groups if g.name == "gpu")

    def at_minimum() -> bool:
        h = hpa(api, ns)
        pods = inference_pods(api, ns)
        return (
            h.status.current_replicas == minimum
            and h.status.desired_replicas == minimum
            and len(pods) == minimum
            and all(ready(p) for p in pods)
            and len(gpu_nodes(api)) == gpu_min
            and _metric_flowing(h)
        )

    wait_until("the cluster back at its minimum size with the metric flowing", at_minimum, 300, 5)
    return minimum


@pytest.fixture(scope="module", autouse=True)
def _leave_at_minimum(api: client.ApiClient, local_cluster: LocalCluster) -> Any:
    """Later tests start from the minimum size: wait for it after the last fault."""
    yield
    _settle(api, local_cluster)


def cluster_spec(cluster: LocalCluster) -> Any:
    from gpu_inference.domain.cluster_spec import load_cluster_spec

    return load_cluster_spec(cluster.cfg.eksctl_config)


def test_prometheus_down_above_target_hpa_holds_then_scales_when_it_returns(
    api: client.ApiClient, local_cluster: LocalCluster
) -> None:
    ns = local_cluster.cfg.namespace
    start = _settle(api, local_cluster)
    target = _target(hpa(api, ns))
    configs = local_cluster.host_configs()
    hostprocs.stop(local_cluster.workdir, "prometheus")
    try:
        with Load(local_cluster.endpoints.front_door_url, rate=ABOVE_TARGET_RATE, max_seconds=240):
            wait_until(
                f"simulated GPU utilization above the {target:.0f} % target",
                lambda: (u := _simulated_util(local_cluster)) and min(u) > target * 1.1,
                90,
            )
            h = wait_for_hpa(api, ns, "the HPA to report the metric missing", _metric_missing, 120)
            # Hold for three HPA syncs with the GPU busy: no replica may be added or removed.
            deadline = time.monotonic() + 3 * local_cluster.cfg.hpa_sync_period_s
            while time.monotonic() < deadline:
                h = hpa(api, ns)
                assert _metric_missing(h), h.status.conditions
                assert (h.status.current_replicas, h.status.desired_replicas) == (start, start), (
                    "the HPA acted without its metric"
                )
                assert max(_simulated_util(local_cluster)) > target, "the load stopped being above target"
                time.sleep(3)
            assert len(inference_pods(api, ns)) == start
            local_cluster.start_prometheus(configs)
            # The metric returns while the load is still on: now the HPA scales up.
            wait_for_hpa(
                api,
                ns,
                "the HPA to scale up once the metric is back",
                lambda h: _metric_flowing(h) and h.status.desired_replicas > start,
                180,
            )
    finally:
        if not hostprocs.running(local_cluster.workdir, "prometheus"):
            local_cluster.start_prometheus(configs)


def test_adapter_restart_during_scale_up_completes_the_scale_up(
    api: client.ApiClient, local_cluster: LocalCluster
) -> None:
    ns = local_cluster.cfg.namespace
    start = _settle(api, local_cluster)
    configs = local_cluster.host_configs()
    with Load(local_cluster.endpoints.front_door_url, rate=ABOVE_TARGET_RATE, max_seconds=300) as load:
        h = wait_for_hpa(
            api, ns, "the HPA to start a scale-up", lambda h: h.status.desired_replicas > start, 150
        )
        asked = h.status.desired_replicas
        hostprocs.stop(local_cluster.workdir, "prometheus-adapter")
        try:
            time.sleep(local_cluster.cfg.hpa_sync_period_s)  # at least one HPA sync without the adapter
            h = hpa(api, ns)
            assert h.status.desired_replicas >= asked, "replicas went down while the adapter was away"
        finally:
            local_cluster.start_adapter(configs)

        def metric_values() -> dict[str, float] | None:
            try:
                return local_cluster.custom_metric()
            except LocalClusterError:  # 503 while the adapter starts and relists
                return None

        wait_until("the custom metrics API to answer again", metric_values, 90)
        wait_until(
            "the new replicas Ready",
            lambda: sum(ready(p) for p in inference_pods(api, ns)) >= asked,
            180,
        )
        h = wait_for_hpa(api, ns, "the HPA to read the metric again", _metric_flowing, 120)
        assert h.status.current_replicas >= asked
    assert load.stats.ok > 0


def test_gpu_node_lost_under_load_pod_replaced_and_service_resumes(
    api: client.ApiClient, local_cluster: LocalCluster
) -> None:
    ns = local_cluster.cfg.namespace
    _settle(api, local_cluster)
    core = client.CoreV1Api(api)
    with Load(local_cluster.endpoints.front_door_url, rate=BELOW_TARGET_RATE, max_seconds=300) as load:
        wait_until("some completions served", lambda: load.stats.ok >= 10, 60, 1)
        victim = next(p for p in inference_pods(api, ns) if ready(p))
        node = victim.spec.node_name
        lost_at = time.monotonic()
        core.delete_node(node)
        replacement = wait_until(
            "a replacement inference pod Ready on another node",
            lambda: [
                p
                for p in inference_pods(api, ns)
                if ready(p) and p.metadata.name != victim.metadata.name and p.spec.node_name != node
            ],
            240,
        )
        served = load.stats.ok
        wait_until("completions served again after the loss", lambda: load.stats.ok >= served + 10, 60, 1)
        log.info(
            "node %s lost: %s Ready on %s after %.0fs; load ok=%d errors=%d",
            node,
            replacement[0].metadata.name,
            replacement[0].spec.node_name,
            time.monotonic() - lost_at,
            load.stats.ok,
            load.stats.errors,
        )
    assert node not in {n.metadata.name for n in gpu_nodes(api)}


def test_node_that_fails_to_provision_is_given_up_and_replaced(
    api: client.ApiClient, local_cluster: LocalCluster
) -> None:
    ns = local_cluster.cfg.namespace
    start = _settle(api, local_cluster)
    start_nodes = len(gpu_nodes(api))
    status_file = local_cluster.node_scaler_status

    def failed() -> int:
        try:
            return int(json.loads(status_file.read_text())["failed_provisions"])
        except (OSError, ValueError, KeyError):
            return 0

    failed_before = failed()
    local_cluster.node_scaler_faults.write_text(json.dumps({"fail_provisions": 1}))
    with Load(local_cluster.endpoints.front_door_url, rate=ABOVE_TARGET_RATE, max_seconds=300):
        wait_for_hpa(api, ns, "the HPA to start a scale-up", lambda h: h.status.desired_replicas > start, 150)
        wait_until(
            "a new inference pod Pending for a GPU node",
            lambda: any(
                p.status.phase == "Pending" and not p.spec.node_name for p in inference_pods(api, ns)
            ),
            60,
            1,
        )
        pending_at = time.monotonic()
        wait_until("the scaler to give up on the failed node", lambda: failed() > failed_before, 120, 1)
        gave_up_after = time.monotonic() - pending_at
        assert len(gpu_nodes(api)) == start_nodes, "the failed node joined the cluster"
        assert not local_cluster.node_scaler_faults.exists(), "the scaler never read the fault"
        wait_until(
            "the pending replica Ready on a node provisioned after the failure",
            lambda: sum(ready(p) for p in inference_pods(api, ns)) > start,
            180,
        )
        assert len(gpu_nodes(api)) > start_nodes
    log.info("failed node given up after %.0fs", gave_up_after)
