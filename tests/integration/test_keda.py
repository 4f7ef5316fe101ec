"""The chart's KEDA engine against real KEDA v2.21.0 on the local cluster (`local up --autoscaler
keda`): KEDA's operator and metrics API server run as host processes, the operator reads the
chart's Prometheus trigger from the host Prometheus, the real HPA controller reads the external
metric through the aggregator, and the HPA KEDA made (keda-hpa-<name>) scales the inference
Deployment up under load. GPUs and nodes are SIMULATED, as in every local-cluster test.

Own cluster (not the session's), on its own name and ports; skipped when KEDA is not built, since
building it takes about 17 minutes (`make keda`).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.utils import parse_quantity

from gpu_inference.errors import ConfigError
from gpu_inference.services.local import keda
from gpu_inference.services.local.cluster import LocalCluster

from .clusters import OUT, PORT_OFFSET, gpu_utilization_config, running
from .helpers import gpu_nodes, inference_pods, ready, wait_until
from .load import Load

log = logging.getLogger(__name__)
pytestmark = pytest.mark.integration

NAME = "gi-keda"
LOGS = OUT / "integration-logs-keda"


@pytest.fixture(scope="module")
def keda_cluster() -> Iterator[LocalCluster]:
    try:
        keda.binaries()
    except ConfigError as exc:
        pytest.skip(f"{exc.problem}: run `make keda` (about 17 min cold) to run the KEDA test")
    # Ports apart from the defaults (18000/19090/16443) and the session cluster's (28000/...).
    cfg = gpu_utilization_config(
        NAME,
        autoscaler="keda",
        front_door_port=21000 + PORT_OFFSET,
        prometheus_port=21090 + PORT_OFFSET,
        adapter_port=21443 + PORT_OFFSET,
        keda_grpc_port=21666 + PORT_OFFSET,
    )
    with running(cfg, logs=LOGS) as cluster:
        yield cluster


def _so(cluster: LocalCluster) -> dict[str, Any]:
    objs = cluster.local_keda.scaledobjects(
        cluster.cfg.namespace, f"app.kubernetes.io/instance={cluster.cfg.release}"
    )
    assert len(objs) == 1, f"expected the chart's one ScaledObject, found {len(objs)}"
    return objs[0]


def _hpa(api: client.ApiClient, namespace: str, name: str) -> client.V2HorizontalPodAutoscaler:
    return client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler(name, namespace)


def _hpa_average(h: client.V2HorizontalPodAutoscaler, metric: str) -> float | None:
    for m in h.status.current_metrics or []:
        if m.type == "External" and m.external.metric.name == metric:
            return float(parse_quantity(m.external.current.average_value))
    return None


def _prometheus(server: str, query: str) -> float:
    """The trigger's query, asked of the trigger's Prometheus directly (empty result: 0, as
    ignoreNullValues has KEDA read it)."""
    assert server.startswith("http://127.0.0.1:"), server
    url = f"{server}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        result = json.load(resp)["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def test_keda_hpa_scales_the_deployment_from_the_prometheus_trigger(keda_cluster: LocalCluster) -> None:
    cluster = keda_cluster
    ns = cluster.cfg.namespace
    api = cluster._api()
    so = _so(cluster)
    so_name = so["metadata"]["name"]
    trigger = so["spec"]["triggers"][0]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["serverAddress"] == cluster.endpoints.prometheus_url
    threshold = float(trigger["metadata"]["threshold"])

    # The HPA is KEDA's, not the chart's: named keda-hpa-<ScaledObject>, owned by the ScaledObject,
    # on the chart's inference Deployment, with the trigger as an External metric.
    hpas = client.AutoscalingV2Api(api).list_namespaced_horizontal_pod_autoscaler(ns).items
    assert [h.metadata.name for h in hpas] == [f"keda-hpa-{so_name}"]
    hpa_name = hpas[0].metadata.name
    h = hpas[0]
    assert [(o.kind, o.name) for o in h.metadata.owner_references] == [("ScaledObject", so_name)]
    assert (h.spec.scale_target_ref.kind, h.spec.scale_target_ref.name) == (
        "Deployment",
        so["spec"]["scaleTargetRef"]["name"],
    )
    metric = h.spec.metrics[0].external.metric.name
    assert h.spec.metrics[0].type == "External"
    assert metric == "s0-prometheus"
    assert float(parse_quantity(h.spec.metrics[0].external.target.average_value)) == threshold
    start_replicas = h.spec.min_replicas
    deployment = so["spec"]["scaleTargetRef"]["name"]
    apps = client.AppsV1Api(api)
    assert apps.read_namespaced_deployment(deployment, ns).spec.replicas == start_replicas
    start_nodes = len(gpu_nodes(api))

    t0 = time.monotonic()
    marks: dict[str, float] = {}
    with Load(cluster.endpoints.front_door_url, rate=9.0, max_seconds=300) as load:
        # KEDA's value is the trigger's query on the trigger's Prometheus: read both at once.
        def same_value() -> tuple[float, float] | None:
            served = cluster.local_keda.external_metric(ns, metric, so_name)
            value = float(parse_quantity(served[0]["value"]))
            direct = _prometheus(trigger["metadata"]["serverAddress"], trigger["metadata"]["query"])
            return (value, direct) if value > 0 and abs(value - direct) <= max(1.0, 0.02 * direct) else None

        served, direct = wait_until("KEDA's external metric equal to the trigger's PromQL", same_value, 90)
        log.info("external metric %s = %.1f, Prometheus query = %.1f", metric, served, direct)
        wait_until(
            f"the HPA's average above the {threshold:g} target",
            lambda: (a := _hpa_average(_hpa(api, ns, hpa_name), metric)) is not None and a > threshold * 1.1,
            120,
        )
        marks["hpa_above_target_s"] = time.monotonic() - t0
        h = wait_until(
            "KEDA's HPA to raise desired replicas",
            lambda: (x := _hpa(api, ns, hpa_name)).status.desired_replicas > start_replicas and x,
            90,
        )
        marks["desired_raised_s"] = time.monotonic() - t0
        log.info("desired replicas %d after %.0fs", h.status.desired_replicas, marks["desired_raised_s"])
        wait_until(
            "the Deployment's replicas raised by KEDA's HPA",
            lambda: (apps.read_namespaced_deployment(deployment, ns).spec.replicas or 0) > start_replicas,
            30,
            interval_s=1,
        )
        wait_until(
            "new replicas Ready",
            lambda: sum(ready(p) for p in inference_pods(api, ns)) > start_replicas,
            150,
            interval_s=1,
        )
        marks["more_ready_s"] = time.monotonic() - t0
        assert len(gpu_nodes(api)) > start_nodes, "no GPU node was added for the new replicas"
        final = _hpa(api, ns, hpa_name)
        marks["replicas"] = float(final.status.current_replicas)
        marks["desired"] = float(final.status.desired_replicas)
    assert load.stats.ok > 0
    assert load.stats.errors <= 0.01 * (load.stats.ok + load.stats.errors), load.stats
    # Nothing fell back: the replicas came from the metric, not from KEDA's fallback replicas.
    status = _so(cluster)["status"]
    assert status["health"][metric]["status"] == "Happy", status["health"]
    fallback = [c for c in status["conditions"] if c["type"] == "Fallback"]
    assert fallback, status["conditions"]
    assert fallback[0]["status"] == "False", fallback
    LOGS.mkdir(parents=True, exist_ok=True)
    (LOGS / "timings.json").write_text(json.dumps(marks, indent=2) + "\n")
    log.info("KEDA scale-up timings (SIMULATED GPUs): %s", marks)
