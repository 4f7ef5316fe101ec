"""Estimates and cost reports as rich tables, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gpu_inference.domain.cost_models import CostEstimate, CostReport
from gpu_inference.domain.prices import HOURS_PER_MONTH

SIMULATED_LINE = "SIMULATED GPU figures: GPUs and nodes were simulated; costs price the same timeline on AWS."


def _usd(v: float | None, places: int = 4) -> str:
    return "n/a" if v is None else f"${v:,.{places}f}"


def estimate_table(e: CostEstimate) -> RenderableType:
    head = Text(f"{e.cluster} in {e.region}: prices {e.prices.path} (as of {e.prices.as_of})", style="bold")
    summary = Table(title="Cost at minimum, typical and maximum scale")
    for col in ("scale", "GPU nodes", "system nodes", "$/hour", "$/month"):
        summary.add_column(col, justify="right")
    for s in e.scenarios:
        summary.add_row(
            s.name, str(s.gpu_nodes), str(s.system_nodes), _usd(s.usd_per_hour), _usd(s.usd_per_month, 2)
        )
    items = Table(title="Items ($/hour)")
    items.add_column("item")
    for s in e.scenarios:
        items.add_column(s.name, justify="right")
    items.add_column("note")
    for idx, item in enumerate(e.scenarios[0].items):
        row = [item.name]
        for s in e.scenarios:
            it = s.items[idx]
            row.append(f"{it.quantity:g} x {_usd(it.unit_usd, 5)} = {_usd(it.cost_usd)}")
        row.append(item.note)
        items.add_row(*row)
    claim = Table(title=f"The design's 'about ${e.claim.claim_usd_per_hour:.2f} per hour'")
    claim.add_column("configuration")
    claim.add_column("GPU nodes", justify="right")
    claim.add_column("$/hour", justify="right")
    claim.add_column(f"within {e.claim.tolerance:.0%}")
    for r in e.claim.rows:
        claim.add_row(r.variant, str(r.gpu_nodes), _usd(r.usd_per_hour), "yes" if r.matches else "no")
    sources = Table(title="Where the inputs came from")
    sources.add_column("input")
    sources.add_column("source")
    for k, v in sorted(e.stack.sources.items()):
        sources.add_row(k, v)
    parts: list[RenderableType] = [
        head,
        summary,
        items,
        claim,
        Text(e.claim.verdict),
        sources,
        Text("Assumptions:"),
    ]
    parts += [Text(f"  - {a}") for a in e.assumptions]
    if e.nat_pulls is not None:
        f = e.nat_pulls
        fix_usd = _usd(f.fix_usd_per_hour)
        parts += [
            Text("Image and model pulls through the NAT gateway:", style="bold"),
            Text(
                f"  {f.gb_per_gpu_node_start:g} GB per GPU node start = "
                f"{_usd(f.nat_usd_per_gpu_node_start)}; "
                f"typical: {f.typical_gpu_node_starts_per_day:g} start(s)/day = "
                f"{_usd(f.typical_nat_usd_per_hour)}/h"
            ),
            Text(f"  fix: {f.fix}: {fix_usd}/h"),
            Text(f"  {f.recommendation}"),
        ]
    parts += [Text(f"  note: {n}", style="yellow") for n in e.notes]
    return Group(*parts)


def estimate_csv(e: CostEstimate) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["scenario", "item", "quantity", "unit", "unit_usd", "usd_per_hour", "usd_per_month", "note"])
    for s in e.scenarios:
        for i in s.items:
            per_hour = i.cost_usd
            w.writerow(
                [
                    s.name,
                    i.name,
                    f"{i.quantity:g}",
                    i.unit,
                    "" if i.unit_usd is None else f"{i.unit_usd:.6f}",
                    "" if per_hour is None else f"{per_hour:.6f}",
                    "" if per_hour is None else f"{per_hour * HOURS_PER_MONTH:.4f}",
                    i.note,
                ]
            )
        w.writerow([s.name, "TOTAL", "", "", "", f"{s.usd_per_hour:.6f}", f"{s.usd_per_month:.4f}", ""])
    return buf.getvalue()


def estimate_json(e: CostEstimate) -> str:
    return json.dumps(e.model_dump(mode="json"), indent=2) + "\n"


def gpu_hour_rows(c: CostReport) -> list[tuple[str, str]]:
    """The GPU-hour split as OpenCost names it, then the autoscaling figure, as (label, value) rows."""
    target = "?" if c.utilization_target is None else f"{c.utilization_target:g}"
    return [
        (
            "idle GPU-hours (unallocated: no inference pod)",
            f"{c.unallocated_gpu_hours:.4f} ({_usd(c.unallocated_gpu_usd)})",
        ),
        (
            "allocated but unused GPU-hours (sum of (1 - utilization) dt)",
            f"{c.allocated_unused_gpu_hours:.4f} ({_usd(c.allocated_unused_gpu_usd)})",
        ),
        (
            f"GPU-hours under the HPA target ({target} %)",
            f"{c.under_target_gpu_hours:.4f} ({_usd(c.under_target_gpu_usd)})",
        ),
    ]


def report_table(c: CostReport) -> RenderableType:
    parts: list[RenderableType] = []
    if c.simulated:
        parts.append(Text(SIMULATED_LINE, style="bold yellow"))
    parts.append(Text(f"{c.source}: {c.hours * 60:.1f} min, prices {c.prices.path} (as of {c.prices.as_of})"))
    nodes = Table(title="Node-hours")
    for col in ("instance type", "capacity", "pool", "GPU", "node-hours", "$/h", "cost"):
        nodes.add_column(col, justify="right")
    for n in c.node_hours:
        nodes.add_row(
            n.instance_type,
            n.capacity_type,
            n.pool or "",
            "yes" if n.gpu else "",
            f"{n.node_hours:.4f}",
            _usd(n.usd_per_hour),
            _usd(n.cost_usd),
        )
    items = Table(title="Items")
    for col in ("item", "quantity", "unit", "unit price", "cost", "note"):
        items.add_column(col, justify="right" if col in ("quantity", "unit price", "cost") else "left")
    for i in c.items:
        items.add_row(i.name, f"{i.quantity:.4f}", i.unit, _usd(i.unit_usd, 5), _usd(i.cost_usd), i.note)
    summary = Table(title="Summary")
    summary.add_column("figure")
    summary.add_column("value", justify="right")
    rows = [
        ("total", _usd(c.total_usd)),
        ("requests (successful)", str(c.requests)),
        ("per 1k requests", _usd(c.usd_per_1k_requests)),
        ("tokens (prompt + completion)", str(c.prompt_tokens + c.completion_tokens)),
        ("per 1M tokens", _usd(c.usd_per_1m_tokens, 2)),
        ("GPU-hours", f"{c.gpu_hours:.4f}"),
        *gpu_hour_rows(c),
        ("NAT: image and model pulls", f"{c.nat_pull_gb:.1f} GB"),
    ]
    if c.tail:
        rows += [
            ("scale-down tail (measured)", f"{_usd(c.tail.measured_usd)} over {c.tail.observed_s:.0f}s"),
            ("scale-down tail (projected)", _usd(c.tail.projected_remaining_usd)),
        ]
    for k, v in rows:
        summary.add_row(k, v)
    parts += [nodes, items, summary]
    if c.tail and not c.tail.complete:
        parts.append(Text(c.tail.projection, style="yellow"))
    parts += [Text(f"note: {n}", style="yellow") for n in c.notes]
    return Group(*parts)
