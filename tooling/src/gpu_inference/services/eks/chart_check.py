"""Check the chart as rendered (helm template) against the eksctl node groups.

Works on the rendered objects, not on values keys, so it holds whatever the chart calls its
settings: the GPU pods must fit the GPU node group's labels and taint, the HPA must not ask for
more GPUs than the node group can ever have, exactly one NVIDIA device plugin must serve the GPU
nodes, the GPU DaemonSets must be able to run there, and nothing else may tolerate the GPU taint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpu_inference.domain.constants import GPU_RESOURCE, GPU_TAINT_KEY
from gpu_inference.domain.eksctl_config import (
    GPU_NODE_GROUP,
    ClusterConfig,
    ManagedNodeGroup,
    device_plugin_count,
)
from gpu_inference.errors import Problem

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str
    pod_spec: Mapping[str, Any]
    replicas: int | None = None

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def gpus_per_pod(self) -> int:
        total = 0
        for c in self.pod_spec.get("containers") or []:
            limits = (c.get("resources") or {}).get("limits") or {}
            if GPU_RESOURCE in limits:
                total += int(str(limits[GPU_RESOURCE]))
        return total

    @property
    def images(self) -> list[str]:
        return [str(c.get("image", "")) for c in self.pod_spec.get("containers") or []]

    @property
    def container_names(self) -> list[str]:
        return [str(c.get("name", "")) for c in self.pod_spec.get("containers") or []]


@dataclass(frozen=True)
class Hpa:
    name: str
    target_kind: str
    target_name: str
    min_replicas: int
    max_replicas: int


@dataclass
class ChartFacts:
    workloads: list[Workload] = field(default_factory=list)
    hpas: list[Hpa] = field(default_factory=list)
    ingresses: list[str] = field(default_factory=list)
    load_balancer_services: list[str] = field(default_factory=list)

    @property
    def gpu_workloads(self) -> list[Workload]:
        return [w for w in self.workloads if w.gpus_per_pod > 0]

    @property
    def device_plugins(self) -> list[Workload]:
        return [w for w in self.workloads if w.kind == "DaemonSet" and _is_device_plugin(w)]

    @property
    def gpu_daemonsets(self) -> list[Workload]:
        return [w for w in self.workloads if w.kind == "DaemonSet" and (_is_device_plugin(w) or _is_dcgm(w))]


def _is_device_plugin(w: Workload) -> bool:
    return any("k8s-device-plugin" in i for i in w.images) or any(
        "nvidia-device-plugin" in n for n in w.container_names
    )


def _is_dcgm(w: Workload) -> bool:
    return any("dcgm-exporter" in i for i in w.images)


def extract(objects: Iterable[Mapping[str, Any]]) -> ChartFacts:
    """Collect workloads, HPAs, Ingresses and LoadBalancer Services from rendered manifests."""
    facts = ChartFacts()
    for obj in objects:
        kind = obj.get("kind")
        meta = obj.get("metadata") or {}
        name = str(meta.get("name", "?"))
        spec = obj.get("spec") or {}
        if kind in WORKLOAD_KINDS:
            template = (spec.get("template") or {}).get("spec") or {}
            replicas = spec.get("replicas")
            facts.workloads.append(
                Workload(str(kind), name, template, int(replicas) if replicas is not None else None)
            )
        elif kind == "HorizontalPodAutoscaler":
            ref = spec.get("scaleTargetRef") or {}
            facts.hpas.append(
                Hpa(
                    name=name,
                    target_kind=str(ref.get("kind", "")),
                    target_name=str(ref.get("name", "")),
                    min_replicas=int(spec.get("minReplicas", 1)),
                    max_replicas=int(spec.get("maxReplicas", 0)),
                )
            )
        elif kind == "Ingress":
            facts.ingresses.append(name)
        elif kind == "Service" and spec.get("type") == "LoadBalancer":
            facts.load_balancer_services.append(name)
    return facts


# --------------------------------------------------------------------------- scheduling semantics


def tolerates(tolerations: Sequence[Mapping[str, Any]], key: str, value: str, effect: str) -> bool:
    """Kubernetes toleration matching for one taint."""
    for t in tolerations:
        op = t.get("operator", "Equal")
        t_key = t.get("key", "")
        t_effect = t.get("effect", "")
        if t_effect and t_effect != effect:
            continue
        if op == "Exists" and not t_key:
            return True
        if t_key != key:
            continue
        if op == "Exists" or str(t.get("value", "")) == value:
            return True
    return False


def _expr_ok(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """One nodeSelectorRequirement (In, NotIn, Exists, DoesNotExist, Gt, Lt) against node labels."""
    key = expr.get("key", "")
    op = expr.get("operator")
    values = [str(v) for v in expr.get("values") or []]
    value = labels.get(key)
    checks = {
        "In": lambda: value is not None and value in values,
        "NotIn": lambda: value is None or value not in values,
        "Exists": lambda: value is not None,
        "DoesNotExist": lambda: value is None,
        "Gt": lambda: _compare(value, values, lambda a, b: a > b),
        "Lt": lambda: _compare(value, values, lambda a, b: a < b),
    }
    check = checks.get(str(op))
    return bool(check and check())


def _compare(value: str | None, values: Sequence[str], op: Any) -> bool:
    if value is None or not values:
        return False
    try:
        return bool(op(int(value), int(values[0])))
    except ValueError:
        return False


def fits_labels(pod_spec: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """nodeSelector and required node affinity against a node's labels."""
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != str(v):
            return False
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if terms:
        return any(all(_expr_ok(e, labels) for e in term.get("matchExpressions") or []) for term in terms)
    return True


