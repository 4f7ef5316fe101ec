"""Read what the autoscaling loop is doing, through the Kubernetes API: HPA, workload, pods, nodes.

Everything comes back as the plain models of loadtest.models, so the verdict rules and the
cost report never touch Kubernetes client objects. The HPA's target, bounds and scale-down
window are read from the HPA object itself, never assumed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity
from urllib3.exceptions import HTTPError

from gpu_inference.domain.cluster_spec import ACCELERATOR_LABEL, GPU_RESOURCE, NODE_POOL_LABEL
from gpu_inference.domain.constants import SIMULATED_NODE_LABEL
from gpu_inference.domain.timeline import (
    HpaCondition,
    HpaMetric,
    HpaSpec,
    HpaStatus,
    NodeInfo,
    PodInfo,
    ScalePolicy,
    WorkloadStatus,
)
from gpu_inference.errors import ConfigError, GpuInferenceError, WaitTimeoutError

log = logging.getLogger(__name__)

INSTANCE_TYPE_LABELS = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")
CAPACITY_TYPE_LABELS = ("eks.amazonaws.com/capacityType", "karpenter.sh/capacity-type")


class ClusterReadError(GpuInferenceError):
    """The Kubernetes API could not be read (one sample's worth: the sampler records it and goes on)."""


T = TypeVar("T")


#: What the kubernetes client raises on a kubeconfig it cannot use (missing keys, not YAML, ...).
_BAD_KUBECONFIG = (
    config.ConfigException,
    yaml.YAMLError,
    OSError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
)


def api_client(kubeconfig: Path | str, context: str | None = None, *, setting: str = "--kubeconfig") -> Any:
    """The one way this package opens a Kubernetes API client; a bad kubeconfig is a ConfigError."""
    path = Path(kubeconfig)
    if not path.is_file():
        raise ConfigError(setting, f"{path} not found", "pass the cluster's kubeconfig file")
    try:
        return config.new_client_from_config(config_file=str(path), context=context, persist_config=False)
    except _BAD_KUBECONFIG as exc:
        raise ConfigError(setting, f"{path}: {exc}", "pass a valid kubeconfig (and context)") from exc


class NotYet(GpuInferenceError):
    """Raised by a `wait_until` check: not there yet; the message is what it saw (a timeout names it)."""


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout_s: float,
    what: str,
    fix: str,
    interval_s: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    tolerate: tuple[type[Exception], ...] = (GpuInferenceError,),
) -> T:
    """Poll `check` until it returns something other than None (or False), or time out.

    NotYet from `check`, and an error of a `tolerate` type (by default any GpuInferenceError),
    count as "not yet" and become the last state in the WaitTimeoutError, which names `what` and
    `fix`. Any other error ends the wait at once (e.g. a process that died: waiting longer is no use).
    """
    deadline = clock() + timeout_s
    last = "nothing yet"
    while True:
        try:
            value = check()
            if value is not None and value is not False:
                return value
        except NotYet as exc:
            last = str(exc)
        except tolerate as exc:
            last = str(exc)
        if clock() >= deadline:
            raise WaitTimeoutError(what, timeout_s, last, fix)
        sleep(interval_s)


def _quantity(value: Any) -> float | None:
    if value is None:
        return None
    return float(parse_quantity(str(value)))


def _ready(conditions: list[Any] | None) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])


def node_info(node: Any) -> NodeInfo:
    """A V1Node as cost and capacity see it."""
    labels = node.metadata.labels or {}
    alloc = (node.status.allocatable if node.status else None) or {}
    gpus = int(_quantity(alloc.get(GPU_RESOURCE)) or 0)
    capacity = next((labels[k] for k in CAPACITY_TYPE_LABELS if k in labels), None)
    if capacity is not None:
        capacity = capacity.upper().replace("-", "_")  # karpenter's on-demand/spot -> EKS' ON_DEMAND/SPOT
    pool = labels.get(NODE_POOL_LABEL)
    return NodeInfo(
        name=node.metadata.name,
        instance_type=next((labels[k] for k in INSTANCE_TYPE_LABELS if k in labels), None),
        capacity_type=capacity,
        pool=pool,
        gpus=gpus,
        is_gpu=gpus > 0 or pool == "gpu" or ACCELERATOR_LABEL in labels,
        ready=_ready(node.status.conditions if node.status else None),
        simulated=labels.get(SIMULATED_NODE_LABEL) == "true",
    )


