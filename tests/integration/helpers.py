"""Polling helpers that read the cluster the way a person would with kubectl."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from kubernetes import client
from kubernetes.utils import parse_quantity

T = TypeVar("T")


def wait_until(what: str, fn: Callable[[], T | None], timeout_s: float, interval_s: float = 2.0) -> T:
    """Poll `fn` until it returns something truthy; fail with `what` and the last value."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}; last value: {last!r}")


def hpa(api: client.ApiClient, namespace: str) -> client.V2HorizontalPodAutoscaler:
    items = client.AutoscalingV2Api(api).list_namespaced_horizontal_pod_autoscaler(namespace).items
    assert len(items) == 1, f"expected one HPA in {namespace}, found {[i.metadata.name for i in items]}"
    return items[0]


def hpa_condition(
    h: client.V2HorizontalPodAutoscaler, ctype: str
) -> client.V2HorizontalPodAutoscalerCondition | None:
    for c in h.status.conditions or []:
        if c.type == ctype:
            return c
    return None


def hpa_current_gpu(
    h: client.V2HorizontalPodAutoscaler, metric: str = "DCGM_FI_DEV_GPU_UTIL"
) -> float | None:
    for m in h.status.current_metrics or []:
        if m.type == "Pods" and m.pods.metric.name == metric:
            q = m.pods.current.average_value
            return float(parse_quantity(q))
    return None


def inference_pods(api: client.ApiClient, namespace: str) -> list[client.V1Pod]:
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace).items
    return [
        p
        for p in pods
        if (p.metadata.labels or {}).get("app.kubernetes.io/name") == "inference"
        and not p.metadata.deletion_timestamp
    ]


def ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def gpu_nodes(api: client.ApiClient) -> list[client.V1Node]:
    nodes = client.CoreV1Api(api).list_node(label_selector="gpu-inference.io/node-pool=gpu").items
    return [n for n in nodes if not n.metadata.deletion_timestamp]


def wait_for_hpa(
    api: client.ApiClient,
    namespace: str,
    what: str,
    predicate: Callable[[client.V2HorizontalPodAutoscaler], bool],
    timeout_s: float,
) -> client.V2HorizontalPodAutoscaler:
    """Poll the HPA until `predicate` holds; returns that HPA."""

    def check() -> client.V2HorizontalPodAutoscaler | None:
        h = hpa(api, namespace)
        return h if predicate(h) else None

    return wait_until(what, check, timeout_s)
