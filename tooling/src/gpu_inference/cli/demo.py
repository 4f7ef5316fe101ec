"""`gpu-inference demo` (`make demo`): the whole loop on the local cluster, with a verdict.

local up -> verify-scaleup with a load shape -> cost report -> report.html -> local down.
Exit status 0 only when scale-up was verified. Every GPU figure is SIMULATED.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from gpu_inference.cli.common import user_errors
from gpu_inference.cli.options import SetOpt, ValuesFilesOpt
from gpu_inference.domain.constants import GPU_UTIL_METRIC

if TYPE_CHECKING:
    from gpu_inference.domain.timeline import RunReport

log = logging.getLogger(__name__)


def demo(
    name: Annotated[str, typer.Option("--name", help="Local cluster name.")] = "gpu-inference",
    shape: Annotated[
        str, typer.Option("--shape", help="Load shape: a name in loadtest/shapes or a file.")
    ] = "step",
    out: Annotated[Path, typer.Option("--out", help="Where report.json/.html and cost.* go.")] = Path(
        "out/demo"
    ),
    peak_users: Annotated[
        int,
        typer.Option("--peak-users", min=1, help="Closed loop (classic profile): peak locust users."),
    ] = 3,
    duration: Annotated[float, typer.Option("--duration", min=30, help="Load duration in seconds.")] = 300.0,
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            help="GPU simulator profile: auto (the chart preset: vllm -> llm), llm, classic.",
        ),
    ] = "auto",
    peak_factor: Annotated[
        float,
        typer.Option(
            "--peak-factor", min=0.1, help="Open loop: peak rate as a multiple of the measured capacity."
        ),
    ] = 1.2,
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration",
            help="calibration.json of `gpu-inference calibrate --local` (skips measuring it again).",
        ),
    ] = None,
    values: ValuesFilesOpt = None,
    set_values: SetOpt = None,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the local cluster running afterwards.")] = False,
) -> None:
    """Bring up the local cluster, prove scale-up under load, report cost; non-zero unless verified.

    The default load (3 users at peak) saturates one simulated T4 replica and fits two under the
    80 % target, so a healthy stack scales 1 -> 2 and back.
    """
    from gpu_inference.adapters.openloop import OpenLoopOptions
    from gpu_inference.rendering.cost_tables import report_table
    from gpu_inference.services import local
    from gpu_inference.services.cost.report import cost_report_from_run
    from gpu_inference.services.loadtest.runner import VerifyOptions, run_verify_scaleup
    from gpu_inference.services.local.cluster import LocalCluster
    from gpu_inference.services.local.config import LocalClusterConfig

    passed = False
    with user_errors():
        sets = list(set_values or [])
        cfg = LocalClusterConfig.from_options(
            name=name,
            profile=profile,
            values_files=tuple(values or ()),
            set_values=tuple(sets),
        )
        cluster = LocalCluster(cfg)
        try:
            cluster.up()
            target = local.target(name)
            # The llm profile is the chart's vLLM: open-loop arrivals and per-request SLO records; the
            # classic profile serves one request at a time and keeps locust's closed loop.
            open_loop = cluster.cfg.profile == "llm"  # resolved from the chart's preset by up()
            options = VerifyOptions(
                target=target,
                shape=shape,
                out_dir=out,
                duration_s=duration,
                peak_users=peak_users,
                spawn_rate=1.0,
                interval_s=5.0,
                mode="open" if open_loop else "closed",
                open_duration_s=duration,
                peak_factor=peak_factor,
                open_loop=OpenLoopOptions(max_in_flight=1024),
                timing_profile=cfg.timing,
                calibration_file=calibration,
            )
            report = run_verify_scaleup(options)
            cost = cost_report_from_run(out, ca_unneeded_s=cfg.timings().scale_down_unneeded_s)
            console = Console()
            for c in report.checks:
                console.print(f"  [{'pass' if c.passed else 'FAIL'}] {c.name}: {c.detail}", markup=False)
            for line in signal_advice(report):
                console.print(line, markup=False)
            console.print(report_table(cost))
            passed = bool(report.passed)
            verdict = "scale-up VERIFIED" if passed else "scale-up NOT verified"
            typer.echo(f"{verdict} (SIMULATED GPUs). Report: {(out / 'report.html').resolve()}")
        finally:
            if keep:
                typer.echo(
                    f"cluster {name} left running; stop it with: gpu-inference local down --name {name}"
                )
            else:
                cluster.down()
    if not passed:
        raise typer.Exit(code=1)


def signal_advice(report: RunReport) -> list[str]:
    """What the run says about the scaling signal, in plain words with its figures."""
    hpa = report.hpa
    if hpa is None:
        return []
    names = [m.name for m in hpa.all_metrics()]
    lines = [f"The HPA scaled on: {', '.join(names)} (autoscaling.signals)."]
    gpu_only = names == [GPU_UTIL_METRIC]
    over = report.overprovision_ratio
    if gpu_only and report.run.simulator and report.run.simulator.get("kind") == "llm":
        figure = f" GPU-hours were {over:.2f}x the oracle's." if over is not None else ""
        lines.append(
            "GPU utilization is the design's signal, but on a continuous-batching server (vLLM) it reads "
            f"~100 % with one request in the batch, so the HPA adds replicas the load does not need.{figure} "
            "The vllm preset's recommended signals (autoscaling.signals: [preset]) track the batch instead; "
            "docs/benchmarks.md has the side-by-side figures."
        )
    return lines


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
