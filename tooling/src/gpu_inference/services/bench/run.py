"""Run a benchmark matrix on the local cluster, one cell after another, and write its tables.

Per cell: a fresh local cluster (real control plane and HPA, SIMULATED GPUs) with the cell's chart
configuration and every interval divided by the time scale k (domain.bench.scaled_timing_values),
an open-loop run of the cell's load shape (services.loadtest.runner), the cell's figures from the
timeline and the per-request records, then the cluster is removed. The per-replica capacity the
oracle uses is measured once per run (a SIMULATED replica beside the cluster) unless the matrix
gives it.

Outputs in --out: cells/<cell id>/ (the run's report, timeline, requests), results.jsonl (one
CellResult per line, as the cells finish), bench.json, bench.csv, bench.md, bench.html.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gpu_inference import paths
from gpu_inference.adapters.openloop import OpenLoopOptions
from gpu_inference.domain.bench import (
    Cell,
    CellResult,
    ChartConfig,
    Compressed,
    GroupRow,
    Matrix,
    aggregate,
    cell_figures,
    deep_merge,
    faithfulness,
    scaled_timing_values,
)
from gpu_inference.domain.requests import RequestRecord
from gpu_inference.domain.timeline import TimelineSample
from gpu_inference.errors import ConfigError, GpuInferenceError
from gpu_inference.rendering import bench_html, bench_tables

log = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"


@dataclass
class BenchOptions:
    """Where the benchmark runs and writes."""

    out_dir: Path
    #: The local cluster each cell starts (and removes); distinct from a developer's own cluster.
    cluster_name: str = "bench"
    front_door_port: int = 24000
    prometheus_port: int = 24090
    adapter_port: int = 24443
    matrix_path: str = ""
    #: Keep the cells that already ran ok in out_dir/results.jsonl; run only the others.
    resume: bool = False


@dataclass
class BenchResult:
    """What a run produced."""

    results: list[CellResult]
    rows: list[GroupRow]
    wall_s: float
    capacity_rps: float
    capacity_source: str
    outputs: dict[str, Path] = field(default_factory=dict)


def chart_defaults() -> dict[str, Any]:
    """The chart's default values, with the DCGM exporter subchart's collection interval."""
    chart = paths.chart_dir()
    values: dict[str, Any] = yaml.safe_load((chart / "values.yaml").read_text()) or {}
    sub = yaml.safe_load((chart / "charts" / "dcgm-exporter" / "values.yaml").read_text()) or {}
    dcgm = values.setdefault("dcgm-exporter", {})
    dcgm.setdefault("collectIntervalMs", sub.get("collectIntervalMs", 5000))
    return values


def merged_values(config: ChartConfig) -> dict[str, Any]:
    """Chart defaults with the configuration's values files laid over them (helm's order)."""
    merged = chart_defaults()
    for f in config.values:
        merged = deep_merge(merged, yaml.safe_load(f.read_text()) or {})
    return merged


def compress(matrix: Matrix, cell: Cell) -> Compressed:
    """The cell's chart configuration with every interval divided by its time scale."""
    return scaled_timing_values(merged_values(matrix.config(cell.config)), cell.time_scale)


def check_matrix(matrix: Matrix) -> None:
    """Refuse, before any cluster starts, a time scale that breaks an interval of some cell."""
    seen: set[tuple[str, float]] = set()
    for cell in matrix.cells():
        if (cell.config, cell.time_scale) in seen:
            continue
        seen.add((cell.config, cell.time_scale))
        try:
            compress(matrix, cell)
        except ConfigError as exc:
            raise ConfigError(
                f"{exc.setting} {cell.time_scale:g} (config {cell.config})", exc.problem, exc.fix
            ) from None


def usd_per_replica_hour() -> tuple[float | None, str]:
    """On-demand $/h of one GPU of the cluster's GPU node group (one replica holds one GPU)."""
    from gpu_inference.domain.cluster_spec import load_cluster_spec
    from gpu_inference.domain.prices import load_price_book

    spec = load_cluster_spec(paths.eksctl_config())
    groups = spec.gpu_node_groups
    if not groups:
        return None, "no GPU node group in eksctl/cluster.yaml"
    ng = groups[0]
    book = load_price_book()
    hourly, note = book.node_hourly(ng.instance_type, None)
    if hourly is None:
        return None, note
    per_gpu = hourly / max(1, ng.gpus_per_node)
    return per_gpu, f"{ng.instance_type} on-demand {book.region} as of {book.as_of}: ${per_gpu:.3f}/GPU-hour"


