"""The simulated GPU: a capacity and queue model per replica, and the device figures it drives.

Everything here is pure: time is a float passed in by the caller (seconds on any monotonic
clock), nothing sleeps and nothing reads a clock, so the behaviour is unit-testable exactly.

Two layers:

* `Engine` models the inference server on one replica: requests wait in a FIFO queue, up to
  `max_batch` of them run at once, and each running sequence progresses at a rate that depends
  on how many run together. It keeps integrals of GPU busy time, compute activity and dynamic
  memory, which `take_window` hands out per collection interval.
* `GpuDevice` turns one window into what DCGM would report for the device: utilization
  (time-averaged over the interval), framebuffer used/free, power between idle and TDP,
  temperature following power with a thermal time constant, and clocks.

Work is counted in "decode-equivalent tokens": a request needs
``completion_tokens + prompt_tokens / prefill_speedup`` units of work.

Profiles (see docs/gpu-simulator.md for the equations and defaults):

* ``classic``: no batching across requests (``max_batch`` slots, 1 by default) each at
  ``capacity / max_batch`` tokens/s. Utilization = busy slots / slots, so it follows load
  linearly up to 100 % and latency grows with the queue beyond that.
* ``llm``: continuous batching. A decode step over ``b`` sequences takes
  ``step(b) = 1/single_stream + per_seq * (b - 1)`` seconds, with ``per_seq`` chosen so that
  ``max_batch`` sequences together make ``capacity`` tokens/s. The GPU's duty cycle is
  ``busy_duty`` whenever any sequence runs, so utilization saturates at low load; the queue
  (requests waiting for a batch slot or for KV cache) is the honest load signal.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from enum import StrEnum

from gpu_inference.errors import ConfigError

#: Relative tolerance when deciding that a sequence has finished its work.
_EPS = 1e-9


# --------------------------------------------------------------------------------------------
# GPU hardware
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuSpec:
    """What the simulator needs to know about one GPU model.

    Framebuffer size, TDP and clock limits are the vendor's figures; idle power, temperatures
    and the thermal time constant are modelling assumptions (not measured here).
    """

    key: str
    model_name: str  # DCGM's modelName label
    fb_total_mib: int
    tdp_w: float
    idle_power_w: float
    sm_clock_idle_mhz: int
    sm_clock_max_mhz: int
    mem_clock_idle_mhz: int
    mem_clock_max_mhz: int
    temp_idle_c: float
    temp_full_load_c: float
    thermal_tau_s: float
    mem_copy_share: float  # DCGM_FI_DEV_MEM_COPY_UTIL = this share of the load (a crude assumption)
    pci_device_base: int  # PCI device number of GPU 0 (bus id 00000000:00:<dev>.0)


#: NVIDIA T4 as on g4dn instances: 15360 MiB, 70 W, 1590 MHz max SM clock, 5001 MHz memory clock.
TESLA_T4 = GpuSpec(
    key="tesla-t4",
    model_name="Tesla T4",
    fb_total_mib=15360,
    tdp_w=70.0,
    idle_power_w=10.0,
    sm_clock_idle_mhz=300,
    sm_clock_max_mhz=1590,
    mem_clock_idle_mhz=405,
    mem_clock_max_mhz=5001,
    temp_idle_c=32.0,
    temp_full_load_c=72.0,
    thermal_tau_s=45.0,
    mem_copy_share=0.6,
    pci_device_base=0x1E,
)

GPU_SPECS: dict[str, GpuSpec] = {TESLA_T4.key: TESLA_T4}

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
# Profiles
# --------------------------------------------------------------------------------------------


class ProfileKind(StrEnum):
    CLASSIC = "classic"
    LLM = "llm"


@dataclass(frozen=True)
class Profile:
    """How one replica uses its GPU. All figures are modelling assumptions, documented."""

    kind: ProfileKind
    #: Decode-equivalent tokens/s the GPU sustains when all `max_batch` slots are busy.
    capacity_tps: float
    #: Sequences on the GPU at once (classic: parallel slots; llm: vLLM's max_num_seqs).
    max_batch: int
    #: llm only: tokens/s of one sequence running alone (1 / decode step time at batch 1).
    single_stream_tps: float
    #: Prompt tokens are processed this many times faster than generated tokens.
    prefill_speedup: float
    #: llm only: duty cycle (0..1) the GPU reports while at least one sequence runs.
    busy_duty: float
    #: Framebuffer taken by the model weights once the server has loaded them (MiB).
    weights_mib: int
    #: Framebuffer taken by the CUDA context and runtime (MiB).
    context_mib: int
    #: classic only: framebuffer per running request (activations, MiB).
    activation_mib: int
    #: llm only: KV cache per token held by a running sequence (MiB).
    kv_mib_per_token: float
    #: llm only: share of the framebuffer the server may use (vLLM's gpu_memory_utilization).
    memory_fraction: float
    #: Longest prompt + completion accepted (tokens).
    max_model_len: int

    # -- validation ------------------------------------------------------------------------

    def validate(self, gpu: GpuSpec = TESLA_T4) -> None:
        """Raise ConfigError naming the option when the parameters cannot describe a GPU."""
        if not self.capacity_tps > 0:
            raise ConfigError("--capacity", f"must be > 0 tokens/s, got {self.capacity_tps}", "pass e.g. 400")
        if self.max_batch < 1:
            raise ConfigError("--max-batch", f"must be >= 1, got {self.max_batch}", "pass e.g. 32")
        if not self.prefill_speedup > 0:
            raise ConfigError("prefill_speedup", "must be > 0", "use a positive speed-up, e.g. 20")
        if not 0 < self.busy_duty <= 1:
            raise ConfigError("busy_duty", f"must be in (0, 1], got {self.busy_duty}", "use e.g. 1.0")
        if self.max_model_len < 2:
            raise ConfigError("--max-model-len", "must be >= 2 tokens", "pass e.g. 4096")
        static = self.weights_mib + self.context_mib
        if static >= gpu.fb_total_mib:
            raise ConfigError(
                "weights_mib/context_mib",
                f"{static} MiB do not fit in the {gpu.model_name}'s {gpu.fb_total_mib} MiB",
                "choose a smaller model",
            )
        if self.kind is ProfileKind.LLM:
            if not self.single_stream_tps > 0:
                raise ConfigError("--single-stream", "must be > 0 tokens/s", "pass e.g. 25")
            if self.capacity_tps < self.single_stream_tps:
                raise ConfigError(
                    "--capacity",
                    f"{self.capacity_tps} tokens/s is below the single-stream rate {self.single_stream_tps}",
                    "batching cannot lower throughput: raise --capacity or lower --single-stream",
                )
            if self.capacity_tps > self.max_batch * self.single_stream_tps:
                raise ConfigError(
                    "--capacity",
                    f"{self.capacity_tps} tokens/s exceeds --max-batch x --single-stream "
                    f"({self.max_batch} x {self.single_stream_tps})",
                    "lower --capacity or raise --max-batch",
                )
            if not 0 < self.memory_fraction <= 1:
                raise ConfigError("memory_fraction", "must be in (0, 1]", "use e.g. 0.9")
            if self.kv_capacity_tokens(gpu) < self.max_model_len:
                raise ConfigError(
                    "--max-model-len",
                    f"the KV cache holds {self.kv_capacity_tokens(gpu)} tokens, fewer than one "
                    f"{self.max_model_len}-token sequence",
                    "lower --max-model-len or the model size",
                )

    # -- rates -----------------------------------------------------------------------------

    @property
    def _step_base_s(self) -> float:
        return 1.0 / self.single_stream_tps

    @property
    def _step_per_seq_s(self) -> float:
        if self.max_batch == 1:
            return 0.0
        return (self.max_batch / self.capacity_tps - self._step_base_s) / (self.max_batch - 1)

    def seq_rate(self, running: int) -> float:
        """Decode-equivalent tokens/s each of `running` sequences makes."""
        if running <= 0:
            return 0.0
        if self.kind is ProfileKind.CLASSIC:
            return self.capacity_tps / self.max_batch
        return 1.0 / (self._step_base_s + self._step_per_seq_s * (running - 1))

    def throughput(self, running: int) -> float:
        """Decode-equivalent tokens/s of the whole GPU with `running` sequences."""
        return running * self.seq_rate(running)

    def duty(self, running: int) -> float:
        """The GPU's instantaneous duty cycle (what DCGM_FI_DEV_GPU_UTIL averages), 0..1."""
        if running <= 0:
            return 0.0
        if self.kind is ProfileKind.CLASSIC:
            return min(1.0, running / self.max_batch)
        return self.busy_duty

    def activity(self, running: int) -> float:
        """Share of the GPU's peak work rate in use, 0..1 (drives power with the duty cycle)."""
        return min(1.0, self.throughput(running) / self.capacity_tps)

    def kv_capacity_tokens(self, gpu: GpuSpec = TESLA_T4) -> int:
        """Tokens the KV cache holds (llm); effectively unbounded for classic."""
        if self.kind is ProfileKind.CLASSIC:
            return 2**62
        pool = gpu.fb_total_mib * self.memory_fraction - self.weights_mib - self.context_mib
        return max(0, int(pool / self.kv_mib_per_token))

    def work(self, prompt_tokens: int, completion_tokens: int) -> float:
        return completion_tokens + prompt_tokens / self.prefill_speedup

    def static_mib(self) -> int:
        return self.weights_mib + self.context_mib

    def with_overrides(
        self,
        capacity_tps: float | None = None,
        max_batch: int | None = None,
        single_stream_tps: float | None = None,
        max_model_len: int | None = None,
        memory_fraction: float | None = None,
    ) -> Profile:
        profile = self
        if memory_fraction is not None:
            profile = replace(profile, memory_fraction=memory_fraction)
        if capacity_tps is not None:
            profile = replace(profile, capacity_tps=capacity_tps)
        if max_batch is not None:
            profile = replace(profile, max_batch=max_batch)
        if single_stream_tps is not None:
            profile = replace(profile, single_stream_tps=single_stream_tps)
        if max_model_len is not None:
            profile = replace(profile, max_model_len=max_model_len)
        return profile