def fits_node_group(pod_spec: Mapping[str, Any], ng: ManagedNodeGroup) -> bool:
    if not fits_labels(pod_spec, ng.labels):
        return False
    tolerations = pod_spec.get("tolerations") or []
    return all(
        tolerates(tolerations, t.key, t.value, t.effect)
        for t in ng.taints
        if t.effect in ("NoSchedule", "NoExecute")
    )


# --------------------------------------------------------------------------- the check


def _misfits(workloads: Iterable[Workload], ng: ManagedNodeGroup, problem: str, fix: str) -> list[Problem]:
    """`problem` and `fix` for each workload whose pods cannot be placed on the node group."""
    return [Problem(f"chart {w.ref}", problem, fix) for w in workloads if not fits_node_group(w.pod_spec, ng)]


def check_alignment(
    cfg: ClusterConfig, facts: ChartFacts, *, eksctl_installs_plugin: bool = False
) -> list[Problem]:
    p: list[Problem] = []
    gpu = cfg.node_group(GPU_NODE_GROUP)
    if gpu is None:
        return [Problem("managedNodeGroups", f"no {GPU_NODE_GROUP!r} node group", "fix eksctl/cluster.yaml")]
    gpu_taint = next((t for t in gpu.taints if t.key == GPU_TAINT_KEY), None)

    if not facts.gpu_workloads:
        p.append(
            Problem(
                "chart",
                f"renders no workload with {GPU_RESOURCE} in its limits",
                "enable the inference server",
            )
        )
    p += _misfits(
        facts.gpu_workloads,
        gpu,
        f"its nodeSelector/affinity/tolerations do not match the {GPU_NODE_GROUP!r} node group "
        f"(labels {gpu.labels}, taints {[f'{t.key}={t.value}:{t.effect}' for t in gpu.taints]})",
        "select the GPU node labels and tolerate the GPU taint in the chart values",
    )

    capacity = (gpu.maxSize or 0) * gpu.gpus_per_node
    gpu_targets = {(w.kind, w.name): w for w in facts.gpu_workloads}
    scaled = [h for h in facts.hpas if (h.target_kind, h.target_name) in gpu_targets]
    if facts.gpu_workloads and not scaled:
        p.append(
            Problem("chart", "renders no HorizontalPodAutoscaler for the GPU workload", "enable autoscaling")
        )
    for h in scaled:
        per_pod = gpu_targets[(h.target_kind, h.target_name)].gpus_per_pod
        if h.max_replicas * per_pod > capacity:
            p.append(
                Problem(
                    f"chart HorizontalPodAutoscaler/{h.name}.maxReplicas",
                    f"{h.max_replicas} replicas x {per_pod} GPU need {h.max_replicas * per_pod} GPUs, "
                    "but node group "
                    f"{GPU_NODE_GROUP!r} has at most {gpu.maxSize} node(s) x {gpu.gpus_per_node} GPU = "
                    f"{capacity}",
                    f"lower maxReplicas to <= {capacity // max(per_pod, 1)} or raise maxSize in "
                    "eksctl/cluster.yaml",
                )
            )
        if h.min_replicas > h.max_replicas:
            p.append(
                Problem(
                    f"chart HorizontalPodAutoscaler/{h.name}", "minReplicas > maxReplicas", "fix the range"
                )
            )

    plugins = device_plugin_count(
        cfg, eksctl_installs_plugin=eksctl_installs_plugin, chart_device_plugins=len(facts.device_plugins)
    )
    if plugins != 1:
        p.append(
            Problem(
                "NVIDIA device plugin",
                f"{plugins} device plugins would serve the GPU nodes (AMI family "
                f"{sorted({ng.amiFamily for ng in cfg.gpu_node_groups})}, eksctl installs one: "
                f"{eksctl_installs_plugin}, chart DaemonSets: {[w.ref for w in facts.device_plugins]})",
                "ship exactly one: chart plugin on for AmazonLinux2023 (eksctl "
                "--install-nvidia-plugin=false), "
                "off for Bottlerocket",
            )
        )
    p += _misfits(
        facts.gpu_daemonsets,
        gpu,
        f"cannot run on the {GPU_NODE_GROUP!r} nodes (its nodeSelector/affinity needs labels the node "
        "group does not have, or it does not tolerate the GPU taint)",
        f"select on {sorted(gpu.labels)} and tolerate the GPU taint",
    )
    if gpu_taint is not None:
        for w in facts.workloads:
            if w.gpus_per_pod or w in facts.gpu_daemonsets or w.kind == "DaemonSet":
                continue
            tol = w.pod_spec.get("tolerations") or []
            if tolerates(tol, gpu_taint.key, gpu_taint.value, gpu_taint.effect) and fits_labels(
                w.pod_spec, gpu.labels
            ):
                p.append(
                    Problem(
                        f"chart {w.ref}",
                        "tolerates the GPU taint and may land on a GPU node (its pods would keep the "
                        "autoscaler "
                        "from removing the node)",
                        "drop the toleration or select the system node pool",
                    )
                )
    return p
