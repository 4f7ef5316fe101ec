"""Command-line options shared by several commands, defined once.

Each alias is an `Annotated` type that a command uses as a parameter's type, e.g.
`target: TargetOpt = None`. The aliases come in groups (`rich_help_panel`), so `--help` of every
command that uses them shows the same sections: the target, the load, the output.
Commands that take a whole group declare one parameter of its dataclass (`where: TargetOptions`)
and `with_option_groups` spreads it into the group's options.
Parsers for option values (durations, KEY=VALUE pairs) live here too.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_type_hints

import typer

from gpu_inference.domain.timeline import APIS, DEFAULT_METRIC

TARGET = "Target"
LOAD = "Load"
OUTPUT = "Output"
LOCAL = "Local cluster"

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

T = TypeVar("T")


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


def _in_panel(panel: str) -> Callable[..., Any]:
    """typer.Option in one section of --help: the options of a group stand together."""
    return functools.partial(typer.Option, rich_help_panel=panel)


_target = _in_panel(TARGET)
_load = _in_panel(LOAD)
_output = _in_panel(OUTPUT)
_local = _in_panel(LOCAL)

# ------------------------------------------------------------------ the target (where the load goes)
TargetOpt = Annotated[
    str | None, _target("--target", help="Base URL of the inference API (e.g. http://127.0.0.1:8000).")
]
LocalOpt = Annotated[
    bool,
    _target(
        "--local",
        help="Use the local cluster's front door, Prometheus and HPA (read from its saved settings).",
    ),
]
NameOpt = Annotated[str, _target("--name", help="Local cluster name (with --local).")]
PromOpt = Annotated[
    str | None, _target("--prometheus-url", help="Prometheus that the HPA's metrics adapter reads.")
]
KubeconfigOpt = Annotated[
    Path | None, _target("--kubeconfig", help="Kubeconfig of the cluster running the chart.")
]
ContextOpt = Annotated[str | None, _target("--kube-context", help="Context in the kubeconfig.")]
NamespaceOpt = Annotated[str, _target("--namespace", "-n", help="Namespace of the inference release.")]
HpaOpt = Annotated[str | None, _target("--hpa", help="Name of the inference HPA.")]
ApiOpt = Annotated[str, _target("--api", help=f"Inference API the users speak: {', '.join(APIS)}.")]
SimulatedOpt = Annotated[
    bool, _target("--simulated", help="Label every figure SIMULATED (GPU simulator target).")
]
MetricOpt = Annotated[str, _target("--metric", help="GPU utilization metric of the HPA and the timeline.")]

# ------------------------------------------------------------------ the load
ShapeOpt = Annotated[
    str, _load("--shape", help="Load shape: step, ramp, spike, diurnal, or a path to a shape file.")
]
DurationOpt = Annotated[str | None, _load("--duration", help="Length the shape spreads over (300, 90s, 5m).")]
PeakOpt = Annotated[int | None, _load("--peak-users", min=1, help="Peak concurrent users of the shape.")]
SpawnOpt = Annotated[float | None, _load("--spawn-rate", min=0.1, help="Users started per second.")]
ShapeEnvOpt = Annotated[
    list[str] | None, _load("--shape-env", help="Extra shape setting KEY=VALUE (repeatable).")
]
ModelOpt = Annotated[
    str | None, _load("--model", help="Model id to request (default: the first the API lists).")
]
MaxTokensOpt = Annotated[int | None, _load("--max-tokens", min=1, help="max_tokens per request.")]
WebUiOpt = Annotated[bool, _load("--web-ui", help="Also serve locust's web UI on 127.0.0.1:8089.")]

# ------------------------------------------------------------------ the output
OutOpt = Annotated[Path, _output("--out", help="Output directory (report.json, report.html, CSVs).")]
IntervalOpt = Annotated[float, _output("--interval", min=0.5, help="Seconds between timeline samples.")]

# ------------------------------------------------------------------ the local cluster
ClusterNameOpt = Annotated[
    str,
    _local(
        "--name",
        help="Local cluster name (its files and saved settings live under ~/.local/state/gpu-inference).",
    ),
]
ValuesFilesOpt = Annotated[
    list[Path] | None,
    _local(
        "--values",
        "-f",
        help="Values file laid over the local overlay, as `helm install -f` (repeatable, in order).",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    _local("--set", help="KEY=VALUE laid over everything else, as `helm install --set` (repeatable)."),
]

# ------------------------------------------------------------------ the EKS stack (deploy, destroy)
AwsProfileOpt = Annotated[
    str | None, typer.Option("--profile", help="AWS profile (default: the usual AWS credential chain).")
]
WorkDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--work-dir",
        help="Rendered config, kubeconfig, logs and the deploy record (default: "
        "~/.local/state/gpu-inference/eks).",
    ),
]
LogFileOpt = Annotated[Path | None, typer.Option("--log-file", help="Log file (default: in --work-dir).")]
#: --cluster and --work-dir of the commands that read a deployed stack (--eks).
EksClusterOpt = Annotated[
    str, typer.Option("--cluster", help="With --eks: the EKS cluster name (eksctl/cluster.yaml).")
]
EksWorkDirOpt = Annotated[
    Path | None, typer.Option("--work-dir", help="With --eks: deploy's work dir (default: its default).")
]


# ------------------------------------------------------------------ option groups
@dataclasses.dataclass(frozen=True, kw_only=True)
class TargetOptions:
    """The Target options: where the load goes and what is watched there."""

    target: TargetOpt = None
    local: LocalOpt = False
    name: NameOpt = "gpu-inference"
    prometheus_url: PromOpt = None
    kubeconfig: KubeconfigOpt = None
    kube_context: ContextOpt = None
    namespace: NamespaceOpt = "gpu-inference"
    hpa: HpaOpt = None
    api: ApiOpt = "openai"
    simulated: SimulatedOpt = False
    metric: MetricOpt = DEFAULT_METRIC


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoadOptions:
    """The Load and Output options of a load run; each command names its own default --out."""

    shape: ShapeOpt = "step"
    duration: DurationOpt = None
    peak_users: PeakOpt = None
    spawn_rate: SpawnOpt = None
    shape_env: ShapeEnvOpt = None
    out: OutOpt
    interval: IntervalOpt = 5.0
    web_ui: WebUiOpt = False
    model: ModelOpt = None
    max_tokens: MaxTokensOpt = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReleaseOptions:
    """The chart's release on the EKS cluster, and the cluster's region (deploy, destroy)."""

    release: Annotated[str, typer.Option("--release", help="Helm release name of the chart.")] = (
        "gpu-inference"
    )
    namespace: Annotated[str, typer.Option("--namespace", help="Namespace of the chart.")] = "gpu-inference"
    region: Annotated[
        str | None, typer.Option("--region", help="AWS region (default: metadata.region of --config).")
    ] = None


def with_option_groups(
    *, omit: Collection[str] = (), **defaults: Any
) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Spread each option-group parameter of a command (`where: TargetOptions`) into the group's options.

    `--help` lists the group's fields as options of their own, in the group's order, at the place of
    the parameter; the command receives the filled-in dataclass. `defaults` sets a field's default for
    this command (e.g. `out=Path("out/loadtest")`); the fields in `omit` are not offered and keep the
    dataclass's default.
    """

    def decorate(command: Callable[..., T]) -> Callable[..., T]:
        signature = inspect.signature(command, eval_str=True)
        groups: dict[str, tuple[type[Any], list[str]]] = {}
        params: list[inspect.Parameter] = []
        for param in signature.parameters.values():
            group = param.annotation
            if not (isinstance(group, type) and dataclasses.is_dataclass(group)):
                params.append(param)
                continue
            hints = get_type_hints(group, include_extras=True)
            fields = [f for f in dataclasses.fields(group) if f.name not in omit]
            groups[param.name] = (group, [f.name for f in fields])
            for f in fields:
                default = defaults.get(f.name, f.default)
                if default is dataclasses.MISSING:
                    raise TypeError(f"{command.__name__}: give {group.__name__}.{f.name} a default")
                params.append(
                    inspect.Parameter(
                        f.name, inspect.Parameter.KEYWORD_ONLY, annotation=hints[f.name], default=default
                    )
                )

        known = {f.name for group, _ in groups.values() for f in dataclasses.fields(group)}
        if unknown := (set(defaults) | set(omit)) - known:
            raise TypeError(f"{command.__name__}: no option group has {sorted(unknown)}")

        @functools.wraps(command)
        def run(**kwargs: Any) -> T:
            for param_name, (group, names) in groups.items():
                kwargs[param_name] = group(**{n: kwargs.pop(n) for n in names})
            return command(**kwargs)

        run.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params} | {"return": signature.return_annotation}
        return run

    return decorate
