"""One timeline sample: locust's latest stats, DCGM figures per pod, the HPA, pods and nodes.

A source that fails (Prometheus down, API timeout) leaves its fields empty and an error line
in the sample: the run goes on and the verdict sees the gap.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from gpu_inference.adapters.kube import ClusterReader, ClusterReadError
from gpu_inference.adapters.locust import StatsHistoryReader, TokensReader, at_or_before
from gpu_inference.adapters.prometheus import Prometheus, PrometheusError
from gpu_inference.domain.timeline import DEFAULT_METRIC, HpaSpec, LocustPoint, Phase, PodGpu, TimelineSample

log = logging.getLogger(__name__)

#: DCGM fields in the timeline: utilization (%), framebuffer used (MiB), temperature (C).
FB_METRIC = "DCGM_FI_DEV_FB_USED"
TEMP_METRIC = "DCGM_FI_DEV_GPU_TEMP"


def per_pod_query(metric: str, namespace: str) -> str:
    """Per-pod mean of a DCGM series (avg, not sum: a pod's GPUs are averaged, dcgm-exporter#269)."""
    return f'avg by (namespace, pod) ({metric}{{namespace="{namespace}", pod!=""}})'


def _quiet_if_tail(point: LocustPoint | None, phase: str) -> LocustPoint | None:
    """After the load, keep locust's totals but no rate or latency (nothing is being sent)."""
    if point is None or phase != "tail":
        return point
    return point.model_copy(update={"users": 0, "rps": 0.0, "fail_rps": 0.0, "p50_ms": None, "p95_ms": None})


@dataclass(kw_only=True)
class Sampler:
    """Reads one timeline sample from each source; a missing source leaves its fields empty."""

    namespace: str
    load_started_at: float
    prometheus: Prometheus | None = None
    cluster: ClusterReader | None = None
    hpa: HpaSpec | None = None
    stats: StatsHistoryReader | None = None
    tokens: TokensReader | None = None
    metric: str = DEFAULT_METRIC

    def _gpu(self, errors: list[str]) -> list[PodGpu]:
        if self.prometheus is None:
            return []
        pods: dict[str, PodGpu] = {}
        for field, metric in (("util", self.metric), ("fb_used_mib", FB_METRIC), ("temp_c", TEMP_METRIC)):
            try:
                series = self.prometheus.query(per_pod_query(metric, self.namespace))
            except PrometheusError as exc:
                errors.append(str(exc))
                continue
            for s in series:
                name = s.labels.get("pod", "")
                pods.setdefault(name, PodGpu(pod=name))
                setattr(pods[name], field, s.value)
        return sorted(pods.values(), key=lambda p: p.pod)

    def sample(self, phase: Phase, now: float | None = None) -> TimelineSample:
        t = time.time() if now is None else now
        errors: list[str] = []
        s = TimelineSample(t=t, elapsed_s=t - self.load_started_at, phase=phase)
        if self.stats is not None:
            s.locust = _quiet_if_tail(at_or_before(self.stats.read(), t), phase)
            s.demand_rps = closed_loop_demand(s)
        if self.tokens is not None:
            s.tokens = at_or_before(self.tokens.read(), t)
        s.gpu = self._gpu(errors)
        if self.cluster is not None and self.hpa is not None:
            try:
                s.hpa = self.cluster.hpa_status(self.hpa.metric_name)
            except ClusterReadError as exc:
                errors.append(str(exc))
            try:
                s.workload = self.cluster.workload(self.hpa)
                s.pods = self.cluster.pods()
            except ClusterReadError as exc:
                errors.append(str(exc))
            try:
                s.nodes = self.cluster.nodes()
            except ClusterReadError as exc:
                errors.append(str(exc))
        mine = {p.name for p in s.pods}
        utils = [g.util for g in s.gpu if g.util is not None and (not mine or g.pod in mine)]
        s.gpu_util_mean = sum(utils) / len(utils) if utils else None
        s.errors = errors
        for e in errors:
            log.warning("sample at %.0fs: %s", s.elapsed_s, e)
        return s

    def reattach_locust(self, samples: list[TimelineSample]) -> None:
        """After the run: give every sample the locust/token point of its own second (files now complete)."""
        stats = self.stats.read() if self.stats else []
        tokens = self.tokens.read() if self.tokens else []
        for s in samples:
            if stats:
                s.locust = _quiet_if_tail(at_or_before(stats, s.t), s.phase)
                s.demand_rps = closed_loop_demand(s)
            if tokens:
                s.tokens = at_or_before(tokens, s.t)


def closed_loop_demand(s: TimelineSample) -> float | None:
    """A closed loop has no offered rate of its own: its users' request rate is the demand they made."""
    if s.locust is None:
        return None
    return s.locust.rps if s.phase == "load" else 0.0
