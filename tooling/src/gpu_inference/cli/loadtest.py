"""`gpu-inference loadtest`: locust against the inference API, with a timeline and reports.

The options it shares with verify-scaleup (and cost) are defined once in cli/options.py.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.table import Table

from gpu_inference.cli.common import user_errors
from gpu_inference.cli.logging_setup import is_interactive
from gpu_inference.cli.options import (
    LoadOptions,
    TargetOptions,
    parse_duration,
    parse_env,
    with_option_groups,
)
from gpu_inference.domain.timeline import RunReport, Target, TimelineSample
from gpu_inference.errors import ConfigError

log = logging.getLogger(__name__)

# Other command modules and the tests may import the option parsers from here too.
__all__ = [
    "loadtest", "parse_duration", "parse_env", "resolve_target", "resolve_target_options", "shared_options",
]  # fmt: skip

_OPTION_OF = {
    "url": "--target",
    "prometheus_url": "--prometheus-url",
    "namespace": "--namespace",
    "api": "--api",
}


def resolve_target(
    *,
    target: str | None,
    local: bool,
    name: str,
    prometheus_url: str | None,
    kubeconfig: Path | None,
    kube_context: str | None,
    namespace: str,
    hpa: str | None,
    api: str,
    simulated: bool,
) -> Target:
    """--local asks services.local for the local cluster's target; otherwise the explicit options."""
    if local:
        if target is not None:
            raise ConfigError(
                "--local/--target", "both given", "use --local for the local cluster or --target URL"
            )
        try:
            from gpu_inference.services.local import target as local_target
        except ImportError as exc:
            raise ConfigError(
                "--local",
                "this checkout has no local cluster support (gpu_inference.services.local.target)",
                "pass --target, --prometheus-url, --kubeconfig and --hpa explicitly",
            ) from exc
        resolved: Target = local_target(name)
        return resolved
    if target is None:
        raise ConfigError("--target", "no target", "pass --target URL (the inference API) or --local")
    try:
        return Target(
            url=target,
            prometheus_url=prometheus_url,
            kubeconfig=kubeconfig,
            kube_context=kube_context,
            namespace=namespace,
            hpa_name=hpa,
            simulated=simulated,
            api=api,
            name=target,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        option = _OPTION_OF.get(str(first["loc"][0]), str(first["loc"][0]))
        raise ConfigError(option, str(first["msg"]).removeprefix("Value error, "), "fix the option") from exc


_TARGET_ARGS = (
    "target", "local", "name", "prometheus_url", "kubeconfig", "kube_context",
    "namespace", "hpa", "api", "simulated",
)  # fmt: skip


def resolve_target_options(where: TargetOptions) -> Target:
    """resolve_target of the Target option group."""
    return resolve_target(**{k: getattr(where, k) for k in _TARGET_ARGS})


def shared_options(where: TargetOptions, load: LoadOptions) -> dict[str, Any]:
    """The target and the run options loadtest and verify-scaleup share, from their option groups."""
    return {
        "target": resolve_target_options(where),
        "shape": load.shape,
        "out_dir": load.out,
        "duration_s": parse_duration(load.duration),
        "peak_users": load.peak_users,
        "spawn_rate": load.spawn_rate,
        "shape_env": parse_env(load.shape_env),
        "interval_s": load.interval,
        "web_ui": load.web_ui,
        "model": load.model,
        "max_tokens": load.max_tokens,
        "metric": where.metric,
    }


class Progress:
    """Live table on a terminal, one log line per sample otherwise."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.live: Live | None = None
        self.rows: list[TimelineSample] = []

    def __enter__(self) -> Progress:
        if is_interactive():
            self.live = Live(self._table(), console=Console(stderr=True), refresh_per_second=2)
            self.live.__enter__()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.live is not None:
            self.live.__exit__(et, ev, tb)

    @staticmethod
    def cells(s: TimelineSample) -> list[str]:
        lo, rq = s.locust, s.requests
        if lo is not None:
            users, rps = str(lo.users), f"{lo.rps:.1f}"
            p95 = f"{lo.p95_ms:.0f}" if lo.p95_ms is not None else "-"
        else:  # open loop: offered rate, and the TTFT p95 of the requests that finished since the last row
            users, rps = "open", f"{s.demand_rps:.1f}" if s.demand_rps is not None else "-"
            p95 = f"{rq.ttft_p95_ms:.0f}" if rq and rq.ttft_p95_ms is not None else "-"
        return [
            "before" if s.phase == "baseline" else f"{s.elapsed_s:.0f}s",
            s.phase,
            users,
            rps,
            p95,
            f"{s.utilization:.0f}" if s.utilization is not None else "-",
            f"{s.hpa.current_replicas}->{s.hpa.desired_replicas}" if s.hpa else "-",
            str(s.workload.ready_replicas) if s.workload else "-",
            str(len(s.gpu_nodes)) if s.nodes else "-",
            str(len(s.errors)) if s.errors else "",
        ]

    HEAD = ("t", "phase", "users", "rps", "p95 ms", "GPU %", "replicas", "ready", "GPU nodes", "errors")

    def _table(self) -> Table:
        t = Table(title=self.title)
        for h in self.HEAD:
            t.add_column(h, justify="right")
        for s in self.rows[-15:]:
            t.add_row(*self.cells(s))
        return t

    def __call__(self, s: TimelineSample) -> None:
        self.rows.append(s)
        if self.live is not None:
            self.live.update(self._table())
        else:
            log.info("%s", " ".join(f"{h}={c}" for h, c in zip(self.HEAD, self.cells(s), strict=True) if c))


def summary_line(report: RunReport, out: Path) -> str:
    sim = " [SIMULATED GPUs]" if report.simulated else ""
    cost = f", cost ${report.cost.total_usd:.4f}" if report.cost else ""
    p95 = f"{report.max_p95_ms:.0f} ms" if report.max_p95_ms is not None else "n/a"
    return (
        f"{report.total_requests} requests, {report.total_failures} failed, max p95 {p95}, replicas "
        f"{report.initial_replicas} -> peak {report.peak_replicas}{cost}{sim}. Report: {out / 'report.html'}"
    )


@with_option_groups(out=Path("out/loadtest"))
def loadtest(
    *,
    where: TargetOptions,
    load: LoadOptions,
    observe_after: Annotated[
        str | None, typer.Option("--observe-after", help="Keep sampling this long after the load (e.g. 2m).")
    ] = None,
) -> None:
    """Run a load shape against the inference API and record a timeline (no verdict)."""
    from gpu_inference.services.loadtest.runner import LoadTestOptions, run_loadtest

    with user_errors():
        options = LoadTestOptions(
            **shared_options(where, load), observe_after_s=parse_duration(observe_after) or 0.0
        )
        with Progress(f"load test: {options.target.url}") as progress:
            report = run_loadtest(options, on_sample=progress)
    typer.echo(summary_line(report, load.out))


def register(app: typer.Typer) -> None:
    app.command("loadtest")(loadtest)