def measure_capacity(matrix: Matrix, out_dir: Path) -> tuple[float, str]:
    """Requests/s one SIMULATED replica serves at the matrix's SLO (a doubling climb, then finer steps)."""
    if matrix.capacity_rps is not None:
        return matrix.capacity_rps, "given in the matrix file"
    from gpu_inference.services.loadtest.calibrate import CalibrationOptions
    from gpu_inference.services.loadtest.calibrate_sim import calibrate_simulated

    slo = matrix.slo.slo
    request = OpenLoopOptions(
        prompt_tokens=matrix.request.prompt_tokens, max_tokens=matrix.request.max_tokens
    )
    coarse = CalibrationOptions(
        start_rate=1.0,
        growth=2.0,
        step_s=10.0,
        min_requests=20,
        cooldown_s=2.0,
        target_attainment=matrix.capacity_attainment,
        request=request,
        out_dir=out_dir / "calibration",
    )
    log.info(
        "calibrating one SIMULATED %s replica (TTFT <= %gs, TPOT <= %gs)",
        matrix.profile,
        slo.ttft_s,
        slo.tpot_s,
    )
    cal = calibrate_simulated(matrix.profile, slo, coarse)  # the climb, then finer steps in calibration-fine
    if cal.capacity_rps is None:
        raise ConfigError("slo", "no rate met the SLO on one SIMULATED replica", "relax slo.ttft_ms/tpot_ms")
    log.info("calibration:\n%s", cal.table())
    return (
        cal.capacity_rps,
        f"SIMULATED {matrix.profile} replica calibrated in {out_dir / 'calibration-fine'}",
    )


def _records(path: Path) -> list[RequestRecord]:
    if not path.is_file():
        return []
    return [RequestRecord.model_validate_json(line) for line in path.read_text().splitlines() if line.strip()]


#: How long a cell waits for its host ports to be free (a port in the ephemeral range can be held for a
#: while by some client's outgoing connection, or by the previous cell's sockets).
PORT_WAIT_S = 120.0


def _wait_for_ports(cluster: Any) -> None:
    deadline = time.monotonic() + PORT_WAIT_S
    while True:
        try:
            cluster.check_ports()
            return
        except ConfigError as exc:
            if time.monotonic() >= deadline:
                raise
            log.info("waiting for a host port: %s", exc.problem)
            time.sleep(5)


def phase_window_s(compressed: Compressed) -> float:
    """Wall seconds of the longest control-loop period of the cell: HPA sync, scrape, DCGM collection."""
    iv = compressed.intervals
    periods = [
        float(compressed.hpa_sync_period_s),
        iv["wiring.scrapeInterval"][1],
        iv["dcgm-exporter.collectIntervalMs"][1],
    ]
    return max(periods)


def _phase_delay(compressed: Compressed, cell: Cell) -> Callable[[TimelineSample], None]:
    """Hold the load back by a seeded random part of the longest loop period once the HPA has settled.

    The run starts its load right after the sample that finds the HPA reading its metric, i.e. just
    after an HPA sync, and every cell comes up the same way: without this, the load step would keep the
    same phase against the HPA sync, the scrape and the collection in every seed, and the decision
    time would be one fixed point of its distribution instead of a sample of it.
    """
    rng = random.Random(f"{cell.id}/phase")  # noqa: S311 - a reproducible delay, not a secret
    delay = rng.uniform(0, phase_window_s(compressed))
    done = False

    def hold(sample: TimelineSample) -> None:
        nonlocal done
        hpa = sample.hpa
        if done or sample.phase != "baseline" or hpa is None or hpa.current_value is None:
            return
        done = True
        log.info("load phase: starting %.2fs after the HPA settled (seeded)", delay)
        time.sleep(delay)

    return hold


