"""Timing profiles of the local cluster: how long a new GPU node, an image pull and a model load
take, and how often the node group scaler looks (figures and sources in timing.yaml).

Every interval is a range [low, high]: the profile's value +- its jitter. `time_scale` k divides
every interval by k, so a benchmark can run the eks profile's minutes in seconds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from gpu_inference.errors import ConfigError

DATA_FILE = Path(__file__).with_name("timing.yaml")
FIGURES = (
    "ec2_boot_s",
    "gpu_driver_s",
    "device_plugin_s",
    "image_size_mb",
    "pull_mb_per_s",
    "model_size_mb",
    "download_mb_per_s",
    "load_to_gpu_s",
    "scan_interval_s",
    "scale_down_unneeded_s",
)


@dataclass(frozen=True)
class Figure:
    """One figure of a profile: a value, the half-width of its uniform jitter, and its source."""

    value: float
    jitter: float
    source: str

    @property
    def low(self) -> float:
        return self.value - self.jitter

    @property
    def high(self) -> float:
        return self.value + self.jitter


@dataclass(frozen=True)
class Interval:
    """An interval in seconds, drawn uniformly from [low, high]."""

    low: float
    high: float

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    def scaled(self, k: float) -> Interval:
        return Interval(self.low / k, self.high / k)

    def draw(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True)
class Timings:
    """The intervals a local cluster runs with (already divided by the time scale)."""

    profile: str
    time_scale: float
    node_ready: Interval
    image_pull: Interval
    model_load: Interval
    scan_interval_s: float
    scale_down_unneeded_s: float


@cache
def _load() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(DATA_FILE.read_text())
    return dict(data["profiles"])


def profile_names() -> list[str]:
    return sorted(_load())


def figures(profile: str) -> dict[str, Figure]:
    """The figures of `profile`, checked: every one present, non-negative, with a source."""
    profiles = _load()
    if profile not in profiles:
        raise ConfigError(
            "--timing", f"unknown timing profile {profile!r}", f"use one of {', '.join(profile_names())}"
        )
    raw = profiles[profile]
    out: dict[str, Figure] = {}
    for key in FIGURES:
        item = raw.get(key)
        if not isinstance(item, dict) or not item.get("source"):
            raise ConfigError(f"{DATA_FILE.name}: {profile}.{key}", "missing or without a source", "add it")
        fig = Figure(float(item["value"]), float(item.get("jitter", 0)), str(item["source"]))
        if fig.low < 0 or (key.endswith("_per_s") and fig.low <= 0):
            raise ConfigError(f"{DATA_FILE.name}: {profile}.{key}", "jitter reaches below 0", "lower it")
        out[key] = fig
    return out


def timings(profile: str, time_scale: float = 1.0) -> Timings:
    """The intervals of `profile`, each divided by `time_scale`."""
    if time_scale <= 0:
        raise ConfigError("--time-scale", f"{time_scale} is not positive", "pass a number > 0, e.g. 10")
    f = figures(profile)
    node = Interval(
        f["ec2_boot_s"].low + f["gpu_driver_s"].low + f["device_plugin_s"].low,
        f["ec2_boot_s"].high + f["gpu_driver_s"].high + f["device_plugin_s"].high,
    )
    pull = Interval(
        f["image_size_mb"].low / f["pull_mb_per_s"].high, f["image_size_mb"].high / f["pull_mb_per_s"].low
    )
    load = Interval(
        f["model_size_mb"].low / f["download_mb_per_s"].high + f["load_to_gpu_s"].low,
        f["model_size_mb"].high / f["download_mb_per_s"].low + f["load_to_gpu_s"].high,
    )
    k = time_scale
    return Timings(
        profile=profile,
        time_scale=k,
        node_ready=node.scaled(k),
        image_pull=pull.scaled(k),
        model_load=load.scaled(k),
        scan_interval_s=f["scan_interval_s"].value / k,
        scale_down_unneeded_s=f["scale_down_unneeded_s"].value / k,
    )