def pod_info(pod: Any) -> PodInfo:
    status = pod.status
    phase = (status.phase if status else None) or "Unknown"
    return PodInfo(
        name=pod.metadata.name,
        phase="Terminating" if pod.metadata.deletion_timestamp is not None else phase,
        ready=_ready(status.conditions if status else None),
        node=pod.spec.node_name if pod.spec else None,
    )


def _metric_of(entry: Any) -> tuple[str | None, Any, Any]:
    """(metric name, target-or-current block) for one HPA metric spec/status entry."""
    kind = entry.type
    block = {"Pods": entry.pods, "Object": entry.object, "External": entry.external}.get(kind)
    if block is None or block.metric is None:
        return None, None, None
    return block.metric.name, getattr(block, "target", None), getattr(block, "current", None)


def _all_metrics(spec: Any) -> list[HpaMetric]:
    out = []
    for entry in spec.metrics or []:
        name, target, _ = _metric_of(entry)
        if name is None or target is None:
            continue
        value = _quantity(target.average_value if target.average_value is not None else target.value)
        if value is not None:
            out.append(HpaMetric(name=name, target=value))
    return out


def _scale_down_policies(down: Any) -> dict[str, Any]:
    """behavior.scaleDown's policies and selectPolicy, when the HPA sets them (else Kubernetes' defaults)."""
    if down is None:
        return {}
    out: dict[str, Any] = {}
    if down.policies:
        out["scale_down_policies"] = [
            ScalePolicy(type=p.type, value=p.value, period_s=p.period_seconds) for p in down.policies
        ]
    if down.select_policy:
        out["scale_down_select"] = down.select_policy
    return out


def hpa_spec(hpa: Any, metric_name: str | None) -> HpaSpec:
    """The HPA's scaling contract for `metric_name` (None: its first metric).

    ConfigError when the HPA doesn't use it.
    """
    spec = hpa.spec
    where = f"HPA {hpa.metadata.namespace}/{hpa.metadata.name}"
    found = []
    for entry in spec.metrics or []:
        name, target, _ = _metric_of(entry)
        found.append(f"{entry.type}:{name}")
        if metric_name is None and name is not None and target is not None:
            metric_name = name
        if name is not None and name == metric_name and target is not None:
            value = _quantity(target.average_value if target.average_value is not None else target.value)
            if value is None:
                raise ConfigError(
                    where, f"metric {metric_name} has no target value", "give it target.averageValue"
                )
            behavior = spec.behavior
            window = None
            down = behavior.scale_down if behavior is not None else None
            if down is not None:
                window = down.stabilization_window_seconds
            return HpaSpec(
                name=hpa.metadata.name,
                namespace=hpa.metadata.namespace,
                target_kind=spec.scale_target_ref.kind,
                target_name=spec.scale_target_ref.name,
                min_replicas=spec.min_replicas if spec.min_replicas is not None else 1,
                max_replicas=spec.max_replicas,
                metric_name=metric_name,
                target_value=value,
                scale_down_stabilization_s=window if window is not None else 300,
                metrics=_all_metrics(spec),
                **_scale_down_policies(down),
            )
    raise ConfigError(
        where,
        f"does not scale on {metric_name} (its metrics: {', '.join(found) or 'none'})",
        "install the chart with GPU autoscaling on, or pass --metric with the metric it uses",
    )


