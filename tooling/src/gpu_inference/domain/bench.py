"""The autoscaling benchmark: its matrix file, time compression of the chart's intervals, the
figures of one cell and their aggregation over seeds. Pure: no I/O beyond reading the matrix file.

A matrix file (YAML) lists load shapes, chart configurations, timing profiles and seeds; the cells
are their product, each run at the matrix's time scale k. Every interval of the stack is divided
by k (`scaled_timing_values`), and every figure is reported on the nominal clock (run seconds x k).

Definitions (docs/benchmarks.md, "Autoscaling benchmark"):

- load step: the first moment the oracle needs more replicas than the minimum (the shape's demand
  over the measured per-replica capacity);
- first scale-up decision: the first sample whose HPA desired replicas exceed the start's;
- Ready capacity: the first sample with more Ready replicas than at the start;
- steady phase: samples whose oracle replica count has not changed for `steady_after_s`;
- GPU-hours: replicas that exist (Ready or not) x time; the oracle's: just enough replicas for the
  demand at the SLO, within min/max replicas (domain.verdict.oracle_replicas).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from gpu_inference.domain.models import StrictModel, set_keys
from gpu_inference.domain.rate_shapes import SHAPES, RateShape, rate_shape
from gpu_inference.domain.requests import RequestRecord, Slo, meets_slo
from gpu_inference.domain.timeline import TimelineSample
from gpu_inference.domain.verdict import oracle_replicas, reversals
from gpu_inference.errors import ConfigError

#: Smallest interval (seconds) any compressed interval may have: the HPA sync period, scrape,
#: relist, DCGM collection, smoothing windows and HPA policy periods.
MIN_INTERVAL_S = 1.0
#: kube-controller-manager's default --horizontal-pod-autoscaler-sync-period (EKS runs it).
HPA_SYNC_PERIOD_S = 15
#: Rate parameters given as a multiple of the measured per-replica capacity: KEY_x -> KEY_rate.
_X_SUFFIX = "_x"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_DURATION_PARTS = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


# ----------------------------------------------------------------------------- the matrix file
class ShapeSpec(StrictModel):
    """A load shape of the matrix: a rate shape (domain.rate_shapes) with its parameters.

    Rates may be given as multiples of the measured per-replica capacity: peak_x, base_x, rate_x.
    `time_scale` in params is the shape's own compression (the diurnal day); the matrix's k
    multiplies it.
    """

    name: str = Field(pattern=r"^[a-z0-9][-a-z0-9_]*$")
    kind: str
    params: dict[str, float | int] = Field(default_factory=dict)
    #: A stationary shape: its reversals count against the "<= 1 per 30 min" target.
    stationary: bool = False
    #: Run this shape only with these configurations (empty: all of them).
    configs: tuple[str, ...] = ()

    @field_validator("kind")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in SHAPES:
            raise ValueError(f"unknown shape kind {v!r}; use one of {', '.join(SHAPES)}")
        return v

    def build(self, capacity_rps: float, time_scale: float) -> RateShape:
        """The rate shape, rates resolved against `capacity_rps`, its clock k times faster."""
        params: dict[str, Any] = {}
        for key, value in self.params.items():
            if key.endswith(_X_SUFFIX):
                stem = key.removesuffix(_X_SUFFIX)
                name = "rate" if stem == "rate" else f"{stem}_rate"
                params[name] = round(float(value) * capacity_rps, 4)
            else:
                params[key] = value
        own = float(params.pop("time_scale", SHAPES[self.kind].model_fields["time_scale"].default))
        params["time_scale"] = own * time_scale
        return rate_shape(self.kind, params, setting=f"shapes[{self.name}]")

    def nominal(self, capacity_rps: float) -> RateShape:
        """The shape on the nominal clock (k = 1)."""
        return self.build(capacity_rps, 1.0)


class ChartConfig(StrictModel):
    """A chart configuration: values files and --set pairs laid over the chart's defaults."""

    name: str = Field(pattern=r"^[a-z0-9][-a-z0-9_]*$")
    description: str = ""
    values: tuple[Path, ...] = ()
    set: tuple[str, ...] = ()
    #: The HPA metric the run reads as its main one; None: the HPA's first metric, as installed.
    metric: str | None = None

    @field_validator("set")
    @classmethod
    def _pairs(cls, pairs: tuple[str, ...]) -> tuple[str, ...]:
        for key in set_keys(pairs):
            if any(key.startswith(t) for t in TIMING_KEYS):
                raise ValueError(f"{key} is an interval the benchmark compresses; put it in a values file")
        return pairs