def _first_metric(cluster: Any) -> str:
    """The name of the first metric the release's HPA scales on (what the chart rendered)."""
    from kubernetes import client

    hpa = client.AutoscalingV2Api(cluster._api()).read_namespaced_horizontal_pod_autoscaler(
        cluster.hpa_name(), cluster.cfg.namespace
    )
    for entry in hpa.spec.metrics or []:
        block = {"Pods": entry.pods, "Object": entry.object, "External": entry.external}.get(entry.type)
        if block is not None and block.metric is not None:
            return str(block.metric.name)
    raise ConfigError("configs.metric", "the HPA scales on no custom metric", "name the metric in the matrix")


def run_cell(
    matrix: Matrix, cell: Cell, opts: BenchOptions, capacity_rps: float, usd_per_hour: float | None
) -> CellResult:
    """Start a local cluster for the cell, run its load, measure, remove the cluster."""
    from gpu_inference.services.loadtest.runner import REQUESTS_FILE, VerifyOptions, run_verify_scaleup
    from gpu_inference.services.local.cluster import LocalCluster
    from gpu_inference.services.local.config import LocalClusterConfig

    started = time.monotonic()
    cell_dir = opts.out_dir / "cells" / cell.id
    cell_dir.mkdir(parents=True, exist_ok=True)
    config = matrix.config(cell.config)
    compressed = compress(matrix, cell)
    timing_file = cell_dir / "timing-values.yaml"
    timing_file.write_text(
        f"# Every interval of configuration {cell.config} divided by k={cell.time_scale:g}.\n"
        + yaml.safe_dump(compressed.values, sort_keys=False)
    )
    cfg = LocalClusterConfig.from_options(
        name=opts.cluster_name,
        profile=matrix.profile,
        timing=cell.timing,
        time_scale=cell.time_scale,
        seed=cell.seed,
        values_files=(*config.values, timing_file),
        set_values=config.set,
        hpa_sync_period_s=compressed.hpa_sync_period_s,
        front_door_port=opts.front_door_port,
        prometheus_port=opts.prometheus_port,
        adapter_port=opts.adapter_port,
    )
    spec = matrix.shape(cell.shape)
    shape = spec.build(capacity_rps, cell.time_scale)
    k = cell.time_scale
    cluster = LocalCluster(cfg)
    cluster.down()  # whatever an interrupted run left
    _wait_for_ports(cluster)
    try:
        cluster.up()
        target = cluster.target()
        options = VerifyOptions(
            target=target,
            out_dir=cell_dir,
            mode="open",
            rate_shape=shape,
            open_loop=OpenLoopOptions(
                seed=cell.seed,
                prompt_tokens=matrix.request.prompt_tokens,
                max_tokens=matrix.request.max_tokens,
                max_in_flight=matrix.request.max_in_flight,
                drain_s=10.0,
            ),
            capacity_rps=capacity_rps,
            calibrate=False,
            skip_scale_down=True,
            interval_s=max(1.0, matrix.sample_interval_s / k),
            settle_timeout_s=matrix.settle_timeout_s / k,
            slo_ttft_ms=matrix.slo.ttft_ms,
            slo_tpot_ms=matrix.slo.tpot_ms,
            timing_profile=cell.timing,
            metric=config.metric or _first_metric(cluster),
        )
        report = run_verify_scaleup(options, on_sample=_phase_delay(compressed, cell))
        if report.hpa is None:
            raise GpuInferenceError("the run could not read the HPA")
        ol = report.run.open_loop or {}
        load_started = float(ol.get("started_at", report.run.load_started_at))
        result = cell_figures(
            cell,
            report.timeline,
            _records(cell_dir / REQUESTS_FILE),
            shape,
            capacity_rps=capacity_rps,
            min_replicas=report.hpa.min_replicas,
            max_replicas=report.hpa.max_replicas,
            slo=matrix.slo.slo,
            steady_after_s=matrix.steady_after_s,
            load_started_at=load_started,
            usd_per_replica_hour=usd_per_hour,
            stationary=spec.stationary,
        )
    finally:
        cluster.down()
    result.wall_s = time.monotonic() - started
    return result


