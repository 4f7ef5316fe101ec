"""Every value that can be wrong fails `helm template` with a message that names the setting and
the fix. `helm install` runs the same render and schema validation before it touches the cluster
(it needs one to reach that point, so the local-cluster tests cover install)."""

from __future__ import annotations

import pytest

from .conftest import NAMESPACE, render_error

pytestmark = pytest.mark.unit


def test_min_replicas_above_max(helm_binary: str) -> None:
    out = render_error(("autoscaling.minReplicas=5", "autoscaling.maxReplicas=2"))
    assert "autoscaling.minReplicas (5) > autoscaling.maxReplicas (2)" in out
    assert "Fix: set minReplicas <= maxReplicas" in out


@pytest.mark.parametrize("target", ["0", "91", "100"])
def test_gpu_target_outside_1_to_90_explains_the_tolerance(target: str, helm_binary: str) -> None:
    out = render_error((f"autoscaling.gpuUtilizationTarget={target}",))
    assert f"autoscaling.gpuUtilizationTarget={target} is outside 1-90" in out
    assert "tolerance 0.1" in out
    assert "can never scale up" in out
    assert "Fix: set autoscaling.gpuUtilizationTarget between 1 and 90" in out


def test_gpu_request_different_from_limit(helm_binary: str) -> None:
    out = render_error(("inference.resources.requests.nvidia\\.com/gpu=2",))
    assert 'inference.resources.requests["nvidia.com/gpu"]=2 differs from limits["nvidia.com/gpu"]=1' in out
    assert "Fix: set requests equal to limits" in out


@pytest.mark.parametrize("value", ["0.5", "500m"])
def test_fractional_gpu(value: str, helm_binary: str) -> None:
    out = render_error(
        (f"inference.resources.limits.nvidia\\.com/gpu={value}", "inference.resources.requests=null")
    )
    assert f'inference.resources.limits["nvidia.com/gpu"]={value} is not a whole number of GPUs' in out
    assert "Fix: set it to 1" in out


def test_missing_gpu_limit(helm_binary: str) -> None:
    out = render_error(("inference.resources.limits.nvidia\\.com/gpu=null",))
    assert 'inference.resources.limits["nvidia.com/gpu"] is missing' in out


def test_custom_preset_without_image(helm_binary: str) -> None:
    out = render_error(("inference.preset=custom",))
    assert "inference.image.repository is empty" in out
    assert "Fix: set inference.image.repository" in out


def test_image_without_tag_or_digest(helm_binary: str) -> None:
    out = render_error(("prometheus.image.tag=",))
    assert "prometheus.image.tag and prometheus.image.digest are both empty" in out
    assert "Fix: pin prometheus.image.tag" in out


def test_hpa_without_a_custom_metrics_adapter(helm_binary: str) -> None:
    out = render_error(("prometheus-adapter.enabled=false",))
    assert "autoscaling.enabled=true but no custom-metrics adapter is configured" in out
    assert "Fix: set prometheus-adapter.enabled=true" in out
    assert "autoscaling.externalMetricsAdapter=true" in out


def test_unknown_preset(helm_binary: str) -> None:
    out = render_error(("inference.preset=tgi",))
    assert 'inference.preset: unknown preset "tgi"' in out
    assert "Fix: set inference.preset to vllm or custom" in out


@pytest.mark.parametrize(
    ("setting", "where"),
    [
        ("autoscalng.enabled=false", "autoscalng"),  # top level
        ("autoscaling.minReplica=2", "minReplica"),  # parent chart, nested
        ("inference.presett=vllm", "presett"),  # subchart
        ("prometheus.retension=7d", "retension"),  # another subchart
    ],
)
def test_unknown_keys_are_typos(setting: str, where: str, helm_binary: str) -> None:
    out = render_error((setting,))
    assert "values don't meet the specifications of the schema" in out
    assert f"additional properties '{where}' not allowed" in out


def test_relist_shorter_than_scrape(helm_binary: str) -> None:
    out = render_error(("wiring.scrapeInterval=30s", "wiring.relistInterval=15s"))
    assert "wiring.relistInterval (15s) is shorter than wiring.scrapeInterval (30s)" in out
    assert "Fix: set relistInterval >= scrapeInterval" in out


def test_interval_that_is_not_a_duration(helm_binary: str) -> None:
    out = render_error(("wiring.relistInterval=soon",))
    assert 'wiring.relistInterval="soon" is not a duration' in out


def test_no_prometheus_and_no_url(helm_binary: str) -> None:
    out = render_error(("prometheus.enabled=false",))
    assert "wiring.prometheusUrl is empty while prometheus.enabled=false" in out
    assert "Fix: set wiring.prometheusUrl" in out


def test_replica_count_under_the_hpa(helm_binary: str) -> None:
    out = render_error(("inference.replicaCount=3",))
    assert "inference.replicaCount is set while autoscaling.enabled=true" in out


def test_queue_depth_without_a_queue_series(helm_binary: str) -> None:
    out = render_error(
        (
            "inference.preset=custom",
            "inference.image.repository=example/server",
            "inference.image.tag=1.0",
            "autoscaling.queueDepth.enabled=true",
        )
    )
    assert "autoscaling.queueDepth.enabled=true but no queue series is known" in out
    assert "Fix: set wiring.queueDepth.series" in out


def test_shared_model_cache_needs_read_write_many(helm_binary: str) -> None:
    out = render_error(
        ("inference.modelCache.type=pvc", "inference.modelCache.pvc.accessModes={ReadWriteOnce}")
    )
    assert "inference.modelCache.type=pvc needs accessModes [ReadWriteMany]" in out


def test_gpu_agents_in_the_release_namespace(helm_binary: str) -> None:
    out = render_error((f"dcgm-exporter.namespace={NAMESPACE}",))
    assert "must stay Pod Security restricted" in out


def test_hpa_with_chart_prometheus_but_no_gpu_source(helm_binary: str) -> None:
    out = render_error(("dcgm-exporter.enabled=false",))
    assert "dcgm-exporter.enabled=false and no wiring.dcgmExporter" in out


def test_adapter_existing_tls_secret_needs_its_ca(helm_binary: str) -> None:
    out = render_error(("prometheus-adapter.tls.existingSecret=adapter-cert",))
    assert "prometheus-adapter.tls.caBundle is empty" in out
