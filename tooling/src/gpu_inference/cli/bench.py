"""`gpu-inference bench --matrix FILE`: the autoscaling benchmark on the local cluster.

Runs every cell of the matrix (load shape x chart configuration x timing profile x seed) one after
another, each on a fresh local cluster with the real HPA and SIMULATED GPUs, and writes the
aggregate table (bench.json, bench.csv, bench.md) and bench.html to --out. Prints the table and
the wall time. Exit status 0 when every cell ran, 1 when some failed (they are in the table).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated

import typer

from gpu_inference.cli.common import user_errors
from gpu_inference.cli.options import LOCAL, OUTPUT

log = logging.getLogger(__name__)


def bench(
    matrix: Annotated[
        Path,
        typer.Option(
            "--matrix", help="Matrix file (YAML), e.g. bench/matrix-ci.yaml.", rich_help_panel=LOCAL
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Output directory (tables, page, every cell's run).", rich_help_panel=OUTPUT
        ),
    ] = Path("out/bench"),
    time_scale: Annotated[
        float | None,
        typer.Option(
            "--time-scale",
            help="Override the matrix's time scale k: every interval (HPA sync, scrape, collection, relist, "
            "windows, policy periods, simulated timings, the shape's clock) is divided by k.",
            rich_help_panel=LOCAL,
        ),
    ] = None,
    name: Annotated[
        str, typer.Option("--name", help="Name of the local cluster each cell starts.", rich_help_panel=LOCAL)
    ] = "bench",
    front_door_port: Annotated[int, typer.Option(help="Loopback port of the inference API.")] = 24000,
    prometheus_port: Annotated[int, typer.Option(help="Loopback port of Prometheus.")] = 24090,
    adapter_port: Annotated[int, typer.Option(help="Loopback port of prometheus-adapter.")] = 24443,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Keep the cells that ran ok in --out's results.jsonl (same matrix) and run only the others.",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
) -> None:
    """Run a benchmark matrix on the local cluster (SIMULATED GPUs) and write its tables."""
    started = time.monotonic()
    with user_errors():
        from gpu_inference.domain.bench import load_matrix, parse_matrix
        from gpu_inference.services.bench.run import BenchOptions, run_bench

        m = load_matrix(matrix)
        if time_scale is not None:
            m = parse_matrix({**m.model_dump(mode="json"), "time_scale": time_scale}, source="--time-scale")
        result = run_bench(
            m,
            BenchOptions(
                out_dir=out.resolve(),
                cluster_name=name,
                front_door_port=front_door_port,
                prometheus_port=prometheus_port,
                adapter_port=adapter_port,
                matrix_path=str(matrix),
                resume=resume,
            ),
        )
    typer.echo("SIMULATED GPUs. Median over seeds (min-max); times in nominal seconds from the load step.")
    typer.echo(result.outputs["markdown"].read_text())
    typer.echo(f"capacity per replica: {result.capacity_rps:g} req/s ({result.capacity_source})")
    for kind, path in result.outputs.items():
        typer.echo(f"{kind}: {path}")
    failed = [r for r in result.results if not r.ok]
    typer.echo(
        f"wall time: {time.monotonic() - started:.0f}s for {len(result.results)} cells ({len(failed)} failed)"
    )
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
