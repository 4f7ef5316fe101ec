"""Following the cluster: which inference pods serve, which exporters run, which GPU each pod holds.

`PodTracker` is pure: it is fed V1Pod / V1Node objects (from a watch, or built by hand in tests)
and computes the desired state. `ClusterWatcher` runs list+watch loops with the kubernetes
client in background threads and hands every event to a callback.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gpu_inference.errors import ConfigError
from gpu_inference.gpusim.model import GpuSpec, gpu_spec_for_node

log = logging.getLogger(__name__)

GPU_RESOURCE = "nvidia.com/gpu"
DEFAULT_INFERENCE_SELECTOR = "app.kubernetes.io/name=inference"
DEFAULT_DCGM_SELECTOR = "app.kubernetes.io/name=dcgm-exporter"
DEFAULT_INFERENCE_PORT = 8000
DEFAULT_DCGM_PORT = 9400
#: Annotation the simulator writes in `allocate` address mode, so scrapers can find the address.
ADDRESS_ANNOTATION = "gpu-inference.io/simulator-address"


class PodKind(StrEnum):
    INFERENCE = "inference"
    EXPORTER = "exporter"


class AddressMode(StrEnum):
    POD_IP = "pod-ip"
    ALLOCATE = "allocate"


# --------------------------------------------------------------------------------------------
# What we read from API objects
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodInfo:
    kind: PodKind
    namespace: str
    name: str
    uid: str
    node: str | None
    pod_ip: str | None
    phase: str
    ready: bool
    created: float
    container: str | None  # the container holding the GPU (inference) / serving metrics
    gpu_count: int
    port: int | None
    model_name: str | None
    max_model_len: int | None
    max_num_seqs: int | None = None
    gpu_memory_utilization: float | None = None
    max_num_batched_tokens: int | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


@dataclass(frozen=True)
class NodeInfo:
    name: str
    gpu_count: int
    spec: GpuSpec
    spec_known: bool


def _gpu_limit(container: Any) -> int:
    resources = getattr(container, "resources", None)
    limits = getattr(resources, "limits", None) or {}
    raw = limits.get(GPU_RESOURCE)
    try:
        return int(str(raw)) if raw is not None else 0
    except ValueError:
        return 0


def _arg_value(tokens: list[str], flag: str) -> str | None:
    for i, tok in enumerate(tokens):
        if tok == flag and i + 1 < len(tokens):
            return tokens[i + 1]
        if tok.startswith(flag + "="):
            return tok[len(flag) + 1 :]
    return None


def served_model_from_args(tokens: list[str]) -> str | None:
    """The model name a vLLM command line serves: --served-model-name, --model, or `serve MODEL`."""
    for flag in ("--served-model-name", "--model"):
        value = _arg_value(tokens, flag)
        if value:
            return value
    for i, tok in enumerate(tokens[:-1]):
        if tok == "serve" and not tokens[i + 1].startswith("-"):
            return tokens[i + 1]
    return None


def _container_port(container: Any, preferred_name: str) -> int | None:
    ports = getattr(container, "ports", None) or []
    for p in ports:
        if getattr(p, "name", None) == preferred_name:
            return int(p.container_port)
    return int(ports[0].container_port) if ports else None


def _is_ready(pod: Any) -> bool:
    for cond in getattr(pod.status, "conditions", None) or []:
        if cond.type == "Ready":
            return bool(cond.status == "True")
    return False


def pod_info(kind: PodKind, pod: Any) -> PodInfo:
    """Read what the simulator needs from a V1Pod."""
    meta, spec, status = pod.metadata, pod.spec, pod.status
    containers = list(getattr(spec, "containers", None) or [])
    chosen = None
    gpus = 0
    for c in containers:
        n = _gpu_limit(c)
        if n > 0:
            chosen, gpus = c, n
            break
    if chosen is None and kind is PodKind.EXPORTER and containers:
        # the container serving metrics: a port named "metrics", else any port, else the first
        with_ports = [c for c in containers if getattr(c, "ports", None)]
        named = [c for c in with_ports if any(getattr(p, "name", None) == "metrics" for p in c.ports)]
        chosen = (named or with_ports or containers)[0]
    port = None
    model = None
    max_len = max_seqs = max_tokens = None
    mem_util: float | None = None
    if chosen is not None:
        port = _container_port(chosen, "http" if kind is PodKind.INFERENCE else "metrics")
        tokens = [
            str(t) for t in (getattr(chosen, "command", None) or []) + (getattr(chosen, "args", None) or [])
        ]
        model = served_model_from_args(tokens)
        raw_len = _arg_value(tokens, "--max-model-len")
        if raw_len and raw_len.isdigit():
            max_len = int(raw_len)
        raw_seqs = _arg_value(tokens, "--max-num-seqs")
        if raw_seqs and raw_seqs.isdigit():
            max_seqs = int(raw_seqs)
        raw_tokens = _arg_value(tokens, "--max-num-batched-tokens")
        if raw_tokens and raw_tokens.isdigit():
            max_tokens = int(raw_tokens)
        raw_mem = _arg_value(tokens, "--gpu-memory-utilization")
        try:
            mem_util = float(raw_mem) if raw_mem else None
        except ValueError:
            mem_util = None
    elif containers:
        # an inference pod without a GPU limit still serves; it just holds no GPU
        port = _container_port(containers[0], "http")
    created = meta.creation_timestamp.timestamp() if getattr(meta, "creation_timestamp", None) else 0.0
    return PodInfo(
        kind=kind,
        namespace=str(meta.namespace or "default"),
        name=str(meta.name),
        uid=str(meta.uid or f"{meta.namespace}/{meta.name}"),
        node=getattr(spec, "node_name", None) or None,
        pod_ip=(getattr(status, "pod_ip", None) or None) if status is not None else None,
        phase=(str(getattr(status, "phase", None) or "Pending")) if status is not None else "Pending",
        ready=_is_ready(pod) if status is not None else False,
        created=created,
        container=str(chosen.name) if chosen is not None else None,
        gpu_count=gpus,
        port=port,
        model_name=model,
        max_model_len=max_len,
        max_num_seqs=max_seqs,
        gpu_memory_utilization=mem_util,
        max_num_batched_tokens=max_tokens,
    )


def node_info(node: Any) -> NodeInfo:
    """Read GPU count (status.capacity[nvidia.com/gpu]) and GPU model (labels) from a V1Node."""
    labels = dict(node.metadata.labels or {})
    capacity = (getattr(node.status, "capacity", None) or {}) if node.status is not None else {}
    try:
        count = int(str(capacity.get(GPU_RESOURCE, "0")))
    except ValueError:
        count = 0
    spec, known = gpu_spec_for_node(labels)
    return NodeInfo(name=str(node.metadata.name), gpu_count=count, spec=spec, spec_known=known)


# --------------------------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------------------------


class AddressAllocator:
    """Hands out one loopback address per pod uid from a CIDR inside 127.0.0.0/8, stably."""

    def __init__(self, cidr: str) -> None:
        try:
            net = ipaddress.ip_network(cidr)
        except ValueError as exc:
            raise ConfigError("--allocate-cidr", f"{cidr!r} is not a CIDR", "pass e.g. 127.1.0.0/16") from exc
        loopback = ipaddress.IPv4Network("127.0.0.0/8")
        if not isinstance(net, ipaddress.IPv4Network) or not net.subnet_of(loopback):
            raise ConfigError(
                "--allocate-cidr", f"{cidr} is not inside 127.0.0.0/8", "pass e.g. 127.1.0.0/16"
            )
        self._net = net
        self._by_uid: dict[str, str] = {}
        self._used: set[str] = set()

    def address_for(self, uid: str) -> str | None:
        if uid in self._by_uid:
            return self._by_uid[uid]
        for host in self._net.hosts():
            addr = str(host)
            if addr not in self._used:
                self._used.add(addr)
                self._by_uid[uid] = addr
                return addr
        return None

    def release(self, uid: str) -> None:
        addr = self._by_uid.pop(uid, None)
        if addr is not None:
            self._used.discard(addr)

    def known_uids(self) -> set[str]:
        return set(self._by_uid)


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def pod_address(
    pod: PodInfo, mode: AddressMode, allocator: AddressAllocator | None
) -> tuple[str | None, str]:
    """Where the simulator binds a pod's servers: (address or None, reason when None).

    pod-ip: the pod's status.podIP, which must be a loopback address (kwok's pod CIDR inside
    127.0.0.0/8), so Prometheus finds it through the API. allocate: an address of the
    simulator's own from --allocate-cidr (the podIP in the API is then not where it listens).
    """
    if mode is AddressMode.ALLOCATE:
        if allocator is None:
            raise ValueError("allocate mode needs an AddressAllocator")
        addr = allocator.address_for(pod.uid)
        return (addr, "") if addr else (None, "the --allocate-cidr range is exhausted")
    if not pod.pod_ip:
        return None, "the pod has no status.podIP yet"
    if not is_loopback(pod.pod_ip):
        return None, (
            f"status.podIP {pod.pod_ip} is not a loopback address; give kwok a pod CIDR inside "
            "127.0.0.0/8 or run the simulator with --address-mode allocate"
        )
    return pod.pod_ip, ""


# --------------------------------------------------------------------------------------------
# Desired state
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaState:
    """An inference pod bound to a node (it exists, holds its GPUs, maybe serves)."""

    pod: PodInfo
    gpus: tuple[int, ...]  # GPU indices on pod.node
    address: str | None
    problem: str  # why it is not served, when ready but address is None

    @property
    def serving(self) -> bool:
        return self.pod.ready and self.address is not None


@dataclass(frozen=True)
class ExporterState:
    pod: PodInfo
    address: str | None
    problem: str


@dataclass(frozen=True)
class GpuNodeState:
    name: str
    gpu_count: int
    spec: GpuSpec


@dataclass(frozen=True)
class DesiredState:
    replicas: tuple[ReplicaState, ...]
    exporters: tuple[ExporterState, ...]
    nodes: tuple[GpuNodeState, ...]


class PodTracker:
    """Keeps the latest pods and nodes and derives what the simulator must serve."""

    def __init__(self, mode: AddressMode = AddressMode.POD_IP, allocator: AddressAllocator | None = None):
        if mode is AddressMode.ALLOCATE and allocator is None:
            raise ValueError("allocate mode needs an AddressAllocator")
        self.mode = mode
        self.allocator = allocator
        self._pods: dict[PodKind, dict[str, PodInfo]] = {k: {} for k in PodKind}
        self._nodes: dict[str, NodeInfo] = {}
        self._gpu_of: dict[str, tuple[str, tuple[int, ...]]] = {}  # pod uid -> (node, indices)
        self._warned: set[str] = set()

    # -- feeding ---------------------------------------------------------------------------

    def apply_pod(self, kind: PodKind, event: str, pod: Any) -> None:
        info = pod_info(kind, pod)
        if event == "DELETED":
            self._pods[kind].pop(info.key, None)
        else:
            self._pods[kind][info.key] = info

    def replace_pods(self, kind: PodKind, pods: Iterable[Any]) -> None:
        self._pods[kind] = {i.key: i for i in (pod_info(kind, p) for p in pods)}

    def apply_node(self, event: str, node: Any) -> None:
        info = node_info(node)
        if event == "DELETED":
            self._nodes.pop(info.name, None)
        else:
            self._nodes[info.name] = info

    def replace_nodes(self, nodes: Iterable[Any]) -> None:
        self._nodes = {i.name: i for i in (node_info(n) for n in nodes)}

    # -- deriving --------------------------------------------------------------------------

    def pods(self, kind: PodKind) -> list[PodInfo]:
        return sorted(self._pods[kind].values(), key=lambda p: (p.created, p.key))

    def desired(self) -> DesiredState:
        bound = [p for p in self.pods(PodKind.INFERENCE) if p.node and not p.terminal]
        self._assign_gpus(bound)
        live_uids = {p.uid for p in bound}
        replicas: list[ReplicaState] = []
        for p in bound:
            addr, problem = (None, "")
            if p.ready:
                addr, problem = pod_address(p, self.mode, self.allocator)
                if addr is None:
                    self._warn_once(
                        p.uid + problem, f"inference pod {p.key} is Ready but not served: {problem}"
                    )
            replicas.append(
                ReplicaState(pod=p, gpus=self._gpu_of.get(p.uid, ("", ()))[1], address=addr, problem=problem)
            )
        exporters: list[ExporterState] = []
        for p in self.pods(PodKind.EXPORTER):
            if p.terminal or p.phase != "Running":
                continue
            live_uids.add(p.uid)
            addr, problem = pod_address(p, self.mode, self.allocator)
            if addr is None:
                self._warn_once(p.uid + problem, f"DCGM exporter pod {p.key} is not served: {problem}")
            exporters.append(ExporterState(pod=p, address=addr, problem=problem))
        if self.allocator is not None:
            for uid in self.allocator.known_uids() - live_uids:
                self.allocator.release(uid)
        return DesiredState(tuple(replicas), tuple(exporters), tuple(self._gpu_nodes()))

    def _gpu_count(self, node: str) -> int:
        info = self._nodes.get(node)
        counted = info.gpu_count if info else 0
        held = sum(len(idx) for n, idx in self._gpu_of.values() if n == node)
        return max(counted, held)

    def _gpu_nodes(self) -> list[GpuNodeState]:
        names = {n for n, i in self._nodes.items() if i.gpu_count > 0} | {n for n, _ in self._gpu_of.values()}
        out: list[GpuNodeState] = []
        for name in sorted(names):
            info = self._nodes.get(name)
            spec = info.spec if info else gpu_spec_for_node({})[0]
            if info is not None and not info.spec_known:
                self._warn_once(
                    "spec/" + name, f"node {name}: GPU model not recognised, simulating a {spec.model_name}"
                )
            out.append(GpuNodeState(name=name, gpu_count=self._gpu_count(name), spec=spec))
        return out

    def _assign_gpus(self, bound: list[PodInfo]) -> None:
        """Give each bound pod stable GPU indices on its node (lowest free first)."""
        live = {p.uid: p for p in bound}
        for uid in list(self._gpu_of):
            node, _ = self._gpu_of[uid]
            if uid not in live or live[uid].node != node or live[uid].gpu_count == 0:
                del self._gpu_of[uid]
        for p in bound:
            if p.uid in self._gpu_of or p.gpu_count == 0 or p.node is None:
                continue
            taken = {i for n, idx in self._gpu_of.values() if n == p.node for i in idx}
            info = self._nodes.get(p.node)
            capacity = info.gpu_count if info and info.gpu_count > 0 else None
            free: list[int] = []
            i = 0
            while len(free) < p.gpu_count:
                if capacity is not None and i >= capacity:
                    break
                if i not in taken:
                    free.append(i)
                i += 1
            if len(free) < p.gpu_count:
                self._warn_once(
                    "gpu/" + p.uid,
                    f"pod {p.key} asks for {p.gpu_count} GPU(s) but node {p.node} has none free; "
                    "its GPU metrics are not simulated",
                )
                continue
            self._gpu_of[p.uid] = (p.node, tuple(free))

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)


# --------------------------------------------------------------------------------------------
# Watching the API
# --------------------------------------------------------------------------------------------

#: callback(kind, event, obj): kind is "inference", "exporter" or "node"; event is ADDED,
#: MODIFIED, DELETED, or SYNC (then obj is the full list of that kind).
WatchCallback = Callable[[str, str, Any], None]


@dataclass(frozen=True)
class WatchConfig:
    kubeconfig: str
    namespace: str
    selector: str = DEFAULT_INFERENCE_SELECTOR
    dcgm_namespace: str = ""  # empty: all namespaces
    dcgm_selector: str = DEFAULT_DCGM_SELECTOR
    watch_timeout_s: int = 20


class ClusterWatcher:
    """list+watch loops for inference pods, exporter pods and nodes, one daemon thread each."""

    def __init__(self, cfg: WatchConfig, callback: WatchCallback) -> None:
        from kubernetes import client, config

        try:
            api_client = config.new_client_from_config(config_file=cfg.kubeconfig)
        except Exception as exc:
            raise ConfigError(
                "--kubeconfig", f"cannot load {cfg.kubeconfig}: {exc}", "pass the local cluster's kubeconfig"
            ) from exc
        self._core = client.CoreV1Api(api_client)
        self._cfg = cfg
        self._callback = callback
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        cfg, core = self._cfg, self._core
        loops: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [
            (
                "inference",
                core.list_namespaced_pod,
                {"namespace": cfg.namespace, "label_selector": cfg.selector},
            ),
            (
                "exporter",
                core.list_namespaced_pod if cfg.dcgm_namespace else core.list_pod_for_all_namespaces,
                {"label_selector": cfg.dcgm_selector}
                | ({"namespace": cfg.dcgm_namespace} if cfg.dcgm_namespace else {}),
            ),
            ("node", core.list_node, {}),
        ]
        for kind, fn, kwargs in loops:
            t = threading.Thread(
                target=self._loop, args=(kind, fn, kwargs), name=f"gpusim-watch-{kind}", daemon=True
            )
            t.start()
            self._threads.append(t)

    def stop(self, join_timeout_s: float = 0.5) -> None:
        """Ask the loops to end; wait at most `join_timeout_s` in all. A loop blocked in a watch
        request is a daemon thread and is simply left behind when the process exits."""
        self._stop.set()
        deadline = time.monotonic() + join_timeout_s
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))

    def annotate_pod(self, namespace: str, name: str, address: str) -> None:
        """Record the simulator's own address on a pod (allocate mode); failures are logged."""
        body = {"metadata": {"annotations": {ADDRESS_ANNOTATION: address}}}
        try:
            self._core.patch_namespaced_pod(name, namespace, body, _request_timeout=10)
        except Exception as exc:
            log.warning("could not annotate pod %s/%s with its address: %s", namespace, name, exc)

    def _loop(self, kind: str, fn: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        failures = 0
        while not self._stop.is_set():
            try:
                listing = fn(**kwargs, _request_timeout=30)
                self._callback(kind, "SYNC", list(listing.items))
                failures = 0
                w = watch.Watch()
                stream = w.stream(
                    fn,
                    resource_version=listing.metadata.resource_version,
                    timeout_seconds=self._cfg.watch_timeout_s,
                    _request_timeout=self._cfg.watch_timeout_s + 10,
                    **kwargs,
                )
                for event in stream:
                    if self._stop.is_set():
                        w.stop()
                        break
                    etype = str(event.get("type", ""))
                    if etype in ("ADDED", "MODIFIED", "DELETED"):
                        self._callback(kind, etype, event["object"])
            except ApiException as exc:
                if exc.status != 410:  # 410 Gone: our resourceVersion is too old, just relist
                    failures += 1
                    log.warning("watching %s: API error %s %s", kind, exc.status, exc.reason)
                    self._stop.wait(min(5.0, 0.5 * failures))
            except Exception as exc:
                failures += 1
                log.warning("watching %s failed (%s); retrying", kind, exc)
                self._stop.wait(min(5.0, 0.5 * failures))
