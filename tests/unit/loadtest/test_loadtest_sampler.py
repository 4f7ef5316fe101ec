"""The timeline sampler against recorded Prometheus answers and Kubernetes objects served over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import kubernetes_validate
import pytest
from loadtest_testkit import (
    HPA,
    NAMESPACE,
    ClusterBackend,
    ClusterState,
    RouteServer,
    gpu_node_name,
    load,
    pod_name,
)

from gpu_inference.adapters.kube import ClusterReader
from gpu_inference.adapters.locust import StatsHistoryReader, TokensReader
from gpu_inference.adapters.prometheus import Prometheus, PrometheusError
from gpu_inference.errors import ConfigError
from gpu_inference.services.loadtest.sampler import Sampler, per_pod_query

pytestmark = pytest.mark.unit


@contextmanager
def make_sampler(url: str, kubeconfig: Path, tmp_path: Path) -> Iterator[Sampler]:
    """A sampler of the fake cluster (Prometheus at `url`) and of locust's files in tmp_path; its
    clients are closed on the way out."""
    with closing(ClusterReader(kubeconfig, NAMESPACE, HPA)) as cluster, Prometheus(url, timeout_s=3) as prom:
        yield Sampler(
            namespace=NAMESPACE,
            load_started_at=0.0,
            prometheus=prom,
            cluster=cluster,
            hpa=cluster.hpa_spec("DCGM_FI_DEV_GPU_UTIL"),
            stats=StatsHistoryReader(tmp_path / "locust_stats_history.csv"),
            tokens=TokensReader(tmp_path / "tokens.jsonl"),
        )


def test_hpa_spec_is_read_from_the_hpa_object(kubeconfig: Path) -> None:
    with closing(ClusterReader(kubeconfig, NAMESPACE, HPA)) as cluster:
        spec = cluster.hpa_spec("DCGM_FI_DEV_GPU_UTIL")
    assert spec.target_value == 80
    assert (spec.min_replicas, spec.max_replicas) == (1, 4)
    assert (spec.target_kind, spec.target_name) == ("Deployment", "gpu-inference-inference")
    assert spec.scale_down_stabilization_s == 300


def test_hpa_without_the_metric_is_a_config_error(kubeconfig: Path) -> None:
    with (
        closing(ClusterReader(kubeconfig, NAMESPACE, HPA)) as cluster,
        pytest.raises(
            ConfigError, match=r"does not scale on vllm:num_requests_waiting.*Pods:DCGM_FI_DEV_GPU_UTIL"
        ),
    ):
        cluster.hpa_spec("vllm:num_requests_waiting")


def test_missing_hpa_names_the_option(kubeconfig: Path, backend: ClusterBackend) -> None:
    backend.hpa_missing = True
    with (
        closing(ClusterReader(kubeconfig, NAMESPACE, HPA)) as cluster,
        pytest.raises(ConfigError, match=r"--hpa.*HTTP 404"),
    ):
        cluster.hpa_spec("DCGM_FI_DEV_GPU_UTIL")


def test_a_sample_holds_every_source(
    backend_server: RouteServer,
    kubeconfig: Path,
    cluster_state: ClusterState,
    backend: ClusterBackend,
    tmp_path: Path,
) -> None:
    cluster_state.desired, cluster_state.current, cluster_state.ready = 3, 2, 1
    cluster_state.utils = [95.0, 85.0]
    cluster_state.gpu_nodes = 2
    cluster_state.hpa_value = "900m"
    (tmp_path / "locust_stats_history.csv").write_text(
        "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,95%,"
        "Total Request Count,Total Failure Count,"
        "Total Average Content Size\n"
        "100,4,,Aggregated,12.5,0.5,120,480,200,3,310.5\n"
    )
    with make_sampler(backend_server.url, kubeconfig, tmp_path) as sampler:
        s = sampler.sample("load", now=101.0)
    assert s.errors == []
    assert s.elapsed_s == 101.0
    assert s.phase == "load"
    assert [(g.pod, g.util, g.fb_used_mib, g.temp_c) for g in s.gpu] == [
        (pod_name(0), 95.0, 14000.0, 60.0),
        (pod_name(1), 85.0, 14001.0, 61.0),
    ]
    assert s.gpu_util_mean == 90.0
    assert s.hpa is not None
    assert (s.hpa.current_replicas, s.hpa.desired_replicas) == (2, 3)
    assert s.hpa.current_value == pytest.approx(0.9)
    assert [c.reason for c in s.hpa.conditions] == [
        "ReadyForNewScale",
        "ValidMetricFound",
        "DesiredWithinRange",
    ]
    assert s.workload is not None
    assert (s.workload.replicas, s.workload.ready_replicas) == (2, 1)
    assert [(p.name, p.ready, p.node) for p in s.pods] == [
        (pod_name(0), True, gpu_node_name(0)),
        (pod_name(1), False, gpu_node_name(1)),
    ]
    gpu = s.gpu_nodes
    assert [(n.instance_type, n.capacity_type, n.pool, n.gpus) for n in gpu] == [
        ("g4dn.xlarge", "ON_DEMAND", "gpu", 1)
    ] * 2
    system = [n for n in s.nodes if not n.is_gpu]
    assert [(n.instance_type, n.pool, n.gpus) for n in system] == [("m6i.large", "system", 0)]
    assert s.locust is not None
    assert (s.locust.users, s.locust.rps, s.locust.p95_ms) == (4, 12.5, 480.0)
    assert per_pod_query("DCGM_FI_DEV_GPU_UTIL", NAMESPACE) in backend.queries


def test_mean_utilization_only_counts_the_workloads_pods(
    backend_server: RouteServer, kubeconfig: Path, cluster_state: ClusterState, tmp_path: Path
) -> None:
    # Prometheus reports three pods; the workload has two: the third (another app's GPU) is left out.
    cluster_state.current = cluster_state.ready = 2
    cluster_state.utils = [90.0, 70.0, 0.0]
    with make_sampler(backend_server.url, kubeconfig, tmp_path) as sampler:
        s = sampler.sample("load", now=5.0)
    assert len(s.gpu) == 3
    assert s.gpu_util_mean == 80.0


def test_a_failing_source_leaves_a_gap_and_an_error(
    backend_server: RouteServer, kubeconfig: Path, backend: ClusterBackend, tmp_path: Path
) -> None:
    with make_sampler(backend_server.url, kubeconfig, tmp_path) as sampler:
        backend.prometheus_down = True
        backend.hpa_missing = True
        s = sampler.sample("load", now=5.0)
    assert s.gpu == []
    assert s.gpu_util_mean is None
    assert s.hpa is None
    assert any("Prometheus" in e and "503" in e for e in s.errors)
    assert any("HTTP 404" in e for e in s.errors)
    assert s.nodes  # the other sources still answered


def test_prometheus_adapter_reads_recorded_answers_and_errors(backend_server: RouteServer) -> None:
    with Prometheus(backend_server.url) as prom:
        prom.check()
        assert [s.value for s in prom.query(per_pod_query("DCGM_FI_DEV_GPU_UTIL", NAMESPACE))] == [30.0]
    with (
        Prometheus("http://127.0.0.1:9", timeout_s=2) as down,
        pytest.raises(PrometheusError, match="not reachable"),
    ):
        down.check()
    with pytest.raises(ConfigError, match="--prometheus-url"):
        Prometheus("localhost:9090")


@pytest.mark.parametrize(
    "name", ["hpa.json", "deployment.json", "pod.json", "node-gpu.json", "node-system.json"]
)
def test_recorded_kubernetes_objects_are_valid_for_1_36(name: str) -> None:
    kubernetes_validate.validate(load(name), "1.36", strict=True)