#: A classic (non-LLM) model served one request at a time: utilization follows load.
CLASSIC_DEFAULT = Profile(
    kind=ProfileKind.CLASSIC,
    capacity_tps=400.0,
    max_batch=1,
    single_stream_tps=400.0,
    prefill_speedup=20.0,
    busy_duty=1.0,
    weights_mib=1500,
    context_mib=300,
    activation_mib=512,
    kv_mib_per_token=0.0,
    memory_fraction=1.0,
    max_model_len=4096,
)

#: The chart's default preset: Qwen/Qwen2.5-1.5B-Instruct in fp16 on vLLM with continuous batching.
#: Weights 1.54e9 params x 2 bytes = 2950 MiB; KV cache 28 layers x 2 (K, V) x 2 KV heads x 128 dims
#: x 2 bytes = 28 KiB per token; gpu_memory_utilization 0.9 as in the chart. Speeds are assumptions.
LLM_DEFAULT = Profile(
    kind=ProfileKind.LLM,
    capacity_tps=600.0,
    max_batch=32,
    single_stream_tps=40.0,
    prefill_speedup=20.0,
    busy_duty=1.0,
    weights_mib=2950,
    context_mib=400,
    activation_mib=0,
    kv_mib_per_token=0.02734375,
    memory_fraction=0.9,
    max_model_len=4096,
)

