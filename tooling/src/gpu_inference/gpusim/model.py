"""The simulated GPU: the classic engine, the DCGM device figures, and what both engines share.

Everything here is pure: time is a float passed in by the caller (seconds on any monotonic
clock), nothing sleeps and nothing reads a clock, so the behaviour is unit-testable exactly
(drive an engine with a virtual clock: `gpu_inference.gpusim.virtual`).

* `Engine` is the ``classic`` profile: a server without batching across requests. Requests wait
  in a FIFO queue, up to `max_batch` of them run at once, each at ``capacity / max_batch``
  decode-equivalent tokens/s; work is ``completion_tokens + prompt_tokens / prefill_speedup``.
  It advances in exact piecewise-linear segments and keeps integrals of GPU busy time, compute
  activity and dynamic memory, which `take_window` hands out per collection interval.
* `gpu_inference.gpusim.batching.BatchEngine` is the ``llm`` profile (vLLM V1's scheduler);
  `make_engine` picks the engine of a profile.
* `GpuDevice` turns one window into what DCGM would report for the device: utilization sampled
  like NVML (duty cycle over the last sample period), framebuffer used/free, power between idle
  and TDP, temperature following power with a thermal time constant, and clocks.

Parameters and their sources: data/profiles.yaml, read by `gpu_inference.gpusim.params`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from gpu_inference.gpusim.batching import BatchEngine
from gpu_inference.gpusim.core import EngineState, Finished, SimEngine, Window
from gpu_inference.gpusim.params import (
    CLASSIC_DEFAULT,
    DEFAULT_PROFILES,
    GPU_SPECS,
    LLM_DEFAULT,
    TESLA_T4,
    GpuSpec,
    Profile,
    ProfileKind,
)

__all__ = [
    "CLASSIC_DEFAULT",
    "DEFAULT_PROFILES",
    "GPU_SPECS",
    "LLM_DEFAULT",
    "TESLA_T4",
    "Engine",
    "Finished",
    "GpuDevice",
    "GpuSample",
    "GpuSpec",
    "Profile",
    "ProfileKind",
    "SimEngine",
    "Window",
    "gpu_spec_for_node",
    "make_engine",
]

#: Relative tolerance when deciding that a sequence has finished its work.
_EPS = 1e-9

#: Node labels that name the GPU model, and the spec each value maps to.
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
_ACCELERATOR_SPECS: dict[str, str] = {"nvidia-tesla-t4": TESLA_T4.key}
_INSTANCE_SPECS: dict[str, str] = {"g4dn.xlarge": TESLA_T4.key, "g4dn.2xlarge": TESLA_T4.key}


def gpu_spec_for_node(labels: dict[str, str]) -> tuple[GpuSpec, bool]:
    """The GPU model of a node from its labels; the flag says whether it was recognised.

    Unrecognised nodes are simulated as a Tesla T4 (the project's only GPU node type).
    """
    key = _ACCELERATOR_SPECS.get(labels.get(ACCELERATOR_LABEL, "")) or _INSTANCE_SPECS.get(
        labels.get(INSTANCE_TYPE_LABEL, "")
    )
    if key is None:
        return TESLA_T4, False
    return GPU_SPECS[key], True


# --------------------------------------------------------------------------------------------
# Engine: queue + batch of one replica
# --------------------------------------------------------------------------------------------


@dataclass
class _Seq:
    rid: str
    prompt_tokens: int
    completion_tokens: int
    arrival: float
    work: float
    first_token_work: float
    done: float = 0.0
    started: float = 0.0
    first_token_at: float | None = None
    token_times: list[float] = field(default_factory=list)


class Engine(EngineState[_Seq]):
    """The classic profile: FIFO queue plus parallel slots, advanced in exact piecewise-linear steps.

    Output token ``k`` (1-based) of a sequence is produced when its work reaches
    ``prompt / prefill_speedup + k``, so streamed tokens arrive evenly while its rate is constant.
    """

    #: tokens appear between engine events (the runner polls while a client streams)
    tokens_between_events = True

    def __init__(self, profile: Profile, now: float, gpu: GpuSpec = TESLA_T4) -> None:
        if profile.kind is not ProfileKind.CLASSIC:
            raise ValueError("Engine is the classic profile's engine; use make_engine for llm")
        super().__init__(profile, now, gpu)

    # -- observers -------------------------------------------------------------------------

    @property
    def kv_usage(self) -> float:
        """0: the classic profile has no KV cache."""
        return 0.0

    def dynamic_mib(self) -> float:
        return float(self.running * self.profile.activation_mib)

    def next_event_time(self) -> float | None:
        """When the next running sequence completes (None when nothing runs)."""
        if not self._running:
            return None
        rate = self.profile.seq_rate(len(self._running))
        return self._t + min(s.work - s.done for s in self._running) / rate

    # -- commands --------------------------------------------------------------------------

    def submit(self, rid: str, prompt_tokens: int, completion_tokens: int, now: float) -> None:
        """Queue a request at `now`. Raises ValueError when it can never run."""
        self._check_new(rid)
        if prompt_tokens < 0 or completion_tokens < 1:
            raise ValueError("need prompt_tokens >= 0 and completion_tokens >= 1")
        self.advance(now)
        prefill = prompt_tokens / self.profile.prefill_speedup
        seq = _Seq(
            rid=rid,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            arrival=now,
            work=self.profile.work(prompt_tokens, completion_tokens),
            first_token_work=prefill + 1.0,
        )
        self._by_id[rid] = seq
        self._waiting.append(seq)
        self._admit()

    def advance(self, now: float) -> None:
        """Run the model up to `now`, completing and admitting sequences on the way."""
        now = max(now, self._t)  # clocks never go back; a late caller just sees the current state
        while True:
            if not self._running:
                self._integrate(now - self._t)
                self._t = now
                return
            rate = self.profile.seq_rate(len(self._running))
            least = min(s.work - s.done for s in self._running)
            next_done = self._t + least / rate
            stop = min(next_done, now)
            dt = stop - self._t
            if dt <= 0 and next_done <= now:
                # The time left is below the clock's float resolution at this magnitude: those
                # sequences are done now (without this the loop would make no progress, forever).
                for seq in self._running:
                    if seq.work - seq.done <= least:
                        seq.done = seq.work
            self._integrate(dt)
            for seq in self._running:
                before = seq.done
                seq.done = min(seq.work, seq.done + rate * dt)
                self._emit_tokens(seq, before, rate)
            self._t = stop
            if next_done > now:
                return
            still: list[_Seq] = []
            for seq in self._running:
                if seq.work - seq.done <= _EPS * max(1.0, seq.work):
                    self._complete(seq)
                else:
                    still.append(seq)
            self._running = still
            self._admit()

    # -- internals -------------------------------------------------------------------------

    def _dropped(self, req: _Seq, was_running: bool) -> None:
        if was_running:
            self._admit()

    def _emit_tokens(self, seq: _Seq, before: float, rate: float) -> None:
        """Record the output tokens whose work threshold lies in (before, seq.done]."""
        prefill = seq.first_token_work - 1.0
        have = len(seq.token_times)
        tol = _EPS * max(1.0, seq.work)
        while have < seq.completion_tokens and prefill + have + 1 <= seq.done + tol:
            threshold = prefill + have + 1
            at = self._t + max(0.0, threshold - before) / rate
            seq.token_times.append(at)
            if have == 0:
                seq.first_token_at = at
                self._prompt_total += seq.prompt_tokens
            self._gen_total += 1
            have += 1

    def _integrate(self, dt: float) -> None:
        if dt <= 0:
            return
        b = len(self._running)
        duty = self.profile.duty(b)
        self._history.add(self._t, self._t + dt, duty)
        self._busy += dt * duty
        self._activity += dt * self.profile.activity(b)
        self._mem += dt * self.dynamic_mib()
        self._run_int += dt * b
        self._wait_int += dt * len(self._waiting)

    def _admit(self) -> None:
        while self._waiting and len(self._running) < self.profile.max_batch:
            head = self._waiting.popleft()
            head.started = self._t
            self._running.append(head)

    def _complete(self, seq: _Seq) -> None:
        while len(seq.token_times) < seq.completion_tokens:  # float slack at the very end
            seq.token_times.append(self._t)
            self._gen_total += 1
        self._retire(
            seq,
            self._t,
            prompt_tokens=seq.prompt_tokens,
            completion_tokens=seq.completion_tokens,
            started=seq.started,
            first_token_at=seq.first_token_at if seq.first_token_at is not None else self._t,
        )


def make_engine(profile: Profile, now: float, gpu: GpuSpec = TESLA_T4) -> SimEngine:
    """A fresh engine for `profile` whose clock starts at `now`: `Engine` for classic,
    `BatchEngine` for llm."""
    if profile.kind is ProfileKind.LLM:
        return BatchEngine(profile, now, gpu)
    return Engine(profile, now, gpu)


# --------------------------------------------------------------------------------------------
# Device: what DCGM reports
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuSample:
    """One DCGM collection of one GPU."""

    util_pct: int
    fb_used_mib: int
    fb_free_mib: int
    temp_c: int
    power_w: float
    sm_clock_mhz: int
    mem_clock_mhz: int
    mem_copy_util_pct: int = 0
    energy_mj: int = 0  # counter: energy since the device appeared
    xid_errors: int = 0
    thermal_violation_us: int = 0  # counter; throttling is not modelled
    power_violation_us: int = 0  # counter; throttling is not modelled
    pcie_replays: int = 0  # counter


@dataclass
class GpuDevice:
    """One physical GPU on one node; keeps its thermal state between collections."""

    spec: GpuSpec
    node: str
    index: int
    last_collect: float
    temp_c: float = field(default=math.nan)
    energy_mj: float = 0.0
    sample: GpuSample | None = None
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if math.isnan(self.temp_c):
            self.temp_c = self.spec.temp_idle_c
        self._rng = random.Random(f"{self.spec.noise_seed}/{self.node}/{self.index}")  # noqa: S311
        if self.sample is None:
            self.sample = self._make_sample(0.0, 0.0, 0.0)

    def collect(
        self, now: float, window: Window | None, static_mib: int, sampled_util: float | None = None
    ) -> GpuSample:
        """Close the interval (last_collect, now] with the engine's `window` (None = idle).

        `sampled_util` is the duty cycle over NVML's last sample period before `now` (what
        DCGM_FI_DEV_GPU_UTIL reports); without it the window's average duty is used. Power,
        temperature, memory and energy always use the whole window.
        """
        dt = now - self.last_collect
        if dt <= 0:
            assert self.sample is not None
            return self.sample
        util = activity = mem = 0.0
        if window is not None and window.duration > 0:
            # The engine may be younger than the interval: the rest of the interval was idle.
            span = max(dt, window.duration)
            util = min(1.0, window.busy_s / span)
            activity = min(1.0, window.activity_s / span)
            mem = window.dynamic_mib_s / span
        load = 0.5 * util + 0.5 * activity
        reported = util if sampled_util is None else sampled_util
        if self.spec.util_noise_pct > 0 and reported > 0:
            reported += self._rng.gauss(0.0, self.spec.util_noise_pct / 100.0)
        target = self.spec.temp_idle_c + (self.spec.temp_full_load_c - self.spec.temp_idle_c) * load
        self.temp_c = target + (self.temp_c - target) * math.exp(-dt / self.spec.thermal_tau_s)
        self.energy_mj += self._power(load) * dt * 1000.0
        self.last_collect = now
        self.sample = self._make_sample(reported, load, static_mib + mem)
        return self.sample

    def _power(self, load: float) -> float:
        return self.spec.idle_power_w + (self.spec.tdp_w - self.spec.idle_power_w) * load

    def _make_sample(self, util: float, load: float, used_mib: float) -> GpuSample:
        used = min(self.spec.fb_total_mib, round(used_mib))
        busy = util > 0 or load > 0
        return GpuSample(
            util_pct=max(0, min(100, round(util * 100))),
            fb_used_mib=used,
            fb_free_mib=self.spec.fb_total_mib - used,
            temp_c=round(self.temp_c),
            power_w=round(self._power(load), 3),
            sm_clock_mhz=self.spec.sm_clock_max_mhz if busy else self.spec.sm_clock_idle_mhz,
            mem_clock_mhz=self.spec.mem_clock_max_mhz if busy else self.spec.mem_clock_idle_mhz,
            mem_copy_util_pct=max(0, min(100, round(100 * load * self.spec.mem_copy_share))),
            energy_mj=int(self.energy_mj),
        )
