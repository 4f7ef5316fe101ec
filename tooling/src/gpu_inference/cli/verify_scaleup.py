"""`gpu-inference verify-scaleup`: a load test with a verdict.

Exit status: 0 verified, 1 not verified, 2 bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gpu_inference.cli.common import user_errors
from gpu_inference.cli.loadtest import Progress, shared_options, summary_line
from gpu_inference.cli.options import (
    ApiOpt,
    ContextOpt,
    DurationOpt,
    HpaOpt,
    IntervalOpt,
    KubeconfigOpt,
    LocalOpt,
    MaxTokensOpt,
    MetricOpt,
    ModelOpt,
    NameOpt,
    NamespaceOpt,
    OutOpt,
    PeakOpt,
    PromOpt,
    ShapeEnvOpt,
    ShapeOpt,
    SimulatedOpt,
    SpawnOpt,
    TargetOpt,
    WebUiOpt,
    parse_duration,
)
from gpu_inference.domain.timeline import DEFAULT_METRIC


def verify_scaleup(
    *,
    target: TargetOpt = None,
    local: LocalOpt = False,
    name: NameOpt = "gpu-inference",
    prometheus_url: PromOpt = None,
    kubeconfig: KubeconfigOpt = None,
    kube_context: ContextOpt = None,
    namespace: NamespaceOpt = "gpu-inference",
    hpa: HpaOpt = None,
    api: ApiOpt = "openai",
    simulated: SimulatedOpt = False,
    shape: ShapeOpt = "step",
    duration: DurationOpt = None,
    peak_users: PeakOpt = None,
    spawn_rate: SpawnOpt = None,
    shape_env: ShapeEnvOpt = None,
    out: OutOpt = Path("out/verify-scaleup"),
    interval: IntervalOpt = 5.0,
    web_ui: WebUiOpt = False,
    model: ModelOpt = None,
    max_tokens: MaxTokensOpt = None,
    metric: MetricOpt = DEFAULT_METRIC,
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
) -> None:
    """Load test that passes only if the stack scaled up (and back down) as designed."""
    args = dict(locals())
    from gpu_inference.services.loadtest.runner import VerifyOptions, run_verify_scaleup

    with user_errors():
        options = VerifyOptions(
            **shared_options(args),
            slo_p95_ms=slo_p95_ms,
            max_error_ratio=max_error_ratio,
            scale_up_within_s=parse_duration(scale_up_within) or 300.0,
            scale_down_within_s=parse_duration(scale_down_within),
            skip_scale_down=skip_scale_down,
            hpa_tolerance=hpa_tolerance,
            settle_timeout_s=parse_duration(settle_timeout) or 0.0,
        )
        with Progress(f"verify-scaleup: {options.target.url}") as progress:
            report = run_verify_scaleup(options, on_sample=progress)
    for c in report.checks:
        typer.echo(f"  [{'pass' if c.passed else 'FAIL'}] {c.name}: {c.detail}")
    verdict = "scale-up VERIFIED" if report.passed else "scale-up NOT verified"
    typer.echo(f"{verdict}: {summary_line(report, out)}")
    if not report.passed:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command("verify-scaleup")(verify_scaleup)
