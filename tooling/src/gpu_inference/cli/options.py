"""Command-line options shared by several commands, defined once.

Each alias is an `Annotated` type that a command uses as a parameter's type, e.g.
`target: TargetOpt = None`. The aliases come in groups (`rich_help_panel`), so `--help` of every
command that uses them shows the same sections: the target, the load, the output.
Parsers for option values (durations, KEY=VALUE pairs) live here too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from gpu_inference.domain.timeline import APIS

TARGET = "Target"
LOAD = "Load"
OUTPUT = "Output"
LOCAL = "Local cluster"

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_duration(text: str | None) -> float | None:
    """'300', '300s', '5m', '1h30m' -> seconds; None stays None."""
    if text is None:
        return None
    m = _DURATION.match(text.strip())
    if not text.strip() or not m or not any(m.groups()):
        raise typer.BadParameter(f"'{text}' is not a duration (e.g. 300, 90s, 5m, 1h30m)")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    seconds = h * 3600 + mi * 60 + s
    if seconds <= 0:
        raise typer.BadParameter("a duration must be positive")
    return seconds


def parse_env(pairs: list[str] | None) -> dict[str, str]:
    """['A=1', 'B=x=y'] -> {'A': '1', 'B': 'x=y'}; keys must be environment variable names."""
    out = {}
    for p in pairs or []:
        key, sep, value = p.partition("=")
        if not sep or not _ENV_KEY.match(key):
            raise typer.BadParameter(f"'{p}' is not KEY=VALUE (e.g. LOADTEST_STEPS=6)")
        out[key] = value
    return out


# ------------------------------------------------------------------ the target (where the load goes)
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target", help="Base URL of the inference API (e.g. http://127.0.0.1:8000).", rich_help_panel=TARGET
    ),
]
LocalOpt = Annotated[
    bool,
    typer.Option(
        "--local",
        help="Use the local cluster's front door, Prometheus and HPA (read from its saved settings).",
        rich_help_panel=TARGET,
    ),
]
NameOpt = Annotated[
    str, typer.Option("--name", help="Local cluster name (with --local).", rich_help_panel=TARGET)
]
PromOpt = Annotated[
    str | None,
    typer.Option(
        "--prometheus-url", help="Prometheus that the HPA's metrics adapter reads.", rich_help_panel=TARGET
    ),
]
KubeconfigOpt = Annotated[
    Path | None,
    typer.Option("--kubeconfig", help="Kubeconfig of the cluster running the chart.", rich_help_panel=TARGET),
]
ContextOpt = Annotated[
    str | None, typer.Option("--kube-context", help="Context in the kubeconfig.", rich_help_panel=TARGET)
]
NamespaceOpt = Annotated[
    str,
    typer.Option("--namespace", "-n", help="Namespace of the inference release.", rich_help_panel=TARGET),
]
HpaOpt = Annotated[
    str | None, typer.Option("--hpa", help="Name of the inference HPA.", rich_help_panel=TARGET)
]
ApiOpt = Annotated[
    str,
    typer.Option("--api", help=f"Inference API the users speak: {', '.join(APIS)}.", rich_help_panel=TARGET),
]
SimulatedOpt = Annotated[
    bool,
    typer.Option(
        "--simulated", help="Label every figure SIMULATED (GPU simulator target).", rich_help_panel=TARGET
    ),
]
MetricOpt = Annotated[
    str,
    typer.Option(
        "--metric", help="GPU utilization metric of the HPA and the timeline.", rich_help_panel=TARGET
    ),
]

# ------------------------------------------------------------------ the load
ShapeOpt = Annotated[
    str,
    typer.Option(
        "--shape",
        help="Load shape: step, ramp, spike, diurnal, or a path to a shape file.",
        rich_help_panel=LOAD,
    ),
]
DurationOpt = Annotated[
    str | None,
    typer.Option("--duration", help="Length the shape spreads over (300, 90s, 5m).", rich_help_panel=LOAD),
]
PeakOpt = Annotated[
    int | None,
    typer.Option("--peak-users", min=1, help="Peak concurrent users of the shape.", rich_help_panel=LOAD),
]
SpawnOpt = Annotated[
    float | None,
    typer.Option("--spawn-rate", min=0.1, help="Users started per second.", rich_help_panel=LOAD),
]
ShapeEnvOpt = Annotated[
    list[str] | None,
    typer.Option("--shape-env", help="Extra shape setting KEY=VALUE (repeatable).", rich_help_panel=LOAD),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", help="Model id to request (default: the first the API lists).", rich_help_panel=LOAD
    ),
]
MaxTokensOpt = Annotated[
    int | None, typer.Option("--max-tokens", min=1, help="max_tokens per request.", rich_help_panel=LOAD)
]
WebUiOpt = Annotated[
    bool,
    typer.Option("--web-ui", help="Also serve locust's web UI on 127.0.0.1:8089.", rich_help_panel=LOAD),
]

# ------------------------------------------------------------------ the output
OutOpt = Annotated[
    Path,
    typer.Option("--out", help="Output directory (report.json, report.html, CSVs).", rich_help_panel=OUTPUT),
]
IntervalOpt = Annotated[
    float,
    typer.Option("--interval", min=0.5, help="Seconds between timeline samples.", rich_help_panel=OUTPUT),
]

# ------------------------------------------------------------------ the local cluster
ClusterNameOpt = Annotated[
    str,
    typer.Option(
        "--name",
        help="Local cluster name (its files and saved settings live under ~/.local/state/gpu-inference).",
        rich_help_panel=LOCAL,
    ),
]
ValuesFilesOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--values",
        "-f",
        help="Values file laid over the local overlay, as `helm install -f` (repeatable, in order).",
        rich_help_panel=LOCAL,
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="KEY=VALUE laid over everything else, as `helm install --set` (repeatable).",
        rich_help_panel=LOCAL,
    ),
]
