"""`gpu-inference verify-scaleup`: a load test with a verdict.

Exit status: 0 verified, 1 not verified, 2 bad input.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from gpu_inference.cli.common import user_errors
from gpu_inference.cli.loadtest import Progress, shared_options, summary_line
from gpu_inference.cli.options import (
    EksClusterOpt,
    EksWorkDirOpt,
    LoadOptions,
    TargetOptions,
    parse_duration,
    with_option_groups,
)
from gpu_inference.errors import ConfigError

VERDICT = "Verdict and open-loop load"


@with_option_groups(out=Path("out/verify-scaleup"))
def verify_scaleup(
    *,
    where: TargetOptions,
    load: LoadOptions,
    slo_p95_ms: Annotated[
        float, typer.Option("--slo-p95-ms", min=1, help="p95 latency SLO in milliseconds.")
    ] = 5000.0,
    max_error_ratio: Annotated[
        float,
        typer.Option("--max-error-ratio", min=0, max=1, help="Largest share of failed requests allowed."),
    ] = 0.01,
    scale_up_within: Annotated[
        str, typer.Option("--scale-up-within", help="Bound from threshold crossing to the first scale-up.")
    ] = "5m",
    scale_down_within: Annotated[
        str | None,
        typer.Option(
            "--scale-down-within",
            help="Bound for replicas to return after the load (default: HPA window + 2m).",
        ),
    ] = None,
    skip_scale_down: Annotated[
        bool, typer.Option("--skip-scale-down", help="Don't wait for, or judge, the scale-down.")
    ] = False,
    settle_timeout: Annotated[
        str,
        typer.Option("--settle-timeout", help="Wait before the load for the HPA's metric and minimum size."),
    ] = "3m",
    hpa_tolerance: Annotated[
        float,
        typer.Option(
            "--hpa-tolerance", min=0, max=0.99, help="The controller's tolerance (kube default 0.1)."
        ),
    ] = 0.1,
    eks: Annotated[
        bool,
        typer.Option(
            "--eks",
            help="Verify the stack `make deploy` created: kubeconfig, namespace, HPA and Prometheus from its "
            "deploy record; the inference Service and Prometheus are port-forwarded to loopback.",
        ),
    ] = False,
    cluster: EksClusterOpt = "gpu-inference",
    work_dir: EksWorkDirOpt = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="open: Poisson arrivals at a rate shape, one record per request (SLO checks read them); "
            "closed: locust users. auto: open for the openai API, closed otherwise.",
            rich_help_panel=VERDICT,
        ),
    ] = "auto",
    rate_shape: Annotated[
        str | None,
        typer.Option(
            "--rate-shape",
            help="Open-loop rate shape: constant, step, ramp, spike, diurnal, bursts, from-idle "
            "(default: a step to --peak-factor x the measured capacity).",
            rich_help_panel=VERDICT,
        ),
    ] = None,
    rate: Annotated[
        list[str] | None,
        typer.Option(
            "--rate",
            help="Rate-shape parameter KEY=VALUE, e.g. peak_rate=20 (repeatable).",
            rich_help_panel=VERDICT,
        ),
    ] = None,
    peak_factor: Annotated[
        float,
        typer.Option(
            "--peak-factor",
            min=0.1,
            help="Default step's peak as a multiple of the capacity.",
            rich_help_panel=VERDICT,
        ),
    ] = 1.4,
    prompt_tokens: Annotated[
        int, typer.Option("--prompt-tokens", min=1, help="Open-loop prompt length.", rich_help_panel=VERDICT)
    ] = 128,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the open-loop arrivals.", rich_help_panel=VERDICT)
    ] = 0,
    capacity_rps: Annotated[
        float | None,
        typer.Option(
            "--capacity-rps",
            min=0.001,
            help="Per-replica requests/s at the SLO, from a calibration.",
            rich_help_panel=VERDICT,
        ),
    ] = None,
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration",
            help="calibration.json of `gpu-inference calibrate` (capacity source).",
            rich_help_panel=VERDICT,
        ),
    ] = None,
    ready_within: Annotated[
        str,
        typer.Option(
            "--ready-within",
            help="Bound from each scale-up to all its replicas Ready.",
            rich_help_panel=VERDICT,
        ),
    ] = "2m",
    max_reversals: Annotated[
        float,
        typer.Option("--max-reversals-per-10min", min=0, help="Flapping bound.", rich_help_panel=VERDICT),
    ] = 2.0,
    max_minutes_at_max: Annotated[
        float,
        typer.Option(
            "--max-minutes-at-max",
            min=0,
            help="Minutes at maxReplicas with a metric over target.",
            rich_help_panel=VERDICT,
        ),
    ] = 3.0,
    max_overprovision: Annotated[
        float,
        typer.Option(
            "--max-overprovision",
            min=1,
            help="GPU-hours / the oracle's GPU-hours bound.",
            rich_help_panel=VERDICT,
        ),
    ] = 1.5,
    skip_overprovision: Annotated[
        bool,
        typer.Option(
            "--skip-overprovision", help="Don't judge GPU-hours against the oracle.", rich_help_panel=VERDICT
        ),
    ] = False,
    slo_ttft_ms: Annotated[
        float, typer.Option("--slo-ttft-ms", min=1, help="Per-request TTFT bound.", rich_help_panel=VERDICT)
    ] = 2000.0,
    slo_tpot_ms: Annotated[
        float, typer.Option("--slo-tpot-ms", min=1, help="Per-request TPOT bound.", rich_help_panel=VERDICT)
    ] = 200.0,
    min_slo_attainment: Annotated[
        float,
        typer.Option(
            "--min-slo-attainment",
            min=0,
            max=1,
            help="Share of requests that must meet the SLO.",
            rich_help_panel=VERDICT,
        ),
    ] = 0.95,
) -> None:
    """Load test that passes only if the stack scaled up (and back down) as designed."""
    args = {**asdict(where), **asdict(load), **locals()}
    from gpu_inference.services.loadtest.runner import VerifyOptions, run_verify_scaleup

    with user_errors(), ExitStack() as stack:
        if eks:
            if where.local or where.target is not None:
                raise ConfigError("--eks", "given with --local or --target", "use one of them")
            from gpu_inference.domain.deployment_state import default_work_dir
            from gpu_inference.services.eks.verify_target import eks_target

            found = stack.enter_context(eks_target(cluster, work_dir or default_work_dir(), where.api))
            shared = shared_options(replace(where, target=found.url), load)
            shared["target"] = found
        else:
            shared = shared_options(where, load)
        options = VerifyOptions(
            **shared,
            slo_p95_ms=slo_p95_ms,
            max_error_ratio=max_error_ratio,
            scale_up_within_s=parse_duration(scale_up_within) or 300.0,
            scale_down_within_s=parse_duration(scale_down_within),
            skip_scale_down=skip_scale_down,
            hpa_tolerance=hpa_tolerance,
            settle_timeout_s=parse_duration(settle_timeout) or 0.0,
            **verdict_options(args),
        )
        with Progress(f"verify-scaleup: {options.target.url}") as progress:
            report = run_verify_scaleup(options, on_sample=progress)
    for c in report.checks:
        typer.echo(f"  [{'pass' if c.passed else 'FAIL'}] {c.name}: {c.detail}")
    verdict = "scale-up VERIFIED" if report.passed else "scale-up NOT verified"
    typer.echo(f"{verdict}: {summary_line(report, load.out)}")
    if not report.passed:
        raise typer.Exit(code=1)


def verdict_options(args: dict[str, Any]) -> dict[str, Any]:
    """The open-loop and verdict-bound options (verify-scaleup and demo share them)."""
    from gpu_inference.adapters.openloop import OpenLoopOptions
    from gpu_inference.domain.rate_shapes import parse_rate_shape

    mode = args["mode"]
    if mode not in ("auto", "open", "closed"):
        raise ConfigError("--mode", f"unknown mode '{mode}'", "use open, closed or auto")
    if mode == "auto":
        mode = "open" if args["api"] == "openai" else "closed"
    if mode == "open" and args["api"] != "openai":
        raise ConfigError(
            "--mode open",
            f"the open-loop client speaks the openai API, not {args['api']}",
            "use --mode closed",
        )
    shape = None
    if args["rate_shape"] is not None:
        shape = parse_rate_shape(args["rate_shape"], list(args["rate"] or []), setting="--rate-shape/--rate")
    elif args["rate"]:
        raise ConfigError(
            "--rate", "rate parameters without a rate shape", "add --rate-shape step (or another)"
        )
    return {
        "mode": mode,
        "rate_shape": shape,
        "open_loop": OpenLoopOptions(
            model=args["model"],
            prompt_tokens=args["prompt_tokens"],
            max_tokens=args["max_tokens"] or 64,
            seed=args["seed"],
            # The open-loop client must not be the bottleneck: a step past a few replicas' capacity keeps
            # hundreds of streams open (rate x latency).
            max_in_flight=1024,
        ),
        "peak_factor": args["peak_factor"],
        "open_duration_s": parse_duration(args["duration"]) or 240.0,
        "capacity_rps": args["capacity_rps"],
        "calibration_file": args["calibration"],
        "ready_within_s": parse_duration(args["ready_within"]) or 120.0,
        "max_reversals_per_10min": args["max_reversals"],
        "max_minutes_pinned_at_max": args["max_minutes_at_max"],
        "max_overprovision": args["max_overprovision"],
        "skip_overprovision": args["skip_overprovision"],
        "slo_ttft_ms": args["slo_ttft_ms"],
        "slo_tpot_ms": args["slo_tpot_ms"],
        "min_slo_attainment": args["min_slo_attainment"],
    }


def register(app: typer.Typer) -> None:
    app.command("verify-scaleup")(verify_scaleup)
