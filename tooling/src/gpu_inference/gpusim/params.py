"""The simulator's parameters: read from ONE data file (`data/profiles.yaml`), each with its source.

The file holds raw figures (GPU datasheet numbers, the model's shape, vLLM's defaults, and the
assumptions where no figure exists). This module turns them into a `GpuSpec` per GPU model and a
`Profile` per simulator profile, deriving what follows from them:

* weights bytes = params x dtype bytes; KV bytes per token = layers x KV heads x head_dim x 2 (K and
  V) x dtype bytes;
* the llm step time ``step = base + tokens x per_token + context_tokens x kv_read`` with
  ``base = step_overhead + weights bytes / (bandwidth x bandwidth_efficiency)``,
  ``per_token = 2 x params / (fp16 tensor FLOPS x flops_efficiency)`` and
  ``kv_read = KV bytes per token / (bandwidth x bandwidth_efficiency)``;
* the KV pool = framebuffer x gpu_memory_utilization - weights - context - activation reserve,
  in blocks of `block_size` tokens.

`Profile.with_overrides` applies command-line options and the pod's own vLLM flags and records
where each changed value came from, so `profile_document` can say it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from importlib import resources
from typing import Any

import yaml

from gpu_inference.errors import ConfigError

DATA_FILE = "profiles.yaml"
MIB = 1024**2


class ProfileKind(StrEnum):
    CLASSIC = "classic"
    LLM = "llm"


# --------------------------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One figure of the data file and where it comes from."""

    value: Any
    source: str


def _params(section: Any, where: str) -> dict[str, Param]:
    if not isinstance(section, dict):
        raise ValueError(f"{where}: expected a mapping of parameters")
    out: dict[str, Param] = {}
    for name, entry in section.items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise ValueError(f"{where}.{name}: a parameter needs `value` and `source`")
        source = entry.get("source")
        if not isinstance(source, str) or not source.strip():
            raise ValueError(f"{where}.{name}: the parameter has no `source`")
        out[str(name)] = Param(entry["value"], source.strip())
    return out


@dataclass(frozen=True)
class Catalog:
    """Everything in the data file, as parameters with sources."""

    gpus: dict[str, dict[str, Param]]
    models: dict[str, dict[str, Param]]
    profiles: dict[str, dict[str, Param]]
    #: request-side figures (token counting of the API layer)
    api: dict[str, Param] = field(default_factory=dict)


def parse_catalog(doc: Any) -> Catalog:
    """Check the data file's structure: every parameter must carry a value and a source."""
    if not isinstance(doc, dict) or doc.get("schema") != 1:
        raise ValueError("the simulator's data file must be a mapping with `schema: 1`")
    sections: dict[str, dict[str, dict[str, Param]]] = {}
    for key in ("gpus", "models", "profiles"):
        raw = doc.get(key)
        if not isinstance(raw, dict) or not raw:
            raise ValueError(f"the simulator's data file has no `{key}`")
        sections[key] = {str(name): _params(body, f"{key}.{name}") for name, body in raw.items()}
    api = _params(doc.get("api") or {}, "api")
    return Catalog(sections["gpus"], sections["models"], sections["profiles"], api)


@functools.cache
def load_catalog() -> Catalog:
    """The packaged data file, parsed once."""
    text = resources.files("gpu_inference.gpusim").joinpath("data", DATA_FILE).read_text("utf-8")
    return parse_catalog(yaml.safe_load(text))


# --------------------------------------------------------------------------------------------
# GPU hardware
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuSpec:
    """What the simulator needs to know about one GPU model (see the data file for sources)."""

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
    memory_bandwidth_gb_s: float = 320.0
    fp16_tensor_tflops: float = 65.0
    nvml_sample_period_s: float = 1.0
    util_noise_pct: float = 0.0
    noise_seed: int = 0


def gpu_from_params(key: str, p: dict[str, Param]) -> GpuSpec:
    kwargs: dict[str, Any] = {}
    for f in fields(GpuSpec):
        if f.name == "key":
            continue
        if f.name not in p:
            raise ValueError(f"gpus.{key}: missing parameter {f.name}")
        kwargs[f.name] = p[f.name].value
    return GpuSpec(key=key, **kwargs)


