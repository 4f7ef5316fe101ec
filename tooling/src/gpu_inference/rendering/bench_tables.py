"""The benchmark's aggregate table as Markdown, CSV and JSON (one row per cell without its seed)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from gpu_inference.domain.bench import FIGURES, FaithfulnessRow, GroupRow, fmt_spread

_KEYS = ("shape", "config", "timing", "k", "seeds")


def _key_cells(row: GroupRow) -> list[str]:
    seeds = ",".join(str(s) for s in row.seeds) + (f" ({row.failed} failed)" if row.failed else "")
    return [row.shape, row.config, row.timing, f"{row.time_scale:g}", seeds]


def markdown_table(rows: Sequence[GroupRow]) -> str:
    """Median (min-max over seeds) of every figure; the oracle's GPU-hours and cost in their own columns."""
    headers = [*_KEYS, *(h for _, h, _ in FIGURES), "oracle GPU-hours", "oracle cost (USD)"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    for r in rows:
        cells = _key_cells(r)
        cells += [fmt_spread(r.figures[f], fmt) for f, _, fmt in FIGURES]
        cells += [fmt_spread(r.oracle_gpu_hours, "{:.3f}"), fmt_spread(r.oracle_cost_usd, "{:.3f}")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_table(rows: Sequence[GroupRow]) -> str:
    """One line per group: for each figure its median, min, max and how many seeds had a value."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    fields = [f for f, _, _ in FIGURES] + ["oracle_gpu_hours", "oracle_cost_usd"]
    w.writerow([*_KEYS, "failed", *(f"{f}_{p}" for f in fields for p in ("median", "min", "max", "n"))])
    for r in rows:
        out: list[Any] = [
            r.shape,
            r.config,
            r.timing,
            f"{r.time_scale:g}",
            " ".join(map(str, r.seeds)),
            r.failed,
        ]
        spreads = [r.figures[f] for f, _, _ in FIGURES] + [r.oracle_gpu_hours, r.oracle_cost_usd]
        for s in spreads:
            out += ["" if v is None else f"{v:.6g}" for v in (s.median, s.low, s.high)] + [s.n]
        w.writerow(out)
    return buf.getvalue()


def json_table(rows: Sequence[GroupRow], meta: dict[str, Any]) -> str:
    """The rows with the run's configuration (meta) as one JSON document."""
    return json.dumps({**meta, "rows": [r.model_dump(mode="json") for r in rows]}, indent=2) + "\n"


def faithfulness_table(rows: Sequence[FaithfulnessRow], k: float, reference_k: float) -> str:
    """The faithfulness cell's medians at both time scales, their difference and the tolerance."""
    head = f"| figure | k={k:g} | k={reference_k:g} | difference | tolerance | within |"
    lines = [head, "| --- | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:

        def num(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.3g}"

        verdict = "n/a" if r.within is None else ("yes" if r.within else "NO")
        tol = "reported only" if r.tolerance is None else f"{r.tolerance:g}"
        cells = [r.figure, num(r.compressed), num(r.reference), num(r.difference), tol, verdict]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
