"""A node group scaler for the local cluster: the stand-in for Cluster Autoscaler and the
EKS Auto Scaling groups (SIMULATED).

Cluster Autoscaler cannot be built here (see docs/local-cluster.md), so this process plays
its part with its documented default behaviour: scale up a node group when pods are
unschedulable and a new node of that group would fit them; remove a node of a group above its
minimum once it has run no workload pods for `scale_down_unneeded_s`. Node groups, their
min/max and node shapes come from eksctl/cluster.yaml, like the real node groups.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client import V1Node, V1Pod
from kubernetes.utils import parse_quantity

from gpu_inference.domain.cluster_spec import ClusterSpec, NodeGroupSpec, load_cluster_spec
from gpu_inference.services.local import nodes

log = logging.getLogger(__name__)


def _qty(value: str | None) -> float:
    """Kubernetes quantity to a float (cpu in cores, memory in bytes); empty is 0."""
    return float(parse_quantity(value)) if value else 0.0


def pod_requests(pod: V1Pod) -> dict[str, float]:
    total: dict[str, float] = {}
    for c in pod.spec.containers or []:
        res = c.resources
        asked = {**((res.limits or {}) if res else {}), **((res.requests or {}) if res else {})}
        for k, v in asked.items():
            total[k] = total.get(k, 0.0) + _qty(v)
    return total


def tolerates(pod: V1Pod, taints: list[dict[str, str]]) -> bool:
    tols = pod.spec.tolerations or []
    for t in taints:
        if t.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        ok = False
        for tol in tols:
            if (tol.operator == "Exists" and (tol.key in (None, "", t["key"]))) or (
                tol.key == t["key"]
                and (tol.value or "") == t.get("value", "")
                and tol.effect in (None, "", t["effect"])
            ):
                ok = True
        if not ok:
            return False
    return True


def fits_new_node(pod: V1Pod, manifest: dict[str, Any]) -> bool:
    """Would `pod` schedule onto a fresh node described by `manifest`?"""
    labels = manifest["metadata"]["labels"]
    for k, v in (pod.spec.node_selector or {}).items():
        if labels.get(k) != v:
            return False
    if not tolerates(pod, manifest["spec"].get("taints") or []):
        return False
    alloc = manifest["status"]["allocatable"]
    for resource, amount in pod_requests(pod).items():
        if resource in ("cpu", "memory", "nvidia.com/gpu") and amount > _qty(alloc.get(resource, "0")):
            return False
    return True


def is_unschedulable(pod: V1Pod) -> bool:
    if pod.status.phase != "Pending" or pod.spec.node_name or pod.metadata.deletion_timestamp:
        return False
    return any(
        c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
        for c in pod.status.conditions or []
    )


def is_workload(pod: V1Pod) -> bool:
    owners = pod.metadata.owner_references or []
    return not any(o.kind == "DaemonSet" for o in owners) and pod.status.phase in ("Pending", "Running")


@dataclass
class GroupState:
    spec: NodeGroupSpec
    next_index: int = 0
    pending_until: list[float] = field(default_factory=list)  # provisioning nodes: ready time
    empty_since: dict[str, float] = field(default_factory=dict)


class NodeGroupScaler:
    def __init__(
        self,
        api: client.CoreV1Api,
        cluster: ClusterSpec,
        *,
        provision_delay_s: float,
        scale_down_unneeded_s: float,
        clock: Any = time.monotonic,
    ) -> None:
        self.api = api
        self.cluster = cluster
        self.provision_delay_s = provision_delay_s
        self.scale_down_unneeded_s = scale_down_unneeded_s
        self.clock = clock
        self.groups = {g.name: GroupState(g) for g in cluster.node_groups}

    def _nodes(self, group: str) -> list[V1Node]:
        sel = f"{nodes.NODE_GROUP_LABEL}={group}"
        return list(self.api.list_node(label_selector=sel).items)

    def add_node(self, state: GroupState) -> str:
        manifest = nodes.node_manifest(state.spec, state.next_index, self.cluster.region)
        self.api.create_node(manifest)
        state.next_index += 1
        log.info(
            "SIMULATED scale-up: node group %s added node %s", state.spec.name, manifest["metadata"]["name"]
        )
        return str(manifest["metadata"]["name"])

    def ensure_minimum(self) -> None:
        for state in self.groups.values():
            have = len(self._nodes(state.spec.name))
            for _ in range(max(state.spec.desired_capacity, state.spec.min_size) - have):
                self.add_node(state)

    def step(self) -> None:
        now = self.clock()
        pods = self.api.list_pod_for_all_namespaces().items
        self._scale_up(pods, now)
        self._scale_down(pods, now)

    def _free_capacity(self, pods: list[V1Pod]) -> list[tuple[dict[str, Any], dict[str, float]]]:
        """Existing nodes with what is left of their allocatable resources."""
        used: dict[str, dict[str, float]] = {}
        for p in pods:
            if p.spec.node_name and p.status.phase in ("Pending", "Running"):
                acc = used.setdefault(p.spec.node_name, {})
                for k, v in pod_requests(p).items():
                    acc[k] = acc.get(k, 0.0) + v
        out = []
        for node in self.api.list_node().items:
            if node.spec.unschedulable:
                continue
            alloc = {k: _qty(v) for k, v in (node.status.allocatable or {}).items()}
            free = {k: v - used.get(node.metadata.name, {}).get(k, 0.0) for k, v in alloc.items()}
            manifest = {
                "metadata": {"labels": node.metadata.labels or {}},
                "spec": {
                    "taints": [
                        {"key": t.key, "value": t.value or "", "effect": t.effect}
                        for t in node.spec.taints or []
                    ]
                },
                "status": {"allocatable": {k: str(max(v, 0.0)) for k, v in free.items()}},
            }
            out.append((manifest, free))
        return out

    def _scale_up(self, pods: list[V1Pod], now: float) -> None:
        # Nodes whose provisioning delay has passed join the cluster now.
        for state in self.groups.values():
            due = [t for t in state.pending_until if t <= now]
            state.pending_until = [t for t in state.pending_until if t > now]
            for _ in due:
                self.add_node(state)
        waiting = [p for p in pods if is_unschedulable(p)]
        if not waiting:
            return
        # Pods that fit on room already there (e.g. a node that just joined) need no new node.
        capacity = self._free_capacity(pods)
        still: list[V1Pod] = []
        for p in waiting:
            for manifest, free in capacity:
                if fits_new_node(p, manifest):
                    for k, v in pod_requests(p).items():
                        free[k] = free.get(k, 0.0) - v
                    manifest["status"]["allocatable"] = {k: str(max(v, 0.0)) for k, v in free.items()}
                    break
            else:
                still.append(p)
        waiting = still
        for state in self.groups.values():
            template = nodes.node_manifest(state.spec, 0, self.cluster.region, name="template")
            fitting = [p for p in waiting if fits_new_node(p, template)]
            if not fitting:
                continue
            gpus = state.spec.gpus_per_node
            per_node = gpus if gpus else 1  # GPU pods: one per GPU; otherwise conservatively one
            needed = -(-len(fitting) // max(per_node, 1)) - len(state.pending_until)
            current = len(self._nodes(state.spec.name))
            room = state.spec.max_size - current - len(state.pending_until)
            add = max(0, min(needed, room))
            if needed > 0 and room <= 0:
                log.info(
                    "node group %s is at its maximum (%d); %d pod(s) stay pending",
                    state.spec.name,
                    state.spec.max_size,
                    len(fitting),
                )
            for _ in range(add):
                state.pending_until.append(now + self.provision_delay_s)
            if add:
                log.info(
                    "SIMULATED scale-up: node group %s provisioning %d node(s) for %d pending pod(s)",
                    state.spec.name,
                    add,
                    len(fitting),
                )
            waiting = [p for p in waiting if p not in fitting]

    def _scale_down(self, pods: list[V1Pod], now: float) -> None:
        busy = {p.spec.node_name for p in pods if p.spec.node_name and is_workload(p)}
        for state in self.groups.values():
            group_nodes = sorted(
                self._nodes(state.spec.name), key=lambda n: n.metadata.creation_timestamp, reverse=True
            )
            count = len(group_nodes)
            for node in group_nodes:
                name = node.metadata.name
                if name in busy:
                    state.empty_since.pop(name, None)
                    continue
                since = state.empty_since.setdefault(name, now)
                if count > state.spec.min_size and now - since >= self.scale_down_unneeded_s:
                    self.api.delete_node(name)
                    state.empty_since.pop(name, None)
                    count -= 1
                    log.info(
                        "SIMULATED scale-down: node group %s removed unneeded node %s", state.spec.name, name
                    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Simulated node group autoscaler for the local cluster")
    ap.add_argument("--kubeconfig", type=Path, required=True)
    ap.add_argument("--cluster-config", type=Path, required=True, help="eksctl/cluster.yaml")
    ap.add_argument("--scan-interval", type=float, default=10.0)
    ap.add_argument("--provision-delay", type=float, default=5.0)
    ap.add_argument("--scale-down-unneeded", type=float, default=600.0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config.load_kube_config(config_file=str(args.kubeconfig))
    scaler = NodeGroupScaler(
        client.CoreV1Api(),
        load_cluster_spec(args.cluster_config),
        provision_delay_s=args.provision_delay,
        scale_down_unneeded_s=args.scale_down_unneeded,
    )
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    scaler.ensure_minimum()
    while not stopping:
        try:
            scaler.step()
        except Exception:  # keep scanning like the real autoscaler does
            log.exception("scan failed")
        deadline = time.monotonic() + args.scan_interval
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