# --------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """How one replica uses its GPU. Built from the data file; see docs/gpu-simulator.md."""

    kind: ProfileKind
    #: classic: decode-equivalent tokens/s with all slots busy. llm: tokens/s of `max_batch`
    #: sequences decoding together at zero context (derived from the step-time model).
    capacity_tps: float
    #: classic: parallel slots. llm: vLLM's max_num_seqs.
    max_batch: int
    #: llm: tokens/s of one sequence alone at zero context (1 / step time at batch 1).
    single_stream_tps: float
    #: classic only: prompt tokens are processed this many times faster than generated tokens.
    prefill_speedup: float
    #: Duty cycle (0..1) the GPU reports while the server computes (llm: while a step runs).
    busy_duty: float
    #: Framebuffer taken by the model weights (MiB).
    weights_mib: int
    #: Framebuffer taken by the CUDA context and runtime (MiB).
    context_mib: int
    #: classic only: framebuffer per running request (MiB).
    activation_mib: int
    #: llm only: KV cache per token (MiB).
    kv_mib_per_token: float
    #: llm only: share of the framebuffer vLLM may use (gpu_memory_utilization).
    memory_fraction: float
    #: Longest prompt + completion accepted (tokens).
    max_model_len: int
    name: str = ""
    #: llm: token budget of one engine step (max_num_batched_tokens; chunked prefill).
    max_num_batched_tokens: int = 2048
    #: llm: tokens per KV block (KV is allocated block by block as sequences grow).
    block_size: int = 16
    #: llm: fixed time of a step (overhead + streaming the weights once), seconds.
    step_base_s: float = 0.0
    #: llm: compute time per token in a step, seconds.
    step_per_token_s: float = 0.0
    #: llm: time to read one context token's KV in a step, seconds.
    kv_read_s_per_token: float = 0.0
    #: llm: framebuffer kept out of the KV pool for activations (MiB).
    activation_reserve_mib: int = 0
    #: "budget" (every sequence runs to its token budget) or "lognormal" (drawn reply lengths).
    output_length: str = "budget"
    output_length_mean: float = 0.0
    output_length_sigma: float = 0.0
    output_length_seed: int = 0
    default_completion_max_tokens: int = 16
    default_chat_max_tokens: int = 128
    #: The model and server the profile stands for (labels only).
    model: str = ""
    server: str = ""
    gpu_key: str = "tesla-t4"
    #: Where each value came from: the data file's source, or the option/pod flag that set it.
    sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False, repr=False)

    # -- validation ------------------------------------------------------------------------

    def validate(self, gpu: GpuSpec | None = None) -> None:
        """Raise ConfigError naming the option when the parameters cannot describe a GPU."""
        gpu = gpu or TESLA_T4
        if not self.capacity_tps > 0:
            raise ConfigError("--capacity", f"must be > 0 tokens/s, got {self.capacity_tps}", "pass e.g. 400")
        if self.max_batch < 1:
            raise ConfigError("--max-batch", f"must be >= 1, got {self.max_batch}", "pass e.g. 32")
        if not 0 < self.busy_duty <= 1:
            raise ConfigError("busy_duty", f"must be in (0, 1], got {self.busy_duty}", "use e.g. 1.0")
        if self.max_model_len < 2:
            raise ConfigError("--max-model-len", "must be >= 2 tokens", "pass e.g. 4096")
        if self.output_length not in ("budget", "lognormal"):
            raise ConfigError("output_length", f"unknown {self.output_length!r}", "use budget or lognormal")
        if self.output_length == "lognormal" and not (
            self.output_length_mean >= 1 and self.output_length_sigma >= 0
        ):
            raise ConfigError("output_length_mean", "must be >= 1 (sigma >= 0)", "fix the data file")
        static = self.static_mib()
        if static >= gpu.fb_total_mib:
            raise ConfigError(
                "weights_mib/context_mib",
                f"{static} MiB do not fit a {gpu.model_name} ({gpu.fb_total_mib} MiB)",
                "use a smaller model",
            )
        if self.kind is ProfileKind.CLASSIC:
            if not self.prefill_speedup > 0:
                raise ConfigError("prefill_speedup", "must be > 0", "use a positive speed-up, e.g. 20")
            return
        if not self.single_stream_tps > 0:
            raise ConfigError("--single-stream", f"must be > 0, got {self.single_stream_tps}", "pass e.g. 60")
        if self.max_batch > 1:
            if self.capacity_tps > self.max_batch * self.single_stream_tps:
                raise ConfigError(
                    "--capacity",
                    f"{self.capacity_tps:g} tokens/s exceeds --max-batch x --single-stream "
                    f"({self.max_batch} x {self.single_stream_tps:.1f})",
                    "lower --capacity or raise --max-batch",
                )
            if self.capacity_tps < self.single_stream_tps:
                raise ConfigError(
                    "--capacity",
                    f"{self.capacity_tps:g} tokens/s is below --single-stream "
                    f"({self.single_stream_tps:.1f}): batching would slow the GPU down",
                    "raise --capacity or lower --single-stream",
                )
        if not (self.step_base_s > 0 and self.step_per_token_s >= 0 and self.kv_read_s_per_token >= 0):
            raise ConfigError("--single-stream", "the step-time model has no positive base time", "lower it")
        if self.block_size < 1:
            raise ConfigError("block_size", f"must be >= 1, got {self.block_size}", "use 16")
        if self.max_num_batched_tokens < self.max_batch:
            raise ConfigError(
                "--max-batch",
                f"max_num_seqs {self.max_batch} exceeds max_num_batched_tokens "
                f"{self.max_num_batched_tokens} (vLLM refuses this)",
                "lower --max-batch or raise --max-num-batched-tokens",
            )
        if not 0 < self.memory_fraction <= 1:
            raise ConfigError(
                "--gpu-memory-utilization", f"must be in (0, 1], got {self.memory_fraction}", "use e.g. 0.9"
            )
        kv = self.kv_capacity_tokens(gpu)
        if kv < self.max_model_len:
            raise ConfigError(
                "--max-model-len",
                f"{self.max_model_len} tokens do not fit the KV cache ({kv} tokens on a "
                f"{gpu.model_name} at memory fraction {self.memory_fraction})",
                "lower --max-model-len or raise the memory fraction",
            )

    # -- derived figures ---------------------------------------------------------------------

    def step_s(self, tokens: int, context_tokens: int) -> float:
        """llm: duration of one engine step computing `tokens` tokens over `context_tokens` of KV."""
        return self.step_base_s + tokens * self.step_per_token_s + context_tokens * self.kv_read_s_per_token

    def step_activity(self, tokens: int, context_tokens: int) -> float:
        """llm: share of a step spent on per-token work (drives modelled power), 0..1."""
        work = tokens * self.step_per_token_s + context_tokens * self.kv_read_s_per_token
        return work / (work + self.step_base_s)

    def seq_rate(self, b: int) -> float:
        """classic: tokens/s of each of `b` running sequences."""
        return self.capacity_tps / self.max_batch

    def duty(self, b: int) -> float:
        """classic: instantaneous duty cycle with `b` sequences running."""
        return min(1.0, b / self.max_batch) * self.busy_duty if b > 0 else 0.0

    def activity(self, b: int) -> float:
        """classic: instantaneous share of the GPU's throughput in use."""
        return min(1.0, b / self.max_batch) if b > 0 else 0.0

    def kv_capacity_tokens(self, gpu: GpuSpec | None = None) -> int:
        """Tokens the KV cache holds, in whole blocks (llm); effectively unbounded for classic."""
        if self.kind is ProfileKind.CLASSIC:
            return 2**62
        gpu = gpu or TESLA_T4
        pool = gpu.fb_total_mib * self.memory_fraction - self.static_mib()
        if pool <= 0 or self.kv_mib_per_token <= 0:
            return 0
        return int(pool / (self.kv_mib_per_token * self.block_size)) * self.block_size

    def work(self, prompt_tokens: int, completion_tokens: int) -> float:
        """classic: decode-equivalent work of a request."""
        return completion_tokens + prompt_tokens / self.prefill_speedup

    def static_mib(self) -> int:
        """Framebuffer the server holds whatever the load."""
        return self.weights_mib + self.context_mib + self.activation_reserve_mib

    # -- overrides ---------------------------------------------------------------------------

    def with_overrides(
        self,
        *,
        capacity_tps: float | None = None,
        max_batch: int | None = None,
        single_stream_tps: float | None = None,
        max_model_len: int | None = None,
        memory_fraction: float | None = None,
        max_num_batched_tokens: int | None = None,
        source: str = "override",
    ) -> Profile:
        """A copy with some values replaced; `source` is recorded for each changed value.

        llm: --single-stream and --capacity re-fit the step-time model's base and per-token
        time so that one sequence makes `single_stream_tps` and `max_batch` make `capacity_tps`
        (at zero context); without them the physical model stands and a new `max_batch` only
        changes the derived capacity.
        """
        changes: dict[str, Any] = {}
        if memory_fraction is not None:
            changes["memory_fraction"] = memory_fraction
        if max_model_len is not None:
            changes["max_model_len"] = max_model_len
        if max_num_batched_tokens is not None:
            changes["max_num_batched_tokens"] = max_num_batched_tokens
        if self.kind is ProfileKind.CLASSIC:
            for name, value in (
                ("capacity_tps", capacity_tps),
                ("max_batch", max_batch),
                ("single_stream_tps", single_stream_tps),
            ):
                if value is not None:
                    changes[name] = value
        else:
            b = max_batch if max_batch is not None else self.max_batch
            if max_batch is not None:
                changes["max_batch"] = b
            if capacity_tps is None and single_stream_tps is None:
                if max_batch is not None:
                    changes["capacity_tps"] = b / (self.step_base_s + b * self.step_per_token_s)
            else:
                ss = single_stream_tps if single_stream_tps is not None else self.single_stream_tps
                cap = (
                    capacity_tps
                    if capacity_tps is not None
                    else b / (self.step_base_s + b * self.step_per_token_s)
                )
                per = (b / cap - 1 / ss) / (b - 1) if b > 1 and cap > 0 and ss > 0 else self.step_per_token_s
                base = (1 / ss if ss > 0 else 0.0) - per
                changes.update(capacity_tps=cap, single_stream_tps=ss, step_base_s=base, step_per_token_s=per)
        if not changes:
            return self
        sources = dict(self.sources)
        for name in changes:
            sources[name] = source
        return replace(self, sources=sources, **changes)


