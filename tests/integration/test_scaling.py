"""The whole loop under load: GPU utilization above target -> the real HPA raises replicas ->
pods wait Pending for a GPU -> the node group scaler adds GPU nodes -> pods become Ready ->
per-pod utilization falls; then load stops -> scale-down after the stabilisation window."""

from __future__ import annotations

import logging
import time

from kubernetes import client

from gpu_inference.services.local.cluster import LocalCluster

from .helpers import gpu_nodes, hpa, hpa_current_gpu, inference_pods, ready, wait_for_hpa, wait_until
from .load import Load

log = logging.getLogger(__name__)


def test_scale_up_then_down(api: client.ApiClient, local_cluster: LocalCluster) -> None:
    ns = local_cluster.cfg.namespace
    start_nodes = len(gpu_nodes(api))
    start_replicas = hpa(api, ns).status.current_replicas
    assert start_replicas == hpa(api, ns).spec.min_replicas
    t0 = time.monotonic()
    saw_pending = False
    with Load(local_cluster.endpoints.front_door_url, rate=9.0, max_seconds=300) as load:
        wait_until(
            "GPU utilization above the 80 % target",
            lambda: (u := hpa_current_gpu(hpa(api, ns))) is not None and u > 88,
            90,
        )
        h = wait_for_hpa(
            api,
            ns,
            "the HPA to raise desired replicas",
            lambda h: h.status.desired_replicas > start_replicas,
            90,
        )
        log.info("desired replicas %d after %.0fs", h.status.desired_replicas, time.monotonic() - t0)

        def pending_or_more_ready() -> bool:
            nonlocal saw_pending
            pods = inference_pods(api, ns)
            saw_pending = saw_pending or any(
                p.status.phase == "Pending" and not p.spec.node_name for p in pods
            )
            return sum(ready(p) for p in pods) > start_replicas

        wait_until("new replicas to become Ready", pending_or_more_ready, 150, interval_s=1)
        assert saw_pending, "new pods never waited for a GPU node"
        assert len(gpu_nodes(api)) > start_nodes, "no GPU node was added"
        peak = hpa(api, ns).status.current_replicas
        wait_until(
            "per-pod GPU utilization back within the target's tolerance at the new size",
            lambda: (u := hpa_current_gpu(hpa(api, ns))) is not None and u < 88,
            150,
        )
        log.info(
            "scaled to %d replicas in %.0fs; load ok=%d errors=%d",
            peak,
            time.monotonic() - t0,
            load.stats.ok,
            load.stats.errors,
        )
    assert load.stats.ok > 0
    assert load.stats.errors <= 0.01 * (load.stats.ok + load.stats.errors), load.stats
    # Load gone: the HPA scales down after its stabilisation window, then nodes go.
    wait_until(
        "replicas back to the minimum",
        lambda: hpa(api, ns).status.current_replicas == hpa(api, ns).spec.min_replicas,
        240,
        interval_s=5,
    )
    wait_until(
        "GPU nodes back to the node group minimum",
        lambda: len(gpu_nodes(api)) == start_nodes,
        120,
        interval_s=5,
    )
