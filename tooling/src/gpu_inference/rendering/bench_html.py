"""The benchmark's HTML page: the aggregate table, then per load shape the chart configurations'
replica timelines side by side (desired and Ready replicas against the oracle, every seed).
Opens offline: plots are inline SVG."""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpu_inference.domain.bench import FIGURES, CellResult, GroupRow, fmt_spread

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:.85em} td,th{border:1px solid #ddd;padding:.2em .5em}
th{background:#f5f5f5} .banner{background:#fff3cd;border:1px solid #e0c060;padding:.6em 1em;font-weight:bold}
.row{display:flex;flex-wrap:wrap;gap:1em} .row figure{margin:0;flex:1 1 380px;max-width:520px}
figcaption{color:#555;font-size:.85em} .muted{color:#666;font-size:.9em}
"""


def _e(x: object) -> str:
    return html.escape(str(x))


def _plot(results: Sequence[CellResult], title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "gpu-inference", "font.size": 8}):
        fig = Figure(figsize=(5, 2.6))
        ax = fig.add_subplot()
        oracle_drawn = False
        for r in results:
            if not r.series:
                continue
            t = [p[0] for p in r.series]
            ax.step(t, [p[1] for p in r.series], where="post", alpha=0.8, label=f"desired s{r.cell.seed}")
            ax.step(
                t, [p[2] for p in r.series], where="post", alpha=0.5, ls="--", label=f"Ready s{r.cell.seed}"
            )
            if not oracle_drawn:
                ax.step(t, [p[3] for p in r.series], where="post", color="k", lw=1.5, label="oracle")
                oracle_drawn = True
        ax.set_title(title)
        ax.set_xlabel("nominal seconds since the load started")
        ax.set_ylabel("replicas")
        ax.grid(True, alpha=0.3)
        if oracle_drawn:
            ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.find("<svg") :]


def render(rows: Sequence[GroupRow], results: Sequence[CellResult], meta: dict[str, Any]) -> str:
    """The whole page as a string."""
    head = ["shape", "config", "timing", "k", "seeds", *(h for _, h, _ in FIGURES), "oracle GPU-hours"]
    body = []
    for r in rows:
        cells = [r.shape, r.config, r.timing, f"{r.time_scale:g}", ",".join(map(str, r.seeds))]
        cells += [fmt_spread(r.figures[f], fmt) for f, _, fmt in FIGURES]
        cells.append(fmt_spread(r.oracle_gpu_hours, "{:.3f}"))
        body.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    table = "<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>" + "".join(body) + "</table>"
    sections = []
    by_shape: dict[str, dict[str, list[CellResult]]] = {}
    for res in results:
        key = f"{res.cell.shape} (timing {res.cell.timing}, k={res.cell.time_scale:g})"
        by_shape.setdefault(key, {}).setdefault(res.cell.config, []).append(res)
    for shape, configs in by_shape.items():
        figs = "".join(
            f"<figure>{_plot(items, config)}<figcaption>{_e(config)}: "
            + _e(", ".join(f"s{i.cell.seed}: " + ("ok" if i.ok else f"failed ({i.error})") for i in items))
            + "</figcaption></figure>"
            for config, items in configs.items()
        )
        sections.append(f"<h2>{_e(shape)}</h2><div class='row'>{figs}</div>")
    meta_rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in meta.items() if k != "cells")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Autoscaling benchmark</title>"
        f"<style>{_CSS}</style></head><body><h1>Autoscaling benchmark: {_e(meta.get('matrix', ''))}</h1>"
        "<p class='banner'>SIMULATED: GPUs, nodes and their timings come from the GPU simulator and the "
        "local cluster's timing profile; costs price the same replica-hours at AWS on-demand rates.</p>"
        "<p class='muted'>Each figure: median over seeds (min-max). Times are nominal seconds (run "
        "seconds x time scale k) from the load step.</p>"
        f"{table}<h2>Configuration</h2><table>{meta_rows}</table>{''.join(sections)}</body></html>\n"
    )


def write_html(
    rows: Sequence[GroupRow], results: Sequence[CellResult], meta: dict[str, Any], path: Path
) -> Path:
    """Write the page; returns its path."""
    path.write_text(render(rows, results, meta))
    return path