def _v(p: dict[str, Param], name: str, where: str) -> Any:
    if name not in p:
        raise ValueError(f"{where}: missing parameter {name}")
    return p[name].value


def profile_from_params(
    name: str, p: dict[str, Param], gpus: dict[str, GpuSpec], models: dict[str, dict[str, Param]]
) -> Profile:
    """Build one profile from its parameters, the GPU it runs on and (llm) its model."""
    where = f"profiles.{name}"
    kind = ProfileKind(_v(p, "kind", where))
    gpu_key = str(_v(p, "gpu", where))
    if gpu_key not in gpus:
        raise ValueError(f"{where}: unknown gpu {gpu_key}")
    sources = {k: v.source for k, v in p.items()}
    sources["gpu_key"] = p["gpu"].source
    if kind is ProfileKind.CLASSIC:
        sources["single_stream_tps"] = "derived: capacity_tps / max_batch"
        return Profile(
            kind=kind,
            name=name,
            capacity_tps=float(_v(p, "capacity_tps", where)),
            max_batch=int(_v(p, "max_batch", where)),
            single_stream_tps=float(_v(p, "capacity_tps", where)) / int(_v(p, "max_batch", where)),
            prefill_speedup=float(_v(p, "prefill_speedup", where)),
            busy_duty=float(_v(p, "busy_duty", where)),
            weights_mib=int(_v(p, "weights_mib", where)),
            context_mib=int(_v(p, "context_mib", where)),
            activation_mib=int(_v(p, "activation_mib", where)),
            kv_mib_per_token=0.0,
            memory_fraction=1.0,
            max_model_len=int(_v(p, "max_model_len", where)),
            output_length=str(_v(p, "output_length", where)),
            default_completion_max_tokens=int(_v(p, "default_completion_max_tokens", where)),
            default_chat_max_tokens=int(_v(p, "default_chat_max_tokens", where)),
            gpu_key=gpu_key,
            sources=sources,
        )
    gpu = gpus[gpu_key]
    model_id = str(_v(p, "model", where))
    if model_id not in models:
        raise ValueError(f"{where}: unknown model {model_id}")
    m = models[model_id]
    mwhere = f"models.{model_id}"
    params_n = float(_v(m, "params", mwhere))
    dtype_bytes = int(_v(m, "dtype_bytes", mwhere))
    weights_bytes = params_n * dtype_bytes
    kv_bytes = (
        int(_v(m, "num_hidden_layers", mwhere))
        * int(_v(m, "num_key_value_heads", mwhere))
        * int(_v(m, "head_dim", mwhere))
        * 2
        * dtype_bytes
    )
    bandwidth = gpu.memory_bandwidth_gb_s * 1e9 * float(_v(p, "bandwidth_efficiency", where))
    flops = gpu.fp16_tensor_tflops * 1e12 * float(_v(p, "flops_efficiency", where))
    base = float(_v(p, "step_overhead_s", where)) + weights_bytes / bandwidth
    per_token = float(_v(m, "flops_per_token_per_param", mwhere)) * params_n / flops
    b = int(_v(p, "max_num_seqs", where))
    derived = "derived from the data file (see docs/gpu-simulator.md)"
    for key in ("weights_mib", "kv_mib_per_token", "step_base_s", "step_per_token_s", "kv_read_s_per_token",
                "capacity_tps", "single_stream_tps"):  # fmt: skip
        sources[key] = derived
    sources["max_batch"] = p["max_num_seqs"].source
    sources["default_chat_max_tokens"] = (
        "vLLM: a chat request without max_tokens may use what the context leaves (max_model_len - prompt)"
    )
    sources["memory_fraction"] = p["gpu_memory_utilization"].source
    return Profile(
        kind=kind,
        name=name,
        capacity_tps=b / (base + b * per_token),
        max_batch=b,
        single_stream_tps=1 / (base + per_token),
        prefill_speedup=1.0,
        busy_duty=float(_v(p, "busy_duty", where)),
        weights_mib=math.ceil(weights_bytes / MIB),
        context_mib=int(_v(p, "context_mib", where)),
        activation_mib=0,
        kv_mib_per_token=kv_bytes / MIB,
        memory_fraction=float(_v(p, "gpu_memory_utilization", where)),
        max_model_len=int(_v(p, "max_model_len", where)),
        max_num_batched_tokens=int(_v(p, "max_num_batched_tokens", where)),
        block_size=int(_v(p, "block_size", where)),
        step_base_s=base,
        step_per_token_s=per_token,
        kv_read_s_per_token=kv_bytes / bandwidth,
        activation_reserve_mib=int(_v(p, "activation_reserve_mib", where)),
        output_length=str(_v(p, "output_length", where)),
        output_length_mean=float(_v(p, "output_length_mean", where)),
        output_length_sigma=float(_v(p, "output_length_sigma", where)),
        output_length_seed=int(_v(p, "output_length_seed", where)),
        default_completion_max_tokens=int(_v(p, "default_completion_max_tokens", where)),
        default_chat_max_tokens=int(_v(p, "max_model_len", where)),
        model=model_id,
        server=str(_v(p, "server", where)),
        gpu_key=gpu_key,
        sources=sources,
    )


