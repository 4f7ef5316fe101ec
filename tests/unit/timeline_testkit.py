"""Timeline models the unit tests of several folders build: the chart's default HPA."""

from __future__ import annotations

from typing import Any

from gpu_inference.domain.timeline import HpaSpec

#: The chart's HPA as the seed designed it: GPU utilization, target 80 %, 1..4 replicas.
_DEFAULT_HPA: dict[str, Any] = {
    "name": "gpu-inference",
    "namespace": "gpu-inference",
    "target_kind": "Deployment",
    "target_name": "gpu-inference-inference",
    "min_replicas": 1,
    "max_replicas": 4,
    "metric_name": "DCGM_FI_DEV_GPU_UTIL",
    "target_value": 80,
}


def hpa_spec(**overrides: Any) -> HpaSpec:
    """The chart's default HPA spec with `overrides` (any HpaSpec field)."""
    return HpaSpec(**{**_DEFAULT_HPA, **overrides})
