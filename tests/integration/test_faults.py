"""Faults: the metric path breaks and heals; a GPU node disappears."""

from __future__ import annotations

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


def _metric_missing(h: client.V2HorizontalPodAutoscaler) -> bool:
    c = hpa_condition(h, "ScalingActive")
    return c is not None and c.status == "False" and c.reason == "FailedGetPodsMetric"


def test_prometheus_stopped_hpa_holds_and_reports_then_recovers(
    api: client.ApiClient, local_cluster: LocalCluster
) -> None:
    ns = local_cluster.cfg.namespace
    before = hpa(api, ns).status.current_replicas
    configs = local_cluster.host_configs()
    hostprocs.stop(local_cluster.workdir, "prometheus")
    try:
        h = wait_for_hpa(api, ns, "the HPA to report the metric missing", _metric_missing, 120)
        assert h.status.current_replicas == before, "the HPA changed replicas without a metric"
    finally:
        local_cluster.start_prometheus(configs)
    wait_for_hpa(
        api,
        ns,
        "the HPA to read the GPU metric again",
        lambda h: not _metric_missing(h) and hpa_current_gpu(h) is not None,
        150,
    )


def test_adapter_restart_recovers(api: client.ApiClient, local_cluster: LocalCluster) -> None:
    ns = local_cluster.cfg.namespace
    configs = local_cluster.host_configs()
    hostprocs.stop(local_cluster.workdir, "prometheus-adapter")
    local_cluster.start_adapter(configs)

    def metric_values() -> dict[str, float] | None:
        try:
            return local_cluster.custom_metric()
        except LocalClusterError:  # 503 while the adapter starts and relists
            return None

    values = wait_until("the custom metrics API to answer again", metric_values, 90)
    assert set(values) >= {p.metadata.name for p in inference_pods(api, ns) if ready(p)}


def test_gpu_node_deleted_pod_is_rescheduled(api: client.ApiClient, local_cluster: LocalCluster) -> None:
    ns = local_cluster.cfg.namespace
    core = client.CoreV1Api(api)
    pods = [p for p in inference_pods(api, ns) if ready(p)]
    assert pods
    victim = pods[0]
    node = victim.spec.node_name
    core.delete_node(node)
    # The pod on the lost node goes; the Deployment replaces it; a new GPU node is provisioned.
    wait_until(
        "a replacement inference pod Ready on another node",
        lambda: [
            p
            for p in inference_pods(api, ns)
            if ready(p) and p.metadata.name != victim.metadata.name and p.spec.node_name != node
        ],
        180,
    )
    assert node not in {n.metadata.name for n in gpu_nodes(api)}