@dataclass(frozen=True)
class Loaded:
    gpus: dict[str, GpuSpec]
    profiles: dict[str, Profile]


def build(catalog: Catalog) -> Loaded:
    """Every GPU spec and profile of a catalog."""
    gpus = {k: gpu_from_params(k, v) for k, v in catalog.gpus.items()}
    profiles = {k: profile_from_params(k, v, gpus, catalog.models) for k, v in catalog.profiles.items()}
    return Loaded(gpus, profiles)


_LOADED = build(load_catalog())

GPU_SPECS: dict[str, GpuSpec] = _LOADED.gpus
#: NVIDIA T4 as on g4dn instances (figures and sources in data/profiles.yaml).
TESLA_T4 = GPU_SPECS["tesla-t4"]
CLASSIC_DEFAULT = _LOADED.profiles["classic"]
#: The chart's default: Qwen/Qwen2.5-1.5B-Instruct, fp16, on vLLM v0.11 with its defaults.
LLM_DEFAULT = _LOADED.profiles["llm"]
DEFAULT_PROFILES: dict[ProfileKind, Profile] = {
    ProfileKind.CLASSIC: CLASSIC_DEFAULT,
    ProfileKind.LLM: LLM_DEFAULT,
}


def profile_document(profile: Profile, gpu: GpuSpec | None = None) -> dict[str, Any]:
    """The profile as JSON-ready data: every value with its source, plus derived figures."""
    gpu = gpu or GPU_SPECS.get(profile.gpu_key, TESLA_T4)
    values: dict[str, Any] = {}
    for f in fields(Profile):
        source = profile.sources.get(f.name)
        if source is None:  # kind, name, sources, and the other kind's parameters
            continue
        values[f.name] = {"value": getattr(profile, f.name), "source": source}
    catalog = load_catalog()
    gpu_params = catalog.gpus.get(gpu.key, {})
    derived: dict[str, Any] = {}
    if profile.kind is ProfileKind.LLM:
        kv_tokens = profile.kv_capacity_tokens(gpu)
        derived = {
            "kv_capacity_tokens": kv_tokens,
            "kv_capacity_blocks": kv_tokens // profile.block_size,
            "step_s_batch_1": profile.step_s(1, 0),
            "step_s_full_batch": profile.step_s(profile.max_batch, 0),
        }
    return {
        "simulated": True,
        "profile": profile.name or str(profile.kind),
        "kind": str(profile.kind),
        "parameters": values,
        "gpu": {"key": gpu.key, **{k: {"value": v.value, "source": v.source} for k, v in gpu_params.items()}},
        "model": (
            {
                k: {"value": v.value, "source": v.source}
                for k, v in catalog.models.get(profile.model, {}).items()
            }
            if profile.model
            else None
        ),
        "derived": derived,
    }
