"""The simulator process's state: follows the tracker's desired state with real listeners.

One `Simulator` owns: the front door, one `Replica` (engine + vLLM server) per inference pod
bound to a node, one DCGM exporter server per exporter pod, and one `GpuDevice` per GPU of
every GPU node. A collection loop closes a window every `collect_interval_s` and turns each
replica's engine integrals into the DCGM figures of the GPU(s) its pod holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from gpu_inference.errors import ConfigError
from gpu_inference.gpusim.dcgm import GpuReading, PodRef, identity_for, render
from gpu_inference.gpusim.model import TESLA_T4, GpuDevice, GpuSpec, Profile, ProfileKind, make_engine
from gpu_inference.gpusim.params import profile_document
from gpu_inference.gpusim.pods import (
    DEFAULT_DCGM_PORT,
    DEFAULT_INFERENCE_PORT,
    AddressAllocator,
    AddressMode,
    ExporterState,
    PodKind,
    PodTracker,
    ReplicaState,
)
from gpu_inference.gpusim.server import (
    DispatchMode,
    Endpoint,
    EngineRunner,
    FrontDoor,
    Listener,
    Replica,
    make_exporter_app,
    make_replica_app,
)

log = logging.getLogger(__name__)

SIMULATED_NOTICE = (
    "SIMULATED: every GPU figure (DCGM utilization, memory, temperature, power, clocks) and every "
    "inference latency here comes from the gpu-inference GPU simulator, not from GPU hardware."
)
DEFAULT_MODEL_NAME = "simulated-model"


@dataclass(frozen=True)
class SimConfig:
    profile: Profile
    front_door_host: str = "127.0.0.1"
    front_door_port: int = 0
    collect_interval_s: float = 1.0
    dispatch: DispatchMode = DispatchMode.ROUND_ROBIN
    address_mode: AddressMode = AddressMode.POD_IP
    allocate_cidr: str = "127.1.0.0/16"
    inference_port: int = DEFAULT_INFERENCE_PORT
    dcgm_port: int = DEFAULT_DCGM_PORT
    model_name: str = DEFAULT_MODEL_NAME
    hostname_label: str = "Hostname"
    reconcile_period_s: float = 2.0


@dataclass(kw_only=True)
class _Served:
    """What every served endpoint keeps: its listener, why it could not bind, the address annotated."""

    listener: Listener | None = None
    bind_problem: str = ""
    annotated: str = ""

    async def stop_serving(self, what: str) -> None:
        """Stop the listener (if any) of `what`, which is gone."""
        if self.listener is not None:
            await self.listener.stop()
            log.info("%s gone: stopped serving on %s", what, self.listener.address)


@dataclass
class _ReplicaSlot(_Served):
    state: ReplicaState
    profile: Profile
    replica: Replica


@dataclass
class _ExporterSlot(_Served):
    state: ExporterState


@dataclass
class _Holder:
    uid: str
    ref: PodRef


@dataclass
class Simulator:
    cfg: SimConfig
    #: called (namespace, name, "ip:port") in allocate mode so scrapers can find the address
    annotator: Callable[[str, str, str], None] | None = None
    tracker: PodTracker = field(init=False)
    front_door: FrontDoor = field(init=False)

    def __post_init__(self) -> None:
        self.cfg.profile.validate()
        allocator = (
            AddressAllocator(self.cfg.allocate_cidr)
            if self.cfg.address_mode is AddressMode.ALLOCATE
            else None
        )
        self.tracker = PodTracker(self.cfg.address_mode, allocator)
        self.front_door = FrontDoor(
            self.cfg.dispatch,
            self.status,
            profile_doc=lambda: profile_document(self.cfg.profile),
            profile_name=self.profile_name,
        )
        self._replicas: dict[str, _ReplicaSlot] = {}
        self._exporters: dict[str, _ExporterSlot] = {}
        self._devices: dict[tuple[str, int], GpuDevice] = {}
        self._holders: dict[tuple[str, int], _Holder] = {}
        self._readings: dict[tuple[str, int], GpuReading] = {}
        self._node_specs: dict[str, GpuSpec] = {}
        self._front_listener: Listener | None = None
        self._dirty: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reconcile_lock: asyncio.Lock | None = None

    @property
    def profile_name(self) -> str:
        return self.cfg.profile.name or str(self.cfg.profile.kind)

    # -- lifecycle -------------------------------------------------------------------------

    def _now(self) -> float:
        # Engines schedule their completions with loop.call_at, so they must run on the loop's
        # clock; time is injected one layer down, in the pure model (see model.py and its tests).
        return asyncio.get_running_loop().time()

    async def start(self) -> None:
        """Bind the front door and start the reconcile and collection loops."""
        self._dirty = asyncio.Event()
        self._reconcile_lock = asyncio.Lock()
        await self.front_door.start()
        listener = Listener(self.front_door.app(), self.cfg.front_door_host, self.cfg.front_door_port)
        try:
            await listener.start()
        except OSError as exc:
            await self.front_door.close()
            raise ConfigError(
                "--front-door",
                f"cannot listen on {self.cfg.front_door_host}:{self.cfg.front_door_port}: {exc}",
                "pick a free port (or stop what is listening there)",
            ) from exc
        self._front_listener = listener
        log.info("front door (simulated Service) listening on http://%s", listener.address)
        self._tasks = [
            asyncio.create_task(self._reconcile_loop(), name="gpusim-reconcile"),
            asyncio.create_task(self._collect_loop(), name="gpusim-collect"),
        ]

    @property
    def front_door_address(self) -> str:
        assert self._front_listener is not None
        return self._front_listener.address

    async def stop(self) -> None:
        """Close every listener and fail whatever is still in flight."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        listeners: list[Listener] = [s.listener for s in self._replicas.values() if s.listener]
        listeners += [s.listener for s in self._exporters.values() if s.listener]
        if self._front_listener is not None:
            listeners.append(self._front_listener)
        await asyncio.gather(*(ln.stop() for ln in listeners), return_exceptions=True)
        for slot in self._replicas.values():
            slot.listener = None
            slot.replica.runner.close()
        for eslot in self._exporters.values():
            eslot.listener = None
        self._front_listener = None
        await self.front_door.close()
        log.info("simulator stopped, all listeners closed")

    # -- input -----------------------------------------------------------------------------

    def on_watch_event(self, kind: str, event: str, obj: Any) -> None:
        """Feed one watch event (on the event loop's thread)."""
        if kind == "node":
            if event == "SYNC":
                self.tracker.replace_nodes(obj)
            else:
                self.tracker.apply_node(event, obj)
        else:
            pkind = PodKind(kind)
            if event == "SYNC":
                self.tracker.replace_pods(pkind, obj)
            else:
                self.tracker.apply_pod(pkind, event, obj)
        if self._dirty is not None:
            self._dirty.set()

    # -- reconcile -------------------------------------------------------------------------

    async def _reconcile_loop(self) -> None:
        assert self._dirty is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), timeout=self.cfg.reconcile_period_s)
            self._dirty.clear()
            try:
                await self.reconcile()
            except Exception:
                log.exception("reconcile failed; retrying")

    async def reconcile(self) -> None:
        """Make listeners, engines and devices match the tracker's desired state."""
        if self._reconcile_lock is None:
            self._reconcile_lock = asyncio.Lock()
        async with self._reconcile_lock:
            await self._reconcile()

    async def _reconcile(self) -> None:
        desired = self.tracker.desired()
        now = self._now()
        # GPUs
        self._node_specs = {n.name: n.spec for n in desired.nodes}
        want_dev = {(n.name, i): n.spec for n in desired.nodes for i in range(n.gpu_count)}
        for key in list(self._devices):
            if key not in want_dev:
                del self._devices[key]
                self._readings.pop(key, None)
        for key, spec in want_dev.items():
            if key not in self._devices:
                self._devices[key] = GpuDevice(spec=spec, node=key[0], index=key[1], last_collect=now)
        # replicas
        want_rep = {r.pod.uid: r for r in desired.replicas}
        for uid in [u for u in self._replicas if u not in want_rep]:
            slot = self._replicas.pop(uid)
            await slot.stop_serving(f"inference pod {slot.state.pod.key}")
            slot.replica.runner.close()
        for uid, st in want_rep.items():
            rslot = self._replicas.get(uid)
            if rslot is None:
                rslot = self._new_replica(st)
                self._replicas[uid] = rslot
            rslot.state = st
            port = st.pod.port or self.cfg.inference_port
            want = (st.address, port) if st.serving and st.address else None
            rslot.listener, rslot.bind_problem = await self._bind(
                rslot.listener,
                want,
                functools.partial(make_replica_app, rslot.replica),
                f"inference pod {st.pod.key}",
            )
            if want and rslot.listener is not None:
                rslot.annotated = await self._annotate(
                    st.pod.namespace, st.pod.name, rslot.listener.address, rslot.annotated
                )
        self._holders = {}
        for st in desired.replicas:
            if st.pod.node and st.pod.container:
                for idx in st.gpus:
                    self._holders[(st.pod.node, idx)] = _Holder(
                        st.pod.uid,
                        PodRef(pod=st.pod.name, namespace=st.pod.namespace, container=st.pod.container),
                    )
        # exporters
        want_exp = {e.pod.uid: e for e in desired.exporters}
        for uid in [u for u in self._exporters if u not in want_exp]:
            eslot = self._exporters.pop(uid)
            await eslot.stop_serving(f"DCGM exporter {eslot.state.pod.key}")
        for uid, est in want_exp.items():
            eslot2 = self._exporters.get(uid)
            if eslot2 is None:
                eslot2 = _ExporterSlot(state=est)
                self._exporters[uid] = eslot2
            eslot2.state = est
            want = (est.address, est.pod.port or self.cfg.dcgm_port) if est.address else None
            node = est.pod.node
            eslot2.listener, eslot2.bind_problem = await self._bind(
                eslot2.listener,
                want,
                functools.partial(self._exporter_app, node),
                f"DCGM exporter pod {est.pod.key}",
            )
            if want and eslot2.listener is not None:
                eslot2.annotated = await self._annotate(
                    est.pod.namespace, est.pod.name, eslot2.listener.address, eslot2.annotated
                )
        # the Service's endpoints
        self.front_door.set_endpoints(
            [
                Endpoint(s.state.pod.key, s.listener.host, s.listener.port)
                for s in self._replicas.values()
                if s.listener is not None
            ]
        )

    def _new_replica(self, st: ReplicaState) -> _ReplicaSlot:
        spec = self._node_specs.get(st.pod.node or "", TESLA_T4)
        profile = self._profile_for(st, spec)
        clock = self._now
        runner = EngineRunner(make_engine(profile, clock(), spec), clock)
        model = st.pod.model_name or self.cfg.model_name
        replica = Replica(
            key=st.pod.key,
            model_name=model,
            max_model_len=profile.max_model_len,
            runner=runner,
            clock=clock,
            profile=profile,
        )
        log.info(
            "inference pod %s on node %s: simulating %s (model %s)",
            st.pod.key,
            st.pod.node,
            profile.kind,
            model,
        )
        return _ReplicaSlot(state=st, profile=profile, replica=replica)

    def _exporter_app(self, node: str | None) -> web.Application:
        return make_exporter_app(functools.partial(self.render_exporter, node), self.profile_name)

    def _profile_for(self, st: ReplicaState, spec: GpuSpec) -> Profile:
        """The configured profile, refined by the vLLM flags the pod itself runs with
        (--max-model-len; llm: --max-num-seqs, --max-num-batched-tokens, --gpu-memory-utilization).
        A flag that does not fit the GPU is ignored with a warning."""
        pod = st.pod
        llm = self.cfg.profile.kind is ProfileKind.LLM
        # (flag, the pod's value, the profile setting it sets, whether only llm profiles read it)
        flags: list[tuple[str, int | float | None, str, bool]] = [
            ("--max-model-len", pod.max_model_len, "max_model_len", False),
            ("--max-num-seqs", pod.max_num_seqs, "max_batch", True),
            ("--max-num-batched-tokens", pod.max_num_batched_tokens, "max_num_batched_tokens", True),
            ("--gpu-memory-utilization", pod.gpu_memory_utilization, "memory_fraction", True),
        ]
        steps: list[tuple[str, Callable[[Profile], Profile]]] = []
        for flag, value, setting, llm_only in flags:
            if value is not None and (llm or not llm_only):
                overrides: dict[str, Any] = {setting: value, "source": f"pod flag {flag}"}
                steps.append((flag, functools.partial(Profile.with_overrides, **overrides)))
        profile = self.cfg.profile
        for flag, apply in steps:
            candidate = apply(profile)
            try:
                candidate.validate(spec)
            except ConfigError as exc:
                log.warning("pod %s: ignoring its %s (%s)", pod.key, flag, exc)
                continue
            profile = candidate
        return profile

    async def _bind(
        self,
        current: Listener | None,
        want: tuple[str, int] | None,
        make_app: Callable[[], web.Application],
        what: str,
    ) -> tuple[Listener | None, str]:
        if current is not None and (want is None or (current.host, current.port) != want):
            await current.stop()
            log.info("%s: stopped serving on %s", what, current.address)
            current = None
        if want is None or current is not None:
            return current, ""
        listener = Listener(make_app(), want[0], want[1])
        try:
            await listener.start()
        except OSError as exc:
            problem = f"cannot listen on {want[0]}:{want[1]}: {exc}"
            log.error("%s: %s", what, problem)
            return None, problem
        log.info("%s: serving on http://%s", what, listener.address)
        return listener, ""

    async def _annotate(self, namespace: str, name: str, address: str, done: str) -> str:
        if self.cfg.address_mode is not AddressMode.ALLOCATE or self.annotator is None or done == address:
            return done
        await asyncio.to_thread(self.annotator, namespace, name, address)
        return address

    # -- collection ------------------------------------------------------------------------

    async def _collect_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.collect_interval_s)
            try:
                self.collect()
            except Exception:
                log.exception("collection failed")

    def collect(self) -> None:
        """Close the current window: one DCGM sample per GPU."""
        now = self._now()
        windows = {uid: slot.replica.runner.take_window() for uid, slot in self._replicas.items()}
        for key, dev in self._devices.items():
            holder = self._holders.get(key)
            slot = self._replicas.get(holder.uid) if holder else None
            # NVML: utilization is the busy share of the last sample period before the reading
            period = dev.spec.nvml_sample_period_s
            sampled = slot.replica.runner.engine.duty_over(now - period, now) if slot else None
            sample = dev.collect(
                now,
                windows.get(holder.uid) if holder else None,
                slot.profile.static_mib() if slot else 0,
                sampled,
            )
            self._readings[key] = GpuReading(
                identity=identity_for(dev.spec, key[0], key[1]),
                sample=sample,
                holder=holder.ref if holder and slot else None,
            )

    def render_exporter(self, node: str | None) -> str:
        readings = [r for (n, _), r in self._readings.items() if n == node] if node else []
        return render(readings, self.cfg.hostname_label)

    # -- status ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        fd = self.front_door
        replicas = []
        for slot in sorted(self._replicas.values(), key=lambda s: s.state.pod.key):
            eng = slot.replica.runner.engine
            slot.replica.runner.sync()
            replicas.append(
                {
                    "pod": slot.state.pod.key,
                    "node": slot.state.pod.node,
                    "ready": slot.state.pod.ready,
                    "serving": slot.listener is not None,
                    "address": slot.listener.address if slot.listener else None,
                    "problem": slot.bind_problem or slot.state.problem,
                    "gpus": list(slot.state.gpus),
                    "model": slot.replica.model_name,
                    "running": eng.running,
                    "waiting": eng.waiting,
                    "kv_cache_usage": round(eng.kv_usage, 4),
                    "num_preemptions": eng.num_preemptions,
                    "front_door_outstanding": fd.outstanding(slot.state.pod.key),
                }
            )
        gpus = []
        for (node, idx), reading in sorted(self._readings.items()):
            s = reading.sample
            gpus.append(
                {
                    "node": node,
                    "gpu": idx,
                    "uuid": reading.identity.uuid,
                    "model": reading.identity.model_name,
                    "pod": f"{reading.holder.namespace}/{reading.holder.pod}" if reading.holder else None,
                    "util_pct": s.util_pct,
                    "fb_used_mib": s.fb_used_mib,
                    "fb_free_mib": s.fb_free_mib,
                    "temp_c": s.temp_c,
                    "power_w": s.power_w,
                }
            )
        exporters = [
            {
                "pod": s.state.pod.key,
                "node": s.state.pod.node,
                "address": s.listener.address if s.listener else None,
                "problem": s.bind_problem or s.state.problem,
            }
            for s in sorted(self._exporters.values(), key=lambda s: s.state.pod.key)
        ]
        profile = asdict(self.cfg.profile)
        profile.pop("sources", None)
        profile["kind"] = str(self.cfg.profile.kind)
        profile["name"] = self.profile_name
        return {
            "simulated": True,
            "notice": SIMULATED_NOTICE,
            "profile": profile,
            "collect_interval_s": self.cfg.collect_interval_s,
            "dispatch": str(self.cfg.dispatch),
            "address_mode": str(self.cfg.address_mode),
            "front_door": {
                "address": self._front_listener.address if self._front_listener else None,
                "ready_replicas": len(fd.endpoints),
                "routed": dict(sorted(fd.routed.items())),
                "unavailable": fd.unavailable,
                "upstream_errors": fd.upstream_errors,
            },
            "replicas": replicas,
            "gpus": gpus,
            "exporters": exporters,
        }