class SloSpec(StrictModel):
    ttft_ms: float = Field(2000.0, gt=0)
    tpot_ms: float = Field(200.0, gt=0)

    @property
    def slo(self) -> Slo:
        return Slo(ttft_s=self.ttft_ms / 1000, tpot_s=self.tpot_ms / 1000)


class RequestSpec(StrictModel):
    """The requests of every cell (and of the calibration)."""

    prompt_tokens: int = Field(128, ge=1)
    max_tokens: int = Field(64, ge=1)
    #: The client's in-flight cap: arrivals beyond it are dropped and count as errors.
    max_in_flight: int = Field(1024, ge=1)


class Faithfulness(StrictModel):
    """One cell run again at another time scale, to show compression does not change the figures."""

    shape: str
    config: str
    timing: str = "fast"
    time_scale: float = Field(1.0, gt=0)


class Matrix(StrictModel):
    """A benchmark matrix (bench/*.yaml)."""

    name: str = Field(pattern=r"^[a-z0-9][-a-z0-9_]*$")
    description: str = ""
    time_scale: float = Field(1.0, gt=0, le=100)
    #: GPU simulator profile (llm behaves like vLLM's continuous batching).
    profile: Literal["classic", "llm"] = "llm"
    slo: SloSpec = Field(default_factory=SloSpec)
    request: RequestSpec = Field(default_factory=RequestSpec)
    #: Requests/s one replica serves within the SLO; None: calibrate a SIMULATED replica once per run.
    capacity_rps: float | None = Field(None, gt=0)
    #: Share of requests that must meet the SLO at the calibrated capacity.
    capacity_attainment: float = Field(0.99, gt=0, le=1)
    #: Nominal seconds between timeline samples (divided by k, at least 1 s of wall time).
    sample_interval_s: float = Field(5.0, gt=0)
    #: Nominal seconds after the oracle's replica count last changed from which a sample is steady.
    steady_after_s: float = Field(120.0, ge=0)
    seeds: tuple[int, ...] = Field(min_length=1)
    timings: tuple[Literal["fast", "eks"], ...] = ("fast",)
    shapes: tuple[ShapeSpec, ...] = Field(min_length=1)
    configs: tuple[ChartConfig, ...] = Field(min_length=1)
    faithfulness: Faithfulness | None = None
    #: Nominal seconds to wait for the HPA to sit at its minimum before each cell's load.
    settle_timeout_s: float = Field(300.0, ge=0)

    @model_validator(mode="after")
    def _names(self) -> Matrix:
        for what, names in (
            ("shapes", [s.name for s in self.shapes]),
            ("configs", [c.name for c in self.configs]),
        ):
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"{what}: name {sorted(dup)[0]!r} appears twice")
        config_names = {c.name for c in self.configs}
        for s in self.shapes:
            unknown = [c for c in s.configs if c not in config_names]
            if unknown:
                raise ValueError(f"shapes[{s.name}].configs: {unknown[0]!r} is not one of the configs")
        f = self.faithfulness
        if f is not None:
            if f.shape not in {s.name for s in self.shapes}:
                raise ValueError(f"faithfulness.shape {f.shape!r} is not one of the shapes")
            if f.config not in {c.name for c in self.configs}:
                raise ValueError(f"faithfulness.config {f.config!r} is not one of the configs")
        return self

    def shape(self, name: str) -> ShapeSpec:
        return next(s for s in self.shapes if s.name == name)

    def config(self, name: str) -> ChartConfig:
        return next(c for c in self.configs if c.name == name)

    def cells(self) -> list[Cell]:
        """Every cell in run order: the product, then the faithfulness cells (if any)."""
        out = [
            Cell(shape=s.name, config=c.name, timing=t, seed=seed, time_scale=self.time_scale)
            for s in self.shapes
            for c in self.configs
            if not s.configs or c.name in s.configs
            for t in self.timings
            for seed in self.seeds
        ]
        f = self.faithfulness
        if f is not None and f.time_scale != self.time_scale:
            out += [
                Cell(shape=f.shape, config=f.config, timing=f.timing, seed=seed, time_scale=f.time_scale)
                for seed in self.seeds
            ]
        return out


