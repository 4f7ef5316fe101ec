"""Every value that can be wrong fails `helm template` with a message that names the setting and
the fix. `helm install` runs the same render and schema validation before it touches the cluster
(it needs one to reach that point, so the local-cluster tests cover install)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import NAMESPACE, render_error

pytestmark = pytest.mark.unit


def bad(case_id: str, sets: tuple[str, ...], *messages: str) -> Any:
    """One case of BAD_VALUES: its id, the --set values, then what the error must say (every fragment
    must appear)."""
    return pytest.param(sets, messages, id=case_id)


BAD_VALUES = [
    bad(
        "min_replicas_above_max",
        ("autoscaling.minReplicas=5", "autoscaling.maxReplicas=2"),
        "autoscaling.minReplicas (5) > autoscaling.maxReplicas (2)",
        "Fix: set minReplicas <= maxReplicas",
    ),
    bad(
        "gpu_request_different_from_limit",
        ("inference.resources.requests.nvidia\\.com/gpu=2",),
        'inference.resources.requests["nvidia.com/gpu"]=2 differs from limits["nvidia.com/gpu"]=1',
        "Fix: set requests equal to limits",
    ),
    bad(
        "missing_gpu_limit",
        ("inference.resources.limits.nvidia\\.com/gpu=null",),
        'inference.resources.limits["nvidia.com/gpu"] is missing',
    ),
    bad(
        "custom_preset_without_image",
        ("inference.preset=custom",),
        "inference.image.repository is empty",
        "Fix: set inference.image.repository",
    ),
    bad(
        "image_without_tag_or_digest",
        ("prometheus.image.tag=",),
        "prometheus.image.tag and prometheus.image.digest are both empty",
        "Fix: pin prometheus.image.tag",
    ),
    bad(
        "hpa_without_a_custom_metrics_adapter",
        ("prometheus-adapter.enabled=false",),
        "autoscaling.enabled=true but no custom-metrics adapter is configured",
        "Fix: set prometheus-adapter.enabled=true",
        "autoscaling.externalMetricsAdapter=true",
    ),
    bad(
        "unknown_preset",
        ("inference.preset=tgi",),
        'inference.preset: unknown preset "tgi"',
        "Fix: set inference.preset to vllm or custom",
    ),
    bad(
        "relist_shorter_than_scrape",
        ("wiring.scrapeInterval=30s", "wiring.relistInterval=15s"),
        "wiring.relistInterval (15s) is shorter than wiring.scrapeInterval (30s)",
        "Fix: set relistInterval >= scrapeInterval",
    ),
    bad(
        "interval_that_is_not_a_duration",
        ("wiring.relistInterval=soon",),
        'wiring.relistInterval="soon" is not a duration',
    ),
    bad(
        "no_prometheus_and_no_url",
        ("prometheus.enabled=false",),
        "wiring.prometheusUrl is empty while prometheus.enabled=false",
        "Fix: set wiring.prometheusUrl",
    ),
    bad(
        "replica_count_under_the_hpa",
        ("inference.replicaCount=3",),
        "inference.replicaCount is set while autoscaling.enabled=true",
    ),
    bad(
        "queue_depth_without_a_queue_series",
        (
            "inference.preset=custom",
            "inference.image.repository=example/server",
            "inference.image.tag=1.0",
            "autoscaling.queueDepth.enabled=true",
        ),
        "autoscaling.queueDepth.enabled=true but no queue series is known",
        "Fix: set wiring.queueDepth.series",
    ),
    bad(
        "shared_model_cache_needs_read_write_many",
        ("inference.modelCache.type=pvc", "inference.modelCache.pvc.accessModes={ReadWriteOnce}"),
        "inference.modelCache.type=pvc needs accessModes [ReadWriteMany]",
    ),
    bad(
        "gpu_agents_in_the_release_namespace",
        (f"dcgm-exporter.namespace={NAMESPACE}",),
        "must stay Pod Security restricted",
    ),
    bad(
        "hpa_with_chart_prometheus_but_no_gpu_source",
        ("dcgm-exporter.enabled=false",),
        "dcgm-exporter.enabled=false and no wiring.dcgmExporter",
    ),
    bad(
        "adapter_existing_tls_secret_needs_its_ca",
        ("prometheus-adapter.tls.existingSecret=adapter-cert",),
        "prometheus-adapter.tls.caBundle is empty",
    ),
]


@pytest.mark.parametrize(("sets", "messages"), BAD_VALUES)
def test_bad_value_fails_with_a_message_naming_the_fix(
    sets: tuple[str, ...], messages: tuple[str, ...], helm_binary: str
) -> None:
    out = render_error(sets)
    for message in messages:
        assert message in out, f"{message!r} not in:\n{out}"


@pytest.mark.parametrize("target", ["0", "91", "100"])
def test_gpu_target_outside_1_to_90_explains_the_tolerance(target: str, helm_binary: str) -> None:
    out = render_error((f"autoscaling.gpuUtilizationTarget={target}",))
    assert f"autoscaling.gpuUtilizationTarget={target} is outside 1-90" in out
    assert "tolerance 0.1" in out
    assert "can never scale up" in out
    assert "Fix: set autoscaling.gpuUtilizationTarget between 1 and 90" in out


@pytest.mark.parametrize("value", ["0.5", "500m"])
def test_fractional_gpu(value: str, helm_binary: str) -> None:
    out = render_error(
        (f"inference.resources.limits.nvidia\\.com/gpu={value}", "inference.resources.requests=null")
    )
    assert f'inference.resources.limits["nvidia.com/gpu"]={value} is not a whole number of GPUs' in out
    assert "Fix: set it to 1" in out


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
