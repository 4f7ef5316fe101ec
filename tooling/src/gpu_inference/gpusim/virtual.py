"""Driving an engine in-process on a virtual clock: deterministic and as fast as the CPU allows.

The engines (`model.Engine`, `batching.BatchEngine`) take time as an argument and never read a
clock, so a load can be replayed without sleeping: `run_virtual` submits each arrival at its
time, advances the engine between arrivals (and to each probe time), and finishes the work.
The same arrivals always give the same timelines. Everything it returns is SIMULATED.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from gpu_inference.gpusim.model import Finished, GpuSpec, SimEngine, make_engine
from gpu_inference.gpusim.params import TESLA_T4, Profile


@dataclass(frozen=True)
class Arrival:
    """One request of a virtual load."""

    at: float
    prompt_tokens: int
    completion_tokens: int
    rid: str = ""


@dataclass(frozen=True)
class Snapshot:
    """The engine's gauges at one instant."""

    at: float
    running: int
    waiting: int
    kv_usage: float
    num_preemptions: int


@dataclass
class VirtualRun:
    """What `run_virtual` produced: finished requests (by id) and the probe snapshots."""

    finished: dict[str, Finished] = field(default_factory=dict)
    snapshots: list[Snapshot] = field(default_factory=list)
    engine: SimEngine | None = None


def snapshot(engine: SimEngine, at: float) -> Snapshot:
    engine.advance(at)
    return Snapshot(at, engine.running, engine.waiting, engine.kv_usage, engine.num_preemptions)


def run_virtual(
    profile: Profile | SimEngine,
    arrivals: Iterable[Arrival],
    *,
    probe_times: Sequence[float] = (),
    gpu: GpuSpec = TESLA_T4,
    start: float = 0.0,
    on_event: Callable[[SimEngine, float], None] | None = None,
    max_events: int = 10_000_000,
) -> VirtualRun:
    """Replay `arrivals` on a fresh engine of `profile` (or on the engine given) to completion."""
    engine: SimEngine = make_engine(profile, start, gpu) if isinstance(profile, Profile) else profile
    run = VirtualRun(engine=engine)
    pending = sorted(arrivals, key=lambda a: a.at)
    probes = sorted(probe_times)
    events = 0

    def collect() -> None:
        for f in engine.pop_finished():
            run.finished[f.rid] = f

    i = j = 0
    while True:
        candidates = []
        if i < len(pending):
            candidates.append(pending[i].at)
        if j < len(probes):
            candidates.append(probes[j])
        nxt = engine.next_event_time()
        if nxt is not None:
            candidates.append(nxt)
        if not candidates:
            break
        t = min(candidates)
        events += 1
        if events > max_events:
            raise RuntimeError("virtual run made no progress")
        engine.advance(t)
        if on_event is not None:
            on_event(engine, t)
        collect()
        while j < len(probes) and probes[j] <= t:
            run.snapshots.append(snapshot(engine, probes[j]))
            j += 1
        while i < len(pending) and pending[i].at <= t:
            a = pending[i]
            engine.submit(a.rid or f"r{i}", a.prompt_tokens, a.completion_tokens, a.at)
            i += 1
    collect()
    return run


def poisson_arrivals(
    rate: float, duration: float, prompt_tokens: int, completion_tokens: int, seed: int = 0
) -> list[Arrival]:
    """Seeded Poisson arrivals of identical requests over [0, duration)."""
    rng = random.Random(seed)  # noqa: S311 (a simulated load)
    out: list[Arrival] = []
    t = 0.0
    while True:
        t += rng.expovariate(rate) if rate > 0 else math.inf
        if t >= duration:
            return out
        out.append(Arrival(t, prompt_tokens, completion_tokens, f"r{len(out)}"))
