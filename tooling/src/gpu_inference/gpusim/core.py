"""What both engines share: finished-request timelines, collection windows, the engine base class,
and the busy-time history NVML-style utilization is sampled from. Pure, no clock."""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, NotRequired, Protocol, TypeAlias, TypedDict, TypeVar, Unpack

from gpu_inference.gpusim.params import GpuSpec, Profile

#: How much busy-time history an engine keeps for NVML-style sampling (seconds).
DUTY_HISTORY_S = 30.0


@dataclass(frozen=True)
class Finished:
    """A request the engine completed, with its modelled timeline."""

    rid: str
    prompt_tokens: int
    completion_tokens: int
    arrival: float
    started: float
    first_token_at: float
    finished: float
    #: When each output token was produced (the stream a client would see), in order.
    token_times: tuple[float, ...] = ()
    #: How often the request was preempted (its KV freed and recomputed).
    preemptions: int = 0

    @property
    def queue_s(self) -> float:
        return self.started - self.arrival

    @property
    def ttft_s(self) -> float:
        return self.first_token_at - self.arrival

    @property
    def e2e_s(self) -> float:
        return self.finished - self.arrival

    @property
    def inter_token_s(self) -> list[float]:
        """Gaps between consecutive output tokens (vLLM's inter-token latency samples)."""
        t = self.token_times
        return [b - a for a, b in itertools.pairwise(t)]

    @property
    def tpot_s(self) -> float:
        """Mean time per output token after the first (0 for a single token)."""
        if len(self.token_times) < 2:
            return 0.0
        return (self.token_times[-1] - self.token_times[0]) / (len(self.token_times) - 1)


@dataclass(frozen=True)
class Window:
    """Integrals of one engine over [start, end), handed out by `take_window`."""

    start: float
    end: float
    busy_s: float  # integral of duty
    activity_s: float  # integral of activity
    dynamic_mib_s: float  # integral of activation / KV memory
    running_s: float  # integral of running sequences
    waiting_s: float  # integral of waiting requests

    @property
    def duration(self) -> float:
        return self.end - self.start


class DutyHistory:
    """Recent (start, end, duty) segments, to answer "what share of [a, b] was the GPU busy"."""

    def __init__(self) -> None:
        self._segs: deque[tuple[float, float, float]] = deque()

    def add(self, start: float, end: float, duty: float) -> None:
        if end <= start or duty <= 0:
            return
        last = self._segs[-1] if self._segs else None
        if last is not None and last[2] == duty and abs(last[1] - start) <= 1e-12:
            self._segs[-1] = (last[0], end, duty)
        else:
            self._segs.append((start, end, duty))
        while self._segs and self._segs[0][1] < end - DUTY_HISTORY_S:
            self._segs.popleft()

    def share(self, start: float, end: float) -> float:
        """Busy share of [start, end] (time outside every segment counts as idle)."""
        if end <= start:
            return 0.0
        busy = 0.0
        for s, e, d in self._segs:
            lo, hi = max(s, start), min(e, end)
            if hi > lo:
                busy += (hi - lo) * d
        return min(1.0, busy / (end - start))


class _Tracked(Protocol):
    """A request as an engine keeps it: its id, arrival and the times of its output tokens so far."""

    rid: str
    arrival: float
    token_times: list[float]


_R = TypeVar("_R", bound=_Tracked)


class _Timeline(TypedDict):
    """What an engine knows of a completed request beyond `_Tracked` (fields of `Finished`)."""

    prompt_tokens: int
    completion_tokens: int
    started: float
    first_token_at: float
    preemptions: NotRequired[int]


