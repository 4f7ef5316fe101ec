"""The ``llm`` profile: a continuous-batching engine that schedules like vLLM V1.

Pure and discrete: the engine runs steps back to back while it has work; each step's duration
comes from the profile's step-time model and every state change happens at a step's end, so a
caller that passes any clock (the event loop's, or a virtual one in tests) gets the same
timeline. Requests that arrive during a step join at the next step, as in vLLM's engine loop.

One step, following vLLM V1's ``Scheduler.schedule`` (FCFS policy, chunked prefill on):

1. The token budget is ``max_num_batched_tokens``. Running requests are visited in admission
   order; each gets ``min(tokens not yet computed, budget left)`` tokens: 1 while it decodes,
   a chunk of its prompt while it prefills. KV blocks of ``block_size`` tokens are allocated as
   the request grows; when none are free, the newest running request is preempted (recompute:
   its blocks are freed, its progress reset, it goes back to the head of the waiting queue and
   `num_preemptions` counts it), until the allocation fits or the request itself was preempted.
2. If nothing was preempted in this step, waiting requests are admitted in order while the
   budget lasts, fewer than ``max_num_seqs`` run, and the KV pool has blocks for their chunk.
3. The step takes ``base + tokens x per_token + context x kv_read`` seconds. At its end every
   request whose scheduled tokens complete its sequence samples one new output token.

So a long prompt's prefill chunk shares a step with everyone's decode and stretches that step:
everyone's inter-token latency grows while it prefills.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gpu_inference.gpusim.core import EngineState
from gpu_inference.gpusim.params import TESLA_T4, GpuSpec, Profile, ProfileKind


@dataclass
class _Req:
    rid: str
    prompt: int
    max_out: int
    arrival: float
    out: int = 0
    computed: int = 0
    blocks: int = 0
    started: float | None = None
    preemptions: int = 0
    is_running: bool = False
    token_times: list[float] = field(default_factory=list)

    @property
    def num_tokens(self) -> int:
        return self.prompt + self.out


@dataclass(frozen=True)
class _Step:
    start: float
    end: float
    scheduled: tuple[tuple[_Req, int], ...]
    tokens: int
    activity: float


class BatchEngine(EngineState[_Req]):
    """vLLM V1-style continuous batching on one GPU (see the module docstring)."""

    #: tokens appear only at step ends, which are engine events
    tokens_between_events = False

    def __init__(self, profile: Profile, now: float, gpu: GpuSpec = TESLA_T4) -> None:
        if profile.kind is not ProfileKind.LLM:
            raise ValueError("BatchEngine needs an llm profile")
        super().__init__(profile, now, gpu)
        self.total_blocks = self.kv_capacity // profile.block_size
        self._free_blocks = self.total_blocks
        self._step: _Step | None = None
        self.steps = 0

    # -- observers -------------------------------------------------------------------------

    @property
    def used_blocks(self) -> int:
        return self.total_blocks - self._free_blocks

    @property
    def kv_usage(self) -> float:
        """Share of KV blocks in use, 0..1 (vLLM's kv_cache_usage_perc)."""
        return self.used_blocks / self.total_blocks if self.total_blocks else 0.0

    @property
    def step_running(self) -> bool:
        return self._step is not None

    def dynamic_mib(self) -> float:
        return self.used_blocks * self.profile.block_size * self.profile.kv_mib_per_token

    def next_event_time(self) -> float | None:
        """End of the step in progress (None when idle)."""
        return self._step.end if self._step is not None else None

    # -- commands --------------------------------------------------------------------------

    def submit(self, rid: str, prompt_tokens: int, completion_tokens: int, now: float) -> None:
        """Queue a request at `now`; it joins the next step. ValueError if it can never run."""
        self._check_new(rid)
        if prompt_tokens < 1 or completion_tokens < 1:
            raise ValueError("need prompt_tokens >= 1 and completion_tokens >= 1")
        need = prompt_tokens + completion_tokens
        if need > self.kv_capacity:
            raise ValueError(f"request needs {need} KV tokens, the cache holds {self.kv_capacity}")
        self.advance(now)
        req = _Req(rid=rid, prompt=prompt_tokens, max_out=completion_tokens, arrival=now)
        self._by_id[rid] = req
        self._waiting.append(req)
        if self._step is None:
            self._start_step(self._t)

    def advance(self, now: float) -> None:
        """Run every step that ends by `now`."""
        now = max(now, self._t)
        while self._step is not None and self._step.end <= now:
            step = self._step
            self._integrate(step.end)
            self._finish_step(step)
            self._step = None
            self._start_step(step.end)
        self._integrate(now)

    # -- internals -------------------------------------------------------------------------

    def _blocks_for(self, tokens: int) -> int:
        return math.ceil(tokens / self.profile.block_size)

    def _dropped(self, req: _Req, was_running: bool) -> None:
        """An aborted request's KV blocks are freed."""
        req.is_running = False
        self._free(req)

    def _free(self, req: _Req) -> None:
        self._free_blocks += req.blocks
        req.blocks = 0

    def _allocate(self, req: _Req, n: int) -> bool:
        need = self._blocks_for(req.computed + n) - req.blocks
        if need > self._free_blocks:
            return False
        if need > 0:
            self._free_blocks -= need
            req.blocks += need
        return True

    def _preempt(self, victim: _Req) -> None:
        victim.is_running = False
        self._free(victim)
        victim.computed = 0
        victim.preemptions += 1
        self._preemptions += 1
        self._waiting.appendleft(victim)

    def _schedule(self) -> list[tuple[_Req, int]]:
        p = self.profile
        budget = p.max_num_batched_tokens
        scheduled: list[tuple[_Req, int]] = []
        preempted = False
        i = 0
        while i < len(self._running) and budget > 0:
            req = self._running[i]
            n = min(req.num_tokens - req.computed, budget)
            if n <= 0:
                i += 1
                continue
            ok = True
            while not self._allocate(req, n):
                victim = self._running.pop()
                self._preempt(victim)
                preempted = True
                if victim is req:
                    ok = False
                    break
            if not ok:
                break
            scheduled.append((req, n))
            budget -= n
            i += 1
        if not preempted:
            while self._waiting and budget > 0 and len(self._running) < p.max_batch:
                req = self._waiting[0]
                n = min(req.num_tokens - req.computed, budget)
                if not self._allocate(req, n):
                    break
                self._waiting.popleft()
                if req.started is None:
                    req.started = self._t
                self._running.append(req)
                req.is_running = True
                scheduled.append((req, n))
                budget -= n
        return scheduled

    def _start_step(self, at: float) -> None:
        if not self._running and not self._waiting:
            return
        scheduled = self._schedule()
        if not scheduled:
            return
        tokens = sum(n for _, n in scheduled)
        context = sum(req.computed + n for req, n in scheduled)
        dur = self.profile.step_s(tokens, context)
        end = at + dur
        if end <= at:  # below the float resolution of a very large clock: still make progress
            end = math.nextafter(at, math.inf)
        self._step = _Step(at, end, tuple(scheduled), tokens, self.profile.step_activity(tokens, context))
        self._history.add(at, end, self.profile.busy_duty)
        self.steps += 1

    def _finish_step(self, step: _Step) -> None:
        still: list[_Req] = []
        done: set[str] = set()
        for req, n in step.scheduled:
            if not req.is_running:
                continue  # aborted or preempted during the step: its results are dropped
            req.computed += n
            if req.computed >= req.num_tokens:
                req.out += 1
                req.token_times.append(step.end)
                self._gen_total += 1
                if req.out == 1:
                    self._prompt_total += req.prompt
                if req.out >= req.max_out:
                    done.add(req.rid)
        if done:
            for req in self._running:
                if req.rid in done:
                    self._complete(req, step.end)
                else:
                    still.append(req)
            self._running = still

    def _complete(self, req: _Req, at: float) -> None:
        req.is_running = False
        self._free(req)
        self._retire(
            req,
            at,
            prompt_tokens=req.prompt,
            completion_tokens=req.out,
            started=req.started if req.started is not None else at,
            first_token_at=req.token_times[0] if req.token_times else at,
            preemptions=req.preemptions,
        )

    def _integrate(self, until: float) -> None:
        dt = until - self._t
        if dt <= 0:
            return
        step = self._step
        if step is not None:
            self._busy += dt * self.profile.busy_duty
            self._activity += dt * step.activity
        self._mem += dt * self.dynamic_mib()
        self._run_int += dt * len(self._running)
        self._wait_int += dt * len(self._waiting)
        self._t = until