def hpa_status(hpa: Any, metric_name: str) -> HpaStatus:
    status = hpa.status
    current = None
    metrics: dict[str, float] = {}
    for entry in (status.current_metrics if status else None) or []:
        name, _, cur = _metric_of(entry)
        if name is None or cur is None:
            continue
        value = _quantity(cur.average_value if cur.average_value is not None else cur.value)
        if value is None:
            continue
        metrics[name] = value
        if name == metric_name:
            current = value
    return HpaStatus(
        metrics=metrics,
        current_replicas=(status.current_replicas if status else None) or 0,
        desired_replicas=(status.desired_replicas if status else None) or 0,
        current_value=current,
        conditions=[
            HpaCondition(type=c.type, status=c.status, reason=c.reason or "", message=c.message or "")
            for c in (status.conditions if status else None) or []
        ],
    )


class ClusterReader:
    """Reads one HPA, its scale target, that target's pods and the cluster's nodes."""

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        hpa_name: str,
        *,
        context: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.api = api_client(kubeconfig, context)
        self.namespace = namespace
        self.hpa_name = hpa_name
        self.timeout_s = timeout_s
        self._autoscaling = client.AutoscalingV2Api(self.api)
        self._apps = client.AppsV1Api(self.api)
        self._core = client.CoreV1Api(self.api)
        self._selector: str | None = None

    def close(self) -> None:
        self.api.close()

    @contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        try:
            yield
        except ApiException as exc:
            raise ClusterReadError(f"reading {what}: HTTP {exc.status} {exc.reason}") from exc
        except (HTTPError, OSError) as exc:
            raise ClusterReadError(
                f"reading {what}: Kubernetes API not reachable ({type(exc).__name__})"
            ) from exc

    def _hpa(self) -> Any:
        with self._reading(f"HPA {self.namespace}/{self.hpa_name}"):
            return self._autoscaling.read_namespaced_horizontal_pod_autoscaler(
                self.hpa_name, self.namespace, _request_timeout=self.timeout_s
            )

    def hpa_spec(self, metric_name: str | None) -> HpaSpec:
        try:
            hpa = self._hpa()
        except ClusterReadError as exc:
            raise ConfigError(
                "--hpa",
                str(exc),
                f"check --namespace {self.namespace} and --hpa (`kubectl get hpa -n {self.namespace}`)",
            ) from exc
        return hpa_spec(hpa, metric_name)

    def hpa_status(self, metric_name: str) -> HpaStatus:
        return hpa_status(self._hpa(), metric_name)

    def _read_target(self, spec: HpaSpec) -> Any:
        with self._reading(f"{spec.target_kind} {self.namespace}/{spec.target_name}"):
            if spec.target_kind == "Deployment":
                return self._apps.read_namespaced_deployment(
                    spec.target_name, self.namespace, _request_timeout=self.timeout_s
                )
            if spec.target_kind == "StatefulSet":
                return self._apps.read_namespaced_stateful_set(
                    spec.target_name, self.namespace, _request_timeout=self.timeout_s
                )
        raise ConfigError(
            f"HPA {spec.name} scaleTargetRef.kind",
            f"{spec.target_kind} is not supported",
            "scale a Deployment",
        )

    def workload(self, spec: HpaSpec) -> WorkloadStatus:
        obj = self._read_target(spec)
        labels = (obj.spec.selector.match_labels if obj.spec.selector else None) or {}
        self._selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        return WorkloadStatus(
            replicas=(obj.status.replicas if obj.status else None) or 0,
            ready_replicas=(obj.status.ready_replicas if obj.status else None) or 0,
        )

    def pods(self) -> list[PodInfo]:
        """The scale target's pods (call workload() first so the selector is known)."""
        with self._reading(f"pods in {self.namespace}"):
            items = self._core.list_namespaced_pod(
                self.namespace, label_selector=self._selector or None, _request_timeout=self.timeout_s
            ).items
        return [pod_info(p) for p in items]

    def nodes(self) -> list[NodeInfo]:
        with self._reading("nodes"):
            items = self._core.list_node(_request_timeout=self.timeout_s).items
        return [node_info(n) for n in items]
