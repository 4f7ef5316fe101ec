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
import json
import logging
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client import V1Node, V1Pod
from kubernetes.utils import parse_quantity

from gpu_inference.adapters.kube import api_client as kube_client
from gpu_inference.domain.cluster_spec import ClusterSpec, NodeGroupSpec, load_cluster_spec
from gpu_inference.domain.constants import GPU_RESOURCE
from gpu_inference.errors import ConfigError, GpuInferenceError
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
        if resource in ("cpu", "memory", GPU_RESOURCE) and amount > _qty(alloc.get(resource, "0")):
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
class Provisioning:
    """A node the group asked for: it joins at `ready_at`, unless it fails to provision, in which
    case it never joins and the scaler gives up on it at `give_up_at` (CA: max-node-provision-time)."""

    ready_at: float
    give_up_at: float
    fails: bool = False


@dataclass
class GroupState:
    spec: NodeGroupSpec
    next_index: int = 0
    provisioning: list[Provisioning] = field(default_factory=list)
    empty_since: dict[str, float] = field(default_factory=dict)


@dataclass
class ScalerStats:
    """What the scaler did, written to its status file for people and tests to read."""

    nodes_added: int = 0
    nodes_removed: int = 0
    failed_provisions: int = 0
    provision_delays_s: list[float] = field(default_factory=list)