def _earlier_results(path: Path, cells: list[Cell]) -> dict[str, CellResult]:
    """Cells of this matrix that ran ok in an earlier run (its results.jsonl), by cell id."""
    if not path.is_file():
        return {}
    wanted = {c.id: c for c in cells}
    kept: dict[str, CellResult] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        r = CellResult.model_validate_json(line)
        if r.ok and r.cell.id in wanted and r.cell == wanted[r.cell.id]:
            kept[r.cell.id] = r
    return kept


def run_bench(matrix: Matrix, opts: BenchOptions) -> BenchResult:
    """Every cell of the matrix in order; a failed cell is recorded (ok false) and the run goes on."""
    started = time.monotonic()
    check_matrix(matrix)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    cells = matrix.cells()
    log.info("benchmark %s: %d cells", matrix.name, len(cells))
    results_path = opts.out_dir / RESULTS_FILE
    kept = _earlier_results(results_path, cells) if opts.resume else {}
    if kept and matrix.capacity_rps is None:
        capacity = next(iter(kept.values())).capacity_rps or 0.0
        capacity_source = f"measured by the earlier run in {opts.out_dir} (resumed)"
    else:
        capacity, capacity_source = measure_capacity(matrix, opts.out_dir)
    usd, price_note = usd_per_replica_hour()
    results_path.unlink(missing_ok=True)
    results: list[CellResult] = []
    for i, cell in enumerate(cells, 1):
        if cell.id in kept:
            log.info("cell %d/%d: %s ran ok earlier: kept", i, len(cells), cell.id)
            results.append(kept[cell.id])
            with results_path.open("a") as f:
                f.write(kept[cell.id].model_dump_json() + "\n")
            continue
        log.info("cell %d/%d: %s", i, len(cells), cell.id)
        try:
            res = run_cell(matrix, cell, opts, capacity, usd)
        except GpuInferenceError as exc:
            log.error("cell %s failed: %s", cell.id, exc)
            res = CellResult(cell=cell, ok=False, error=str(exc).splitlines()[0], capacity_rps=capacity)
        results.append(res)
        with results_path.open("a") as f:
            f.write(res.model_dump_json() + "\n")
    rows = aggregate(results)
    wall = time.monotonic() - started
    meta = {
        "matrix": matrix.name,
        "matrix_file": opts.matrix_path,
        "simulated": True,
        "cells": len(cells),
        "failed_cells": sum(1 for r in results if not r.ok),
        "wall_s": round(wall, 1),
        "resumed_cells": len(kept),
        "capacity_rps": capacity,
        "capacity_source": capacity_source,
        "price": price_note,
        "profile": matrix.profile,
        "slo": matrix.slo.model_dump(),
        "request": matrix.request.model_dump(),
        "steady_after_s": matrix.steady_after_s,
        "compression": {
            f"{c.config} k={c.time_scale:g}": compress(matrix, c).intervals
            for c in {(x.config, x.time_scale): x for x in cells}.values()
        },
    }
    out = opts.out_dir
    outputs = {
        "json": out / "bench.json",
        "csv": out / "bench.csv",
        "markdown": out / "bench.md",
        "html": out / "bench.html",
    }
    outputs["json"].write_text(bench_tables.json_table(rows, meta))
    outputs["csv"].write_text(bench_tables.csv_table(rows))
    markdown = bench_tables.markdown_table(rows)
    if matrix.faithfulness is not None:
        fa = matrix.faithfulness
        faithful = faithfulness(rows, fa, matrix.time_scale)
        meta["faithfulness"] = [r.model_dump() for r in faithful]
        markdown += (
            f"\nFaithfulness ({fa.shape} / {fa.config} / {fa.timing}, medians):\n\n"
            + bench_tables.faithfulness_table(faithful, matrix.time_scale, fa.time_scale)
        )
        outputs["json"].write_text(bench_tables.json_table(rows, meta))
    outputs["markdown"].write_text(markdown)
    bench_html.write_html(rows, results, meta, outputs["html"])
    (out / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return BenchResult(results, rows, wall, capacity, capacity_source, outputs)