class EngineState(ABC, Generic[_R]):
    """The bookkeeping both engines share: clock, queue, running set, counters, window integrals.

    This is also what the HTTP layer and the collector need from an engine (`SimEngine`). A
    subclass implements `advance`, `submit` and the figures it models; `take_window` hands out
    the integrals that its `advance` accumulates in ``_busy``, ``_activity``, ``_mem``,
    ``_run_int`` and ``_wait_int``.
    """

    #: whether output tokens appear between engine events (the runner then polls while a
    #: client streams)
    tokens_between_events: ClassVar[bool]

    def __init__(self, profile: Profile, now: float, gpu: GpuSpec) -> None:
        profile.validate(gpu)
        self.profile = profile
        self.kv_capacity = profile.kv_capacity_tokens(gpu)
        self._t = now
        self._waiting: deque[_R] = deque()
        self._running: list[_R] = []
        self._by_id: dict[str, _R] = {}
        self._finished: list[Finished] = []
        self._history = DutyHistory()
        self._win_start = now
        self._busy = self._activity = self._mem = self._run_int = self._wait_int = 0.0
        self._prompt_total = 0
        self._gen_total = 0
        self._preemptions = 0

    @property
    def now(self) -> float:
        return self._t

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def num_preemptions(self) -> int:
        """How often a running request was preempted (its KV freed and recomputed)."""
        return self._preemptions

    @property
    def prompt_tokens_total(self) -> int:
        return self._prompt_total

    @property
    def generation_tokens_total(self) -> int:
        return self._gen_total

    def token_times(self, rid: str) -> list[float]:
        """Output token times of a waiting or running request so far (empty when unknown)."""
        req = self._by_id.get(rid)
        return list(req.token_times) if req is not None else []

    def tokens_out(self, rid: str) -> int:
        """Output tokens of a waiting or running request so far (0 when unknown)."""
        req = self._by_id.get(rid)
        return len(req.token_times) if req is not None else 0

    def duty_over(self, start: float, end: float) -> float:
        """Share of [start, end] the GPU was busy (advance to `end` first)."""
        return self._history.share(start, end)

    def pop_finished(self) -> list[Finished]:
        """The requests completed since the previous call."""
        done, self._finished = self._finished, []
        return done

    def take_window(self, now: float) -> Window:
        """Integrals since the previous call (or creation), then start a new window."""
        self.advance(now)
        win = Window(start=self._win_start, end=self._t, busy_s=self._busy, activity_s=self._activity,
                     dynamic_mib_s=self._mem, running_s=self._run_int, waiting_s=self._wait_int)  # fmt: skip
        self._win_start = self._t
        self._busy = self._activity = self._mem = self._run_int = self._wait_int = 0.0
        return win

    def abort(self, rid: str, now: float) -> bool:
        """Drop a waiting or running request (the client went away). True if it was found."""
        self.advance(now)
        req = self._by_id.pop(rid, None)
        if req is None:
            return False
        was_running = req not in self._waiting
        if was_running:
            self._running.remove(req)
        else:
            self._waiting.remove(req)
        self._dropped(req, was_running)
        return True

    def _retire(self, req: _R, at: float, **timeline: Unpack[_Timeline]) -> None:
        """Forget `req`, completed at `at`, and keep its timeline for `pop_finished`."""
        self._by_id.pop(req.rid, None)
        record = Finished(
            rid=req.rid, arrival=req.arrival, finished=at, token_times=tuple(req.token_times), **timeline
        )
        self._finished.append(record)

    def _check_new(self, rid: str) -> None:
        if rid in self._by_id:
            raise ValueError(f"duplicate request id {rid}")

    @property
    @abstractmethod
    def kv_usage(self) -> float:
        """Share of the KV cache in use, 0..1."""

    @abstractmethod
    def dynamic_mib(self) -> float:
        """Framebuffer in use beyond the server's static share (activations or KV), MiB."""

    @abstractmethod
    def next_event_time(self) -> float | None:
        """When the engine's state changes next on its own (None when idle)."""

    @abstractmethod
    def submit(self, rid: str, prompt_tokens: int, completion_tokens: int, now: float) -> None:
        """Queue a request at `now`. Raises ValueError when it can never run."""

    @abstractmethod
    def advance(self, now: float) -> None:
        """Run the engine up to `now`."""

    @abstractmethod
    def _dropped(self, req: _R, was_running: bool) -> None:
        """Release what `req` held; `abort` has just taken it out of the queue or running set."""


#: What the HTTP layer and the collector need from an engine (classic or llm).
SimEngine: TypeAlias = EngineState[Any]