class NodeGroupScaler:
    """Scale node groups up for unschedulable pods and down after the unneeded time (SIMULATED CA).

    `clock` and `rng` are injectable so the decisions can be tested without waiting.
    Provisioning takes `provision_delay_s` +- `provision_jitter_s` (uniform, from `seed`).
    A fault file (JSON {"fail_provisions": N}) makes the next N nodes fail to provision.
    """

    def __init__(
        self,
        api: client.CoreV1Api,
        cluster: ClusterSpec,
        *,
        provision_delay_s: float,
        scale_down_unneeded_s: float,
        clock: Callable[[], float] = time.monotonic,
        provision_jitter_s: float = 0.0,
        seed: int = 0,
        provision_timeout_s: float | None = None,
        faults_file: Path | None = None,
        status_file: Path | None = None,
    ) -> None:
        self.api = api
        self.cluster = cluster
        self.provision_delay_s = provision_delay_s
        self.provision_jitter_s = min(provision_jitter_s, provision_delay_s)
        self.scale_down_unneeded_s = scale_down_unneeded_s
        self.provision_timeout_s = (
            provision_timeout_s
            if provision_timeout_s is not None
            else max(3 * (provision_delay_s + self.provision_jitter_s), 10.0)
        )
        self.clock = clock
        self.rng = random.Random(seed)  # noqa: S311 - simulated timing jitter, not security
        self.faults_file = faults_file
        self.status_file = status_file
        self.fail_next = 0
        self.stats = ScalerStats()
        self.groups = {g.name: GroupState(g) for g in cluster.node_groups}

    def _nodes(self, group: str) -> list[V1Node]:
        sel = f"{nodes.NODE_GROUP_LABEL}={group}"
        return list(self.api.list_node(label_selector=sel).items)

    def add_node(self, state: GroupState) -> str:
        manifest = nodes.node_manifest(state.spec, state.next_index, self.cluster.region)
        self.api.create_node(manifest)
        state.next_index += 1
        self.stats.nodes_added += 1
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
        """One scan: read faults, join due nodes, scale up, scale down, write the status file."""
        now = self.clock()
        self._read_faults()
        pods = self.api.list_pod_for_all_namespaces().items
        self._scale_up(pods, now)
        self._scale_down(pods, now)
        self._write_status()

    def _read_faults(self) -> None:
        if self.faults_file is None or not self.faults_file.is_file():
            return
        try:
            data = json.loads(self.faults_file.read_text())
            self.faults_file.unlink()
            n = int(data.get("fail_provisions", 0))
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("ignoring fault file %s: %s", self.faults_file, exc)
            return
        self.fail_next += n
        log.info("fault injected: the next %d node(s) will fail to provision", n)

    def _write_status(self) -> None:
        if self.status_file is None:
            return
        status = {
            **self.stats.__dict__,
            "provisioning": {g: len(s.provisioning) for g, s in self.groups.items()},
            "provision_delay_s": self.provision_delay_s,
            "provision_jitter_s": self.provision_jitter_s,
            "provision_timeout_s": self.provision_timeout_s,
            "scale_down_unneeded_s": self.scale_down_unneeded_s,
        }
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(status, indent=2))
        tmp.replace(self.status_file)

    def _provision(self, state: GroupState, now: float) -> None:
        delay = self.rng.uniform(
            self.provision_delay_s - self.provision_jitter_s, self.provision_delay_s + self.provision_jitter_s
        )
        fails = self.fail_next > 0
        if fails:
            self.fail_next -= 1
        state.provisioning.append(Provisioning(now + delay, now + self.provision_timeout_s, fails))
        if not fails:
            self.stats.provision_delays_s.append(round(delay, 3))

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
        # Nodes whose provisioning delay has passed join the cluster now; failed ones never do.
        for state in self.groups.values():
            keep: list[Provisioning] = []
            for p in state.provisioning:
                if p.fails and now >= p.give_up_at:
                    self.stats.failed_provisions += 1
                    log.warning(
                        "SIMULATED: a node of group %s failed to provision within %.0fs; giving up on it",
                        state.spec.name,
                        self.provision_timeout_s,
                    )
                elif not p.fails and now >= p.ready_at:
                    self.add_node(state)
                else:
                    keep.append(p)
            state.provisioning = keep
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
            needed = -(-len(fitting) // max(per_node, 1)) - len(state.provisioning)
            current = len(self._nodes(state.spec.name))
            room = state.spec.max_size - current - len(state.provisioning)
            add = max(0, min(needed, room))
            if needed > 0 and room <= 0:
                log.info(
                    "node group %s is at its maximum (%d); %d pod(s) stay pending",
                    state.spec.name,
                    state.spec.max_size,
                    len(fitting),
                )
            for _ in range(add):
                self._provision(state, now)
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
                    self.stats.nodes_removed += 1
                    log.info(
                        "SIMULATED scale-down: node group %s removed unneeded node %s", state.spec.name, name
                    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _fail(option: str, problem: str, fix: str) -> int:
    print(f"Error: {problem} ({option}): {fix}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run the scaler until SIGTERM; exit 2 with one line on stderr for a bad setting."""
    ap = argparse.ArgumentParser(description="Simulated node group autoscaler for the local cluster")
    ap.add_argument("--kubeconfig", type=Path, required=True)
    ap.add_argument("--cluster-config", type=Path, required=True, help="eksctl/cluster.yaml")
    ap.add_argument("--scan-interval", type=float, default=10.0)
    ap.add_argument("--provision-delay", type=float, default=5.0)
    ap.add_argument("--provision-jitter", type=float, default=0.0)
    ap.add_argument("--provision-timeout", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale-down-unneeded", type=float, default=600.0)
    ap.add_argument("--faults-file", type=Path, default=None)
    ap.add_argument("--status-file", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.scan_interval <= 0:
        return _fail("--scan-interval", f"{args.scan_interval} is not positive", "pass seconds > 0")
    try:
        api_client = kube_client(args.kubeconfig)
    except ConfigError as exc:
        return _fail(
            "--kubeconfig",
            f"{args.kubeconfig} is not a usable kubeconfig ({_first_line(exc.__cause__ or exc)})",
            "pass the kubeconfig `local up` wrote (~/.local/state/gpu-inference/clusters/NAME/kubeconfig)",
        )
    try:
        spec = load_cluster_spec(args.cluster_config)
    except ConfigError as exc:
        return _fail(exc.setting, exc.problem, exc.fix)
    except GpuInferenceError as exc:
        return _fail("--cluster-config", str(exc).splitlines()[0], "pass a valid eksctl ClusterConfig")
    scaler = NodeGroupScaler(
        client.CoreV1Api(api_client),
        spec,
        provision_delay_s=args.provision_delay,
        provision_jitter_s=args.provision_jitter,
        provision_timeout_s=args.provision_timeout,
        seed=args.seed,
        scale_down_unneeded_s=args.scale_down_unneeded,
        faults_file=args.faults_file,
        status_file=args.status_file,
    )
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        scaler.ensure_minimum()
    except Exception as exc:  # an unreachable API server: say so in one line
        return _fail(
            "--kubeconfig",
            f"the API server of {args.kubeconfig} did not answer ({_first_line(exc)})",
            "start the cluster (`gpu-inference local up`) or pass its kubeconfig",
        )
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