DEFAULT_PROFILES: dict[ProfileKind, Profile] = {
    ProfileKind.CLASSIC: CLASSIC_DEFAULT,
    ProfileKind.LLM: LLM_DEFAULT,
}


# --------------------------------------------------------------------------------------------
# Engine: queue + batch of one replica
# --------------------------------------------------------------------------------------------


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

    @property
    def queue_s(self) -> float:
        return self.started - self.arrival

    @property
    def ttft_s(self) -> float:
        return self.first_token_at - self.arrival

    @property
    def e2e_s(self) -> float:
        return self.finished - self.arrival


@dataclass(frozen=True)
class Window:
    """Integrals of one engine over [start, end), handed out by `Engine.take_window`."""

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


@dataclass
class _Seq:
    rid: str
    prompt_tokens: int
    completion_tokens: int
    arrival: float
    work: float
    first_token_work: float
    kv_tokens: int
    done: float = 0.0
    started: float = 0.0
    first_token_at: float | None = None


class Engine:
    """FIFO queue plus a batch of running sequences, advanced in exact piecewise-linear steps."""

    def __init__(self, profile: Profile, now: float, gpu: GpuSpec = TESLA_T4) -> None:
        profile.validate(gpu)
        self.profile = profile
        self.kv_capacity = profile.kv_capacity_tokens(gpu)
        self._t = now
        self._waiting: deque[_Seq] = deque()
        self._running: list[_Seq] = []
        self._kv_used = 0
        self._finished: list[Finished] = []
        self._ids: set[str] = set()
        self._win_start = now
        self._busy = self._activity = self._mem = self._run_int = self._wait_int = 0.0

    # -- observers -------------------------------------------------------------------------

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
    def kv_used_tokens(self) -> int:
        return self._kv_used

    @property
    def kv_usage(self) -> float:
        """Share of the KV cache in use, 0..1 (vLLM's kv_cache_usage_perc); 0 for classic."""
        if self.profile.kind is ProfileKind.CLASSIC:
            return 0.0
        return self._kv_used / self.kv_capacity if self.kv_capacity else 0.0

    def dynamic_mib(self) -> float:
        if self.profile.kind is ProfileKind.CLASSIC:
            return float(self.running * self.profile.activation_mib)
        return self._kv_used * self.profile.kv_mib_per_token

    def next_event_time(self) -> float | None:
        """When the next running sequence completes (None when nothing runs)."""
        if not self._running:
            return None
        rate = self.profile.seq_rate(len(self._running))
        return self._t + min(s.work - s.done for s in self._running) / rate

    # -- commands --------------------------------------------------------------------------

    def submit(self, rid: str, prompt_tokens: int, completion_tokens: int, now: float) -> None:
        """Queue a request at `now`. Raises ValueError when it can never run."""
        if rid in self._ids:
            raise ValueError(f"duplicate request id {rid}")
        if prompt_tokens < 0 or completion_tokens < 1:
            raise ValueError("need prompt_tokens >= 0 and completion_tokens >= 1")
        kv = prompt_tokens + completion_tokens if self.profile.kind is ProfileKind.LLM else 0
        if kv > self.kv_capacity:
            raise ValueError(f"request needs {kv} KV tokens, the cache holds {self.kv_capacity}")
        self.advance(now)
        prefill = prompt_tokens / self.profile.prefill_speedup
        seq = _Seq(
            rid=rid,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            arrival=now,
            work=self.profile.work(prompt_tokens, completion_tokens),
            first_token_work=prefill + 1.0,
            kv_tokens=kv,
        )
        self._ids.add(rid)
        self._waiting.append(seq)
        self._admit()

    def abort(self, rid: str, now: float) -> bool:
        """Drop a waiting or running request (the client went away). True if it was found."""
        self.advance(now)
        for seq in self._waiting:
            if seq.rid == rid:
                self._waiting.remove(seq)
                self._ids.discard(rid)
                return True
        for seq in self._running:
            if seq.rid == rid:
                self._running.remove(seq)
                self._kv_used -= seq.kv_tokens
                self._ids.discard(rid)
                self._admit()
                return True
        return False

    def pop_finished(self) -> list[Finished]:
        done, self._finished = self._finished, []
        return done

    def take_window(self, now: float) -> Window:
        """Integrals since the previous call (or creation), then start a new window."""
        self.advance(now)
        win = Window(
            start=self._win_start,
            end=self._t,
            busy_s=self._busy,
            activity_s=self._activity,
            dynamic_mib_s=self._mem,
            running_s=self._run_int,
            waiting_s=self._wait_int,
        )
        self._win_start = self._t
        self._busy = self._activity = self._mem = self._run_int = self._wait_int = 0.0
        return win

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
                if seq.first_token_at is None and seq.done >= seq.first_token_work * (1 - _EPS):
                    seq.first_token_at = self._t + max(0.0, seq.first_token_work - before) / rate
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

    def _integrate(self, dt: float) -> None:
        if dt <= 0:
            return
        b = len(self._running)
        self._busy += dt * self.profile.duty(b)
        self._activity += dt * self.profile.activity(b)
        self._mem += dt * self.dynamic_mib()
        self._run_int += dt * b
        self._wait_int += dt * len(self._waiting)

    def _admit(self) -> None:
        while self._waiting and len(self._running) < self.profile.max_batch:
            head = self._waiting[0]
            if self._kv_used + head.kv_tokens > self.kv_capacity:
                return  # strict FIFO: the head waits for KV cache, so does everyone behind it
            self._waiting.popleft()
            head.started = self._t
            self._kv_used += head.kv_tokens
            self._running.append(head)

    def _complete(self, seq: _Seq) -> None:
        self._kv_used -= seq.kv_tokens
        self._ids.discard(seq.rid)
        self._finished.append(
            Finished(
                rid=seq.rid,
                prompt_tokens=seq.prompt_tokens,
                completion_tokens=seq.completion_tokens,
                arrival=seq.arrival,
                started=seq.started,
                first_token_at=seq.first_token_at if seq.first_token_at is not None else self._t,
                finished=self._t,
            )
        )


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

    def __post_init__(self) -> None:
        if math.isnan(self.temp_c):
            self.temp_c = self.spec.temp_idle_c
        if self.sample is None:
            self.sample = self._make_sample(0.0, 0.0, 0.0)

    def collect(self, now: float, window: Window | None, static_mib: int) -> GpuSample:
        """Close the interval (last_collect, now] with the engine's `window` (None = idle)."""
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
        target = self.spec.temp_idle_c + (self.spec.temp_full_load_c - self.spec.temp_idle_c) * load
        self.temp_c = target + (self.temp_c - target) * math.exp(-dt / self.spec.thermal_tau_s)
        self.energy_mj += self._power(load) * dt * 1000.0
        self.last_collect = now
        self.sample = self._make_sample(util, load, static_mib + mem)
        return self.sample

    def _power(self, load: float) -> float:
        return self.spec.idle_power_w + (self.spec.tdp_w - self.spec.idle_power_w) * load

    def _make_sample(self, util: float, load: float, used_mib: float) -> GpuSample:
        used = min(self.spec.fb_total_mib, round(used_mib))
        busy = util > 0
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