class Cell(StrictModel):
    """One run: a shape, a chart configuration, a timing profile, a seed, a time scale."""

    shape: str
    config: str
    timing: str
    seed: int
    time_scale: float

    @property
    def group(self) -> str:
        """The cell without its seed: what the aggregation groups on."""
        return f"{self.shape}/{self.config}/{self.timing}/k{self.time_scale:g}"

    @property
    def id(self) -> str:
        return f"{self.shape}--{self.config}--{self.timing}--k{self.time_scale:g}--s{self.seed}"


def _loc(err: Mapping[str, Any], raw: Any) -> str:
    """A pydantic error location as a readable key, with list items named where they have a name."""
    parts: list[str] = []
    node = raw
    for p in err["loc"]:
        if isinstance(p, int) and isinstance(node, list) and p < len(node):
            item = node[p]
            label = item.get("name") if isinstance(item, dict) else None
            parts[-1] = f"{parts[-1]}[{label if label else p}]"
            node = item
            continue
        parts.append(str(p))
        node = node.get(p) if isinstance(node, dict) else None
    return ".".join(parts)


def parse_matrix(raw: Any, source: str = "matrix") -> Matrix:
    """A Matrix from parsed YAML; bad input raises ConfigError naming the key."""
    if not isinstance(raw, dict):
        raise ConfigError(source, "the file is not a YAML mapping", "start from bench/matrix-ci.yaml")
    try:
        return Matrix.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _loc(err, raw)
        msg = str(err["msg"]).removeprefix("Value error, ")
        fix = {
            "extra_forbidden": "remove it (see docs/benchmarks.md for the keys)",
            "missing": "add it",
        }.get(str(err["type"]), "fix the value (see docs/benchmarks.md)")
        raise ConfigError(f"{source}: {key}" if key else source, msg, fix) from None


def load_matrix(path: Path) -> Matrix:
    """Read and check a matrix file; values files are resolved against the file's folder."""
    if not path.is_file():
        raise ConfigError(
            "--matrix", f"{path} is not a file", "pass a matrix YAML, e.g. bench/matrix-ci.yaml"
        )
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(
            "--matrix", f"{path} is not YAML ({str(exc).splitlines()[0]})", "fix the file"
        ) from None
    matrix = parse_matrix(raw, source=str(path))
    configs = []
    for c in matrix.configs:
        files = tuple(f if f.is_absolute() else (path.parent / f).resolve() for f in c.values)
        for f in files:
            if not f.is_file():
                raise ConfigError(f"{path}: configs[{c.name}].values", f"{f} is not a file", "fix the path")
        configs.append(c.model_copy(update={"values": files}))
    return matrix.model_copy(update={"configs": tuple(configs)})


# ----------------------------------------------------------------------------- time compression
#: Chart values that hold an interval; all of them are divided by k.
TIMING_KEYS = (
    "wiring.scrapeInterval",
    "wiring.relistInterval",
    "dcgm-exporter.collectIntervalMs",
    "autoscaling.behavior",
    "autoscaling.signalSettings",
    "autoscaling.keda.pollingInterval",
)


