"""`gpu-inference calibrate`: measure one replica's capacity (requests/s) at a per-request SLO.

The figure the verdict's oracle divides demand by. Exit status: 0 measured, 2 bad input or no
rate met the SLO.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gpu_inference.cli.common import user_errors
from gpu_inference.cli.options import EksClusterOpt, EksWorkDirOpt, LocalOpt, NameOpt
from gpu_inference.errors import ConfigError

if TYPE_CHECKING:
    from gpu_inference.services.loadtest.calibrate import Calibration, CalibrationStep


def calibrate_command(
    target: Annotated[
        str | None, typer.Option("--target", help="URL of ONE replica (a pod or a port-forward to it).")
    ] = None,
    local: LocalOpt = False,
    name: NameOpt = "gpu-inference",
    eks: Annotated[
        bool, typer.Option("--eks", help="One Ready inference pod of the stack `make deploy` created.")
    ] = False,
    cluster: EksClusterOpt = "gpu-inference",
    work_dir: EksWorkDirOpt = None,
    out: Annotated[
        Path, typer.Option("--out", help="Where calibration.json and the step records go.")
    ] = Path("out/calibrate"),
    slo_ttft_ms: Annotated[float, typer.Option("--slo-ttft-ms", min=1, help="TTFT bound.")] = 2000.0,
    slo_tpot_ms: Annotated[float, typer.Option("--slo-tpot-ms", min=1, help="TPOT bound.")] = 200.0,
    attainment: Annotated[
        float, typer.Option("--attainment", min=0.01, max=1, help="Share of requests that must meet it.")
    ] = 0.95,
    step_s: Annotated[float, typer.Option("--step-s", min=1, help="Seconds per rate step.")] = 20.0,
    prompt_tokens: Annotated[int, typer.Option("--prompt-tokens", min=1, help="Prompt length.")] = 128,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Tokens per answer.")] = 64,
) -> None:
    """Open-loop steps of rising rate against one replica; prints the table and the capacity."""
    from gpu_inference.adapters.openloop import OpenLoopOptions
    from gpu_inference.domain.requests import Slo
    from gpu_inference.services.loadtest.calibrate import CalibrationOptions, calibrate
    from gpu_inference.services.loadtest.calibrate_sim import simulated_replica
    from gpu_inference.services.loadtest.runner import simulator_profile_name

    with user_errors(), ExitStack() as stack:
        if sum([target is not None, local, eks]) != 1:
            raise ConfigError(
                "--target/--local/--eks", "give exactly one", "e.g. --local for the local cluster"
            )
        if local:
            from gpu_inference.services import local as local_cluster

            profile = simulator_profile_name(local_cluster.target(name))
            if profile is None:
                raise ConfigError(
                    "--local", f"cluster {name} does not serve the GPU simulator", "use --target"
                )
            url = stack.enter_context(simulated_replica(profile))
        elif eks:
            from gpu_inference.domain.deployment_state import default_work_dir
            from gpu_inference.services.eks.verify_target import one_replica

            url = stack.enter_context(one_replica(cluster, work_dir or default_work_dir()))
        else:
            assert target is not None
            url = target
        options = CalibrationOptions(
            step_s=step_s,
            target_attainment=attainment,
            request=OpenLoopOptions(prompt_tokens=prompt_tokens, max_tokens=max_tokens, max_in_flight=1024),
            out_dir=out,
        )
        cal = calibrate(url, Slo(ttft_s=slo_ttft_ms / 1000, tpot_s=slo_tpot_ms / 1000), options)
    typer.echo(cal.table())
    for line in suggested_targets(cal):
        typer.echo(line)
    typer.echo(f"calibration: {(out / 'calibration.json').resolve()}")


#: The share of the measured capacity an HPA target should aim at: headroom for the scaling lag.
HEADROOM = 0.85


def suggested_targets(cal: Calibration) -> list[str]:
    """Per-pod targets for the chart's signals, read off the measured steps (Little's law for running)."""
    if cal.capacity_rps is None:
        return []
    aim = HEADROOM * cal.capacity_rps
    below = [s for s in cal.steps if s.met_target and s.rate <= cal.capacity_rps]
    step = min(below, key=lambda s: abs(s.rate - aim)) if below else None
    lines = [f"suggested targets at {HEADROOM:.0%} of the capacity ({aim:.1f} req/s per replica):"]
    lines.append(f"  autoscaling.signalSettings.requestRate.target={aim:.1f}")
    if step is not None:
        running = running_requests(step)
        if running is not None:
            lines.append(
                f"  autoscaling.signalSettings.runningRequests.target={running:.0f}"
                f"  (requests in flight at {step.rate:g} req/s: rate x mean latency)"
            )
    return lines


def running_requests(step: CalibrationStep) -> float | None:
    """Mean requests in flight during a step (Little's law: arrival rate x mean latency of its requests)."""
    from gpu_inference.adapters.openloop import read_records

    records = [r for r in read_records(Path(step.records_path)) if r.ok and r.latency_s is not None]
    if not records:
        return None
    return step.rate * sum(r.latency_s or 0.0 for r in records) / len(records)


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate_command)