def duration_s(text: Any) -> float:
    """'15s', '1m', '500ms', '1m30s' (or a number of seconds) -> seconds."""
    if isinstance(text, int | float):
        return float(text)
    s = str(text).strip()
    parts = _DURATION_PARTS.findall(s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise ValueError(f"{text!r} is not a duration (e.g. 15s, 1m, 500ms)")
    unit = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * unit[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """Seconds -> a duration Prometheus, the adapter and the chart accept ('3s', '1500ms')."""
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge of values: maps merge key by key, anything else (lists too) is replaced."""
    out = deepcopy(base)
    for k, v in top.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = deepcopy(v)
    return out


class Compressed(BaseModel):
    """What a time scale k does to one chart configuration."""

    time_scale: float
    #: Values laid over everything else (a -f file after the configuration's own).
    values: dict[str, Any]
    hpa_sync_period_s: int
    #: setting -> (nominal seconds, compressed seconds), for the report.
    intervals: dict[str, tuple[float, float]]


def _whole(setting: str, nominal: float, k: float, allow_zero: bool = False) -> int:
    scaled = nominal / k
    if allow_zero and nominal == 0:
        return 0
    if scaled < MIN_INTERVAL_S - 1e-9:
        raise ConfigError(
            "time_scale",
            f"{setting} {nominal:g}s / {k:g} = {scaled:.3g}s is under the {MIN_INTERVAL_S:g}s floor",
            f"use a time scale of at most {nominal / MIN_INTERVAL_S:g}",
        )
    if abs(scaled - round(scaled)) > 1e-6:
        raise ConfigError(
            "time_scale",
            f"{setting} {nominal:g}s / {k:g} is not a whole number of seconds (Kubernetes takes whole ones)",
            f"use a time scale that divides {nominal:g}",
        )
    return round(scaled)


def _fractional(setting: str, nominal: float, k: float) -> float:
    scaled = nominal / k
    if scaled < MIN_INTERVAL_S - 1e-9:
        raise ConfigError(
            "time_scale",
            f"{setting} {nominal:g}s / {k:g} = {scaled:.3g}s is under the {MIN_INTERVAL_S:g}s floor",
            f"use a time scale of at most {nominal / MIN_INTERVAL_S:g}",
        )
    return scaled


def scaled_timing_values(
    merged: Mapping[str, Any], k: float, hpa_sync_s: int = HPA_SYNC_PERIOD_S
) -> Compressed:
    """Every interval of the merged chart values (defaults + a configuration), divided by k.

    Refuses (ConfigError naming time_scale) a k that takes an interval under MIN_INTERVAL_S or
    makes a Kubernetes field (whole seconds) fractional.
    """
    wiring = merged.get("wiring") or {}
    dcgm = merged.get("dcgm-exporter") or {}
    auto = merged.get("autoscaling") or {}
    iv: dict[str, tuple[float, float]] = {}

    sync = _whole("HPA sync period", hpa_sync_s, k)
    iv["kube-controller-manager --horizontal-pod-autoscaler-sync-period"] = (hpa_sync_s, sync)
    scrape = duration_s(wiring.get("scrapeInterval", "15s"))
    relist = duration_s(wiring.get("relistInterval", "30s"))
    collect = float(dcgm.get("collectIntervalMs", 5000)) / 1000
    out_wiring = {
        "scrapeInterval": format_duration(_fractional("wiring.scrapeInterval", scrape, k)),
        "relistInterval": format_duration(_fractional("wiring.relistInterval", relist, k)),
    }
    iv["wiring.scrapeInterval"] = (scrape, scrape / k)
    iv["wiring.relistInterval"] = (relist, relist / k)
    collect_ms = round(_fractional("dcgm-exporter.collectIntervalMs", collect, k) * 1000)
    iv["dcgm-exporter.collectIntervalMs"] = (collect, collect_ms / 1000)

    behavior = deepcopy(auto.get("behavior") or {})
    for direction in ("scaleUp", "scaleDown"):
        rules = behavior.get(direction)
        if not isinstance(rules, dict):
            continue
        key = f"autoscaling.behavior.{direction}"
        if "stabilizationWindowSeconds" in rules:
            w = float(rules["stabilizationWindowSeconds"])
            rules["stabilizationWindowSeconds"] = _whole(
                f"{key}.stabilizationWindowSeconds", w, k, allow_zero=True
            )
            iv[f"{key}.stabilizationWindowSeconds"] = (w, rules["stabilizationWindowSeconds"])
        for i, policy in enumerate(rules.get("policies") or []):
            p = float(policy["periodSeconds"])
            policy["periodSeconds"] = _whole(f"{key}.policies[{i}].periodSeconds", p, k)
            iv[f"{key}.policies[{i}].periodSeconds"] = (p, policy["periodSeconds"])

    signals: dict[str, Any] = {}
    for name, settings in (auto.get("signalSettings") or {}).items():
        window = (settings or {}).get("window") if isinstance(settings, dict) else None
        if window:
            w = duration_s(window)
            signals[name] = {"window": format_duration(_fractional(f"signalSettings.{name}.window", w, k))}
            iv[f"autoscaling.signalSettings.{name}.window"] = (w, w / k)
    keda = auto.get("keda") or {}
    out_auto: dict[str, Any] = {"behavior": behavior}
    if signals:
        out_auto["signalSettings"] = signals
    if "pollingInterval" in keda:
        poll = float(keda["pollingInterval"])
        out_auto["keda"] = {"pollingInterval": _whole("autoscaling.keda.pollingInterval", poll, k)}
        iv["autoscaling.keda.pollingInterval"] = (poll, out_auto["keda"]["pollingInterval"])
    values = {
        "wiring": out_wiring,
        "dcgm-exporter": {"collectIntervalMs": collect_ms},
        "autoscaling": out_auto,
    }
    return Compressed(time_scale=k, values=values, hpa_sync_period_s=sync, intervals=iv)


# ----------------------------------------------------------------------------- one cell's figures
class CellResult(BaseModel):
    """The figures of one cell, on the nominal clock (run seconds x k). None: no evidence."""

    cell: Cell
    ok: bool = True
    error: str | None = None
    capacity_rps: float | None = None
    wall_s: float | None = None
    step_at_s: float | None = None
    first_decision_s: float | None = None
    ready_capacity_s: float | None = None
    slo_attainment: float | None = None
    steady_slo_attainment: float | None = None
    ttft_p95_ms: float | None = None
    tpot_p95_ms: float | None = None
    gpu_hours: float | None = None
    oracle_gpu_hours: float | None = None
    gpu_hours_ratio: float | None = None
    steady_gpu_hours_ratio: float | None = None
    cost_usd: float | None = None
    oracle_cost_usd: float | None = None
    reversals: int | None = None
    reversals_per_30min: float | None = None
    minutes_pinned_at_max: float | None = None
    requests: int = 0
    errors: int = 0
    error_ratio: float | None = None
    peak_replicas: int | None = None
    #: Timeline for plots: (nominal s, desired, ready, oracle) per sample of the load.
    series: list[tuple[float, int, int, int]] = Field(default_factory=list)


def step_time_s(
    shape: RateShape, capacity_rps: float, min_r: int, max_r: int, points: int = 4000
) -> float | None:
    """Run seconds at which the oracle first needs more than min_r replicas (None: never)."""
    end = shape.run_duration_s
    grid = {end * i / points for i in range(points)} | {b for b in shape.breakpoints() if 0 <= b < end}
    for t in sorted(grid):
        if oracle_replicas(shape.demand(t), capacity_rps, min_r, max_r) > min_r:
            return t
    return None


def steady_mask(
    times: Sequence[float], shape: RateShape, capacity_rps: float, min_r: int, max_r: int, *, after_s: float
) -> list[bool]:
    """For each run time: has the oracle's replica count stayed the same over the last after_s run seconds?"""
    out = []
    for t in times:
        if t < after_s or t >= shape.run_duration_s:
            out.append(False)
            continue
        now = oracle_replicas(shape.demand(t), capacity_rps, min_r, max_r)
        n = 50
        same = all(
            oracle_replicas(shape.demand(t - after_s * i / n), capacity_rps, min_r, max_r) == now
            for i in range(1, n + 1)
        )
        out.append(same)
    return out


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def cell_figures(
    cell: Cell,
    samples: Sequence[TimelineSample],
    records: Sequence[RequestRecord],
    shape: RateShape,
    *,
    capacity_rps: float,
    min_replicas: int,
    max_replicas: int,
    slo: Slo,
    steady_after_s: float,
    load_started_at: float,
    usd_per_replica_hour: float | None,
    stationary: bool = False,
) -> CellResult:
    """Everything the table shows for one cell, from its timeline and request records.

    `samples` carry wall-clock `t`; `load_started_at` is the shape's t = 0. Only samples during the
    shape (0 <= t < run length) count for GPU-hours, reversals and pinned minutes.
    """
    k = cell.time_scale
    run_len = shape.run_duration_s
    load = [s for s in samples if s.hpa is not None and 0 <= s.t - load_started_at < run_len]
    base = [s for s in samples if s.hpa is not None and s.t - load_started_at < 0]
    res = CellResult(cell=cell, capacity_rps=capacity_rps)
    if not load:
        return res.model_copy(update={"ok": False, "error": "no HPA sample during the load"})
    start = base[-1] if base else load[0]
    assert start.hpa is not None
    initial_desired = start.hpa.desired_replicas
    initial_ready = start.workload.ready_replicas if start.workload else start.hpa.current_replicas

    step = step_time_s(shape, capacity_rps, min_replicas, max_replicas)
    res.step_at_s = None if step is None else step * k
    if step is not None:
        decided = next(
            (
                s
                for s in load
                if s.t - load_started_at >= 0 and s.hpa and s.hpa.desired_replicas > initial_desired
            ),
            None,
        )
        if decided is not None:
            res.first_decision_s = max(0.0, (decided.t - load_started_at - step)) * k
        ready = next(
            (s for s in load if s.workload is not None and s.workload.ready_replicas > initial_ready),
            None,
        )
        if ready is not None:
            res.ready_capacity_s = max(0.0, (ready.t - load_started_at - step)) * k

    # GPU-hours: each sample holds until the next one (the last: one sample interval at most).
    times = [s.t - load_started_at for s in load]
    steady = steady_mask(times, shape, capacity_rps, min_replicas, max_replicas, after_s=steady_after_s / k)
    held = oracle = held_steady = oracle_steady = 0.0
    pinned = 0.0
    series: list[tuple[float, int, int, int]] = []
    for i, s in enumerate(load):
        assert s.hpa is not None
        t = times[i]
        nxt = times[i + 1] if i + 1 < len(times) else min(run_len, t + (t - times[i - 1] if i else 0.0))
        dt = max(0.0, nxt - t)
        need = oracle_replicas(shape.demand(t), capacity_rps, min_replicas, max_replicas)
        held += s.hpa.current_replicas * dt
        oracle += need * dt
        if steady[i]:
            held_steady += s.hpa.current_replicas * dt
            oracle_steady += need * dt
        if s.hpa.desired_replicas >= max_replicas and need >= max_replicas:
            pinned += dt
        ready_n = s.workload.ready_replicas if s.workload else 0
        series.append((round(t * k, 2), s.hpa.desired_replicas, ready_n, need))
    res.gpu_hours = held * k / 3600
    res.oracle_gpu_hours = oracle * k / 3600
    res.gpu_hours_ratio = held / oracle if oracle > 0 else None
    res.steady_gpu_hours_ratio = held_steady / oracle_steady if oracle_steady > 0 else None
    if usd_per_replica_hour is not None:
        res.cost_usd = res.gpu_hours * usd_per_replica_hour
        res.oracle_cost_usd = res.oracle_gpu_hours * usd_per_replica_hour
    turns = reversals(load)
    res.reversals = turns
    res.reversals_per_30min = turns / (run_len * k / 1800) if stationary else None
    res.minutes_pinned_at_max = pinned * k / 60
    res.peak_replicas = max(s.hpa.desired_replicas for s in load if s.hpa)
    res.series = series

    done = [r for r in records if r.outcome != "cancelled"]
    res.requests = len(done)
    res.errors = sum(1 for r in done if not r.ok)
    res.error_ratio = res.errors / len(done) if done else None
    if done:
        res.slo_attainment = sum(1 for r in done if meets_slo(r, slo)) / len(done)
        mask = steady_mask(
            [r.scheduled_s for r in done],
            shape,
            capacity_rps,
            min_replicas,
            max_replicas,
            after_s=steady_after_s / k,
        )
        in_steady = [r for r, m in zip(done, mask, strict=True) if m]
        if in_steady:
            res.steady_slo_attainment = sum(1 for r in in_steady if meets_slo(r, slo)) / len(in_steady)
        res.ttft_p95_ms = _p95([r.ttft_s * 1000 for r in done if r.ttft_s is not None])
        res.tpot_p95_ms = _p95([r.tpot_s * 1000 for r in done if r.tpot_s is not None])
    return res


# ----------------------------------------------------------------------------- aggregation
#: The figures the tables show, in order: (field, header, format).
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("first_decision_s", "first scale-up decision (s)", "{:.0f}"),
    ("ready_capacity_s", "Ready capacity (s)", "{:.0f}"),
    ("slo_attainment", "SLO attainment", "{:.3f}"),
    ("steady_slo_attainment", "SLO attainment, steady", "{:.3f}"),
    ("gpu_hours", "GPU-hours", "{:.3f}"),
    ("gpu_hours_ratio", "GPU-h / oracle", "{:.2f}"),
    ("steady_gpu_hours_ratio", "GPU-h / oracle, steady", "{:.2f}"),
    ("cost_usd", "cost (USD)", "{:.3f}"),
    ("reversals", "reversals", "{:.0f}"),
    ("minutes_pinned_at_max", "min pinned at max", "{:.1f}"),
    ("error_ratio", "error ratio", "{:.3f}"),
)


class Spread(BaseModel):
    """Median, min and max of one figure over a group's seeds (n: how many had a value)."""

    median: float | None
    low: float | None
    high: float | None
    n: int


class GroupRow(BaseModel):
    """One row of the aggregate table: a cell without its seed."""

    group: str
    shape: str
    config: str
    timing: str
    time_scale: float
    seeds: list[int]
    failed: int
    figures: dict[str, Spread]
    oracle_gpu_hours: Spread
    oracle_cost_usd: Spread


def spread(values: Iterable[float | int | None]) -> Spread:
    """Median and range of the values that are not None."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return Spread(median=None, low=None, high=None, n=0)
    return Spread(median=statistics.median(vals), low=min(vals), high=max(vals), n=len(vals))


def aggregate(results: Sequence[CellResult]) -> list[GroupRow]:
    """Group cells by everything but the seed, in first-seen order."""
    groups: dict[str, list[CellResult]] = {}
    for r in results:
        groups.setdefault(r.cell.group, []).append(r)
    rows = []
    for key, items in groups.items():
        c = items[0].cell
        good = [r for r in items if r.ok]
        rows.append(
            GroupRow(
                group=key,
                shape=c.shape,
                config=c.config,
                timing=c.timing,
                time_scale=c.time_scale,
                seeds=[r.cell.seed for r in items],
                failed=len(items) - len(good),
                figures={f: spread(getattr(r, f) for r in good) for f, _, _ in FIGURES},
                oracle_gpu_hours=spread(r.oracle_gpu_hours for r in good),
                oracle_cost_usd=spread(r.oracle_cost_usd for r in good),
            )
        )
    return rows


def fmt_spread(s: Spread, fmt: str) -> str:
    """'12 (10-15)' : median and range; 'n/a' with no value."""
    if s.median is None or s.low is None or s.high is None:
        return "n/a"
    med = fmt.format(s.median)
    if s.n == 1 or fmt.format(s.low) == fmt.format(s.high):
        return med
    return f"{med} ({fmt.format(s.low)}-{fmt.format(s.high)})"


# ----------------------------------------------------------------------------- faithfulness
#: Figures whose medians must agree between time scales, and by how much (absolute, nominal units).
#: Times: one nominal HPA sync period (15 s) plus one nominal sample interval (5 s), the resolution
#: both runs see a decision with. GPU-hours over the oracle: 0.15. SLO attainment and latencies are
#: reported, not judged: a request's own service time is not compressed (the simulated GPU runs in
#: real time), so at k > 1 an overload lasts k times fewer requests' worth of queueing.
FAITHFUL_TOLERANCE: dict[str, float] = {
    "first_decision_s": 20.0,
    "ready_capacity_s": 20.0,
    "gpu_hours_ratio": 0.15,
}


class FaithfulnessRow(BaseModel):
    """One figure of the same cell at two time scales."""

    figure: str
    compressed: float | None
    reference: float | None
    difference: float | None
    tolerance: float | None
    within: bool | None


def faithfulness(rows: Sequence[GroupRow], f: Faithfulness, time_scale: float) -> list[FaithfulnessRow]:
    """Compare the medians of the faithfulness cell at the matrix's k and at f.time_scale."""

    def find(k: float) -> GroupRow | None:
        return next(
            (
                r
                for r in rows
                if (r.shape, r.config, r.timing, r.time_scale) == (f.shape, f.config, f.timing, k)
            ),
            None,
        )

    fast, ref = find(time_scale), find(f.time_scale)
    out = []
    for name, _, _ in FIGURES:
        a = fast.figures[name].median if fast else None
        b = ref.figures[name].median if ref else None
        diff = None if a is None or b is None else a - b
        tol = FAITHFUL_TOLERANCE.get(name)
        within = None if diff is None or tol is None else abs(diff) <= tol
        out.append(
            FaithfulnessRow(
                figure=name, compressed=a, reference=b, difference=diff, tolerance=tol, within=within
            )
        )
    return out
