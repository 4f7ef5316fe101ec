"""report.html: the verdict, the figures, plots (inline SVG) and the cost, in one offline file."""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gpu_inference.domain.cost_models import CostReport
from gpu_inference.domain.timeline import RunReport, TimelineSample
from gpu_inference.rendering.cost_tables import gpu_hour_rows

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f5f5f5} td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#0a7a27;font-weight:bold} .fail{color:#b00020;font-weight:bold}
.banner{background:#fff3cd;border:1px solid #e0c060;padding:.6em 1em;margin:1em 0;font-weight:bold}
.verdict{font-size:1.4em;padding:.4em .8em;display:inline-block;border-radius:4px}
.verdict.pass{background:#e3f6e8} .verdict.fail{background:#fde7ea}
figure{margin:1em 0} figcaption{color:#555;font-size:.9em} .muted{color:#666;font-size:.9em}
"""

SIMULATED_BANNER = (
    "SIMULATED GPU figures: the GPUs, their utilization, VRAM and temperature come from the GPU simulator "
    "and the nodes are simulated; costs price what the same timeline would cost on AWS."
)


def _e(x: object) -> str:
    return html.escape(str(x))


def _num(v: float | int | None, fmt: str = "{:.1f}", unit: str = "") -> str:
    return "n/a" if v is None else fmt.format(v) + unit


def _svg(draw: Callable[[Any], None], height: float = 3.0) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "gpu-inference", "font.size": 9}):
        fig = Figure(figsize=(10, height))
        ax = fig.add_subplot()
        draw(ax)
        ax.set_xlabel("seconds since the load started")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.find("<svg") :]


def _marks(ax: Any, report: RunReport) -> None:
    ax.axvline(0, color="#888", lw=0.8, ls=":")
    run = report.run
    if run.load_stopped_at is not None:
        ax.axvline(
            run.load_stopped_at - run.load_started_at, color="#555", lw=1, ls="--", label="load stopped"
        )
    if report.utilization_crossed_at_s is not None:
        ax.axvline(report.utilization_crossed_at_s, color="#d98c00", lw=1, ls="-.", label="threshold crossed")


def _series(
    samples: Sequence[TimelineSample], get: Callable[[TimelineSample], float | None]
) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for s in samples:
        v = get(s)
        if v is not None:
            xs.append(s.elapsed_s)
            ys.append(v)
    return xs, ys


def _pod_util(pod: str) -> Callable[[TimelineSample], float | None]:
    return lambda s: next((g.util for g in s.gpu if g.pod == pod), None)


def plots(report: RunReport) -> list[tuple[str, str]]:
    """(caption, inline SVG) for each plot the timeline supports."""
    tl = report.timeline
    out: list[tuple[str, str]] = []
    sim = " (SIMULATED GPUs)" if report.simulated else ""
    pods = sorted({g.pod for s in tl for g in s.gpu})
    if pods:

        def util(ax: Any) -> None:
            for pod in pods:
                xs, ys = _series(tl, _pod_util(pod))
                ax.plot(xs, ys, lw=0.8, alpha=0.6, label=pod if len(pods) <= 8 else None)
            xs, ys = _series(tl, lambda s: s.gpu_util_mean)
            ax.plot(xs, ys, lw=2.2, color="black", label="mean (what the HPA averages)")
            if report.hpa:
                ax.axhline(
                    report.hpa.target_value,
                    color="#b00020",
                    ls="--",
                    label=f"target {report.hpa.target_value:g}",
                )
                if report.criteria:
                    thr = report.hpa.target_value * (1 + report.criteria.hpa_tolerance)
                    ax.axhline(thr, color="#b00020", ls=":", lw=0.8, label=f"scale-up threshold {thr:g}")
            _marks(ax, report)
            ax.set_ylabel(f"GPU utilization %{sim}")
            ax.set_ylim(0, 105)
            ax.legend(loc="upper left", fontsize=7, ncol=3)

        out.append((f"GPU utilization per pod vs the HPA target{sim}", _svg(util, 3.4)))
    if any(s.hpa or s.workload for s in tl):

        def replicas(ax: Any) -> None:
            for label, get in (
                ("desired", lambda s: s.hpa.desired_replicas if s.hpa else None),
                ("current", lambda s: s.hpa.current_replicas if s.hpa else None),
                ("ready", lambda s: s.workload.ready_replicas if s.workload else None),
            ):
                xs, ys = _series(tl, get)
                ax.step(xs, ys, where="post", label=label, lw=1.6 if label == "desired" else 1.1)
            if report.hpa:
                ax.axhline(report.hpa.min_replicas, color="#999", ls=":", lw=0.8, label="min")
                ax.axhline(report.hpa.max_replicas, color="#999", ls="--", lw=0.8, label="max")
            _marks(ax, report)
            ax.set_ylabel("replicas")
            ax.legend(loc="upper left", fontsize=7, ncol=4)

        out.append(("Desired, current and Ready replicas", _svg(replicas)))
    if any(s.nodes for s in tl):

        def nodes(ax: Any) -> None:
            xs, ys = _series(tl, lambda s: len(s.gpu_nodes) if s.nodes else None)
            ax.step(xs, ys, where="post", label="GPU nodes", lw=1.6)
            xs, ys = _series(tl, lambda s: sum(1 for n in s.gpu_nodes if n.ready) if s.nodes else None)
            ax.step(xs, ys, where="post", label="GPU nodes Ready", lw=1.0)
            _marks(ax, report)
            ax.set_ylabel(f"GPU nodes{sim}")
            ax.legend(loc="upper left", fontsize=7)

        out.append((f"GPU nodes{sim}", _svg(nodes, 2.6)))
    if any(s.locust for s in tl):

        def traffic(ax: Any) -> None:
            xs, ys = _series(tl, lambda s: s.locust.rps if s.locust else None)
            ax.plot(xs, ys, color="#1f77b4", label="requests/s")
            xs, ys = _series(tl, lambda s: s.locust.fail_rps if s.locust else None)
            ax.plot(xs, ys, color="#b00020", label="failures/s")
            ax.set_ylabel("requests/s")
            ax2 = ax.twinx()
            for label, get, style in (
                ("p50 ms", lambda s: s.locust.p50_ms if s.locust else None, ":"),
                ("p95 ms", lambda s: s.locust.p95_ms if s.locust else None, "-"),
            ):
                xs, ys = _series(tl, get)
                ax2.plot(xs, ys, color="#2ca02c", ls=style, label=label)
            if report.criteria:
                ax2.axhline(report.criteria.slo_p95_ms, color="#2ca02c", ls="--", lw=0.8, label="p95 SLO")
            ax2.set_ylabel("latency ms")
            _marks(ax, report)
            lines = ax.get_legend_handles_labels()
            lines2 = ax2.get_legend_handles_labels()
            ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left", fontsize=7, ncol=3)

        out.append(("Requests per second and latency (locust)", _svg(traffic)))
    cost = report.cost
    if cost and cost.hourly:

        def dollars(ax: Any) -> None:
            xs = [p.elapsed_s for p in cost.hourly]
            ax.step(xs, [p.usd_per_hour for p in cost.hourly], where="post", color="#6a3d9a")
            _marks(ax, report)
            ax.set_ylabel("$ per hour")
            ax.set_ylim(bottom=0)

        out.append((f"Cost rate of the stack on AWS ($/h){sim}", _svg(dollars, 2.6)))
    return out


def _kv_table(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def cost_section(cost: CostReport) -> str:
    parts = ["<h2>Cost</h2>"]
    if cost.simulated:
        parts.append(f'<div class="banner">{_e(SIMULATED_BANNER)}</div>')
    parts.append(
        _kv_table(
            [
                ("window", f"{cost.hours * 60:.1f} min ({cost.source})"),
                ("total", f"${cost.total_usd:.4f}"),
                ("per 1k successful requests", _num(cost.usd_per_1k_requests, "${:.4f}")),
                ("per 1M tokens (prompt + completion)", _num(cost.usd_per_1m_tokens, "${:.2f}")),
                ("per 1M completion tokens", _num(cost.usd_per_1m_completion_tokens, "${:.2f}")),
                ("GPU-hours", f"{cost.gpu_hours:.4f}"),
                *gpu_hour_rows(cost),
                ("prices", f"{cost.prices.path} ({cost.prices.region}, as of {cost.prices.as_of})"),
            ]
        )
    )
    if cost.tail:
        t = cost.tail
        parts.append("<h3>Scale-down tail</h3>")
        parts.append(
            _kv_table(
                [
                    ("observed after the load", f"{t.observed_s:.0f} s"),
                    (
                        "extra GPU node-hours (measured)",
                        f"{t.extra_gpu_node_hours:.4f} (${t.measured_usd:.4f})",
                    ),
                    ("back to the starting size", "yes" if t.complete else "no"),
                    ("projected remaining", f"${t.projected_remaining_usd:.4f}: {t.projection}"),
                ]
            )
        )
    rows = "".join(
        f"<tr><td>{_e(n.instance_type)}</td><td>{_e(n.capacity_type)}</td><td>{_e(n.pool or '')}</td>"
        f"<td>{'GPU' if n.gpu else ''}</td><td class=num>{n.node_hours:.4f}</td>"
        f"<td class=num>{_num(n.usd_per_hour, '${:.4f}')}</td>"
        f"<td class=num>{_num(n.cost_usd, '${:.4f}')}</td>"
        f"<td>{_e(n.note)}</td></tr>"
        for n in cost.node_hours
    )
    parts.append(
        "<h3>Node-hours</h3><table><tr><th>instance type</th><th>capacity</th><th>pool</th><th></th>"
        f"<th>node-hours</th><th>$/h</th><th>cost</th><th>note</th></tr>{rows}</table>"
    )
    items = "".join(
        f"<tr><td>{_e(i.name)}</td><td class=num>{i.quantity:.4f}</td><td>{_e(i.unit)}</td>"
        f"<td class=num>{_num(i.unit_usd, '${:.5f}')}</td><td class=num>{_num(i.cost_usd, '${:.4f}')}</td>"
        f"<td>{_e(i.note)}</td></tr>"
        for i in cost.items
    )
    parts.append(
        "<h3>Items</h3><table><tr><th>item</th><th>quantity</th><th>unit</th><th>unit price</th><th>cost</th>"
        f"<th>note</th></tr>{items}</table>"
    )
    if cost.notes:
        parts.append("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in cost.notes) + "</ul>")
    return "\n".join(parts)


def render_html(report: RunReport) -> str:
    title = "Scale-up verification" if report.kind == "verify-scaleup" else "Load test"
    run = report.run
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{_e(title)}: {_e(run.target.url)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p class=muted>{_e(run.target.name or run.target.url)} &middot; "
        f"shape {_e(run.shape.name)} &middot; "
        f"{_e(run.started_at)} to {_e(run.ended_at)} &middot; gpu-inference {_e(run.tool_version)}</p>",
    ]
    if report.simulated:
        parts.append(f'<div class="banner">{_e(SIMULATED_BANNER)}</div>')
    if report.passed is not None:
        cls = "pass" if report.passed else "fail"
        word = "PASSED: scale-up verified" if report.passed else "FAILED: scale-up not verified"
        parts.append(f'<div class="verdict {cls}">{word}</div>')
        if report.reasons:
            parts.append("<ul>" + "".join(f"<li class=fail>{_e(r)}</li>" for r in report.reasons) + "</ul>")
    figures = [
        ("initial replicas", _num(report.initial_replicas, "{}")),
        ("peak replicas (desired)", _num(report.peak_replicas, "{}")),
        ("peak Ready replicas", _num(report.peak_ready_replicas, "{}")),
        ("final replicas", _num(report.final_replicas, "{}")),
        ("utilization target", _num(report.utilization_target, "{:g}")),
        ("threshold crossed at", _num(report.utilization_crossed_at_s, "{:.0f}", " s")),
        ("seconds to first scale-up", _num(report.seconds_to_first_scale_up, "{:.0f}", " s")),
        ("seconds to Ready", _num(report.seconds_to_ready, "{:.0f}", " s")),
        ("seconds to scale-down", _num(report.seconds_to_scale_down, "{:.0f}", " s")),
        ("max p95 latency", _num(report.max_p95_ms, "{:.0f}", " ms")),
        ("requests / failures", f"{report.total_requests} / {report.total_failures}"),
        ("error ratio", _num(report.error_ratio, "{:.2%}")),
        ("tokens (prompt / completion)", f"{report.prompt_tokens} / {report.completion_tokens}"),
        ("max GPU nodes", _num(report.max_gpu_nodes, "{}")),
        ("total cost", _num(report.cost.total_usd if report.cost else None, "${:.4f}")),
    ]
    parts.append("<h2>Figures</h2>" + _kv_table(figures))
    if report.checks:
        rows = "".join(
            f"<tr><td>{_e(c.name)}</td>"
            f"<td class={'pass' if c.passed else 'fail'}>{'pass' if c.passed else 'FAIL'}"
            f"</td><td>{_e(c.detail)}</td></tr>"
            for c in report.checks
        )
        parts.append(f"<h2>Checks</h2><table><tr><th>rule</th><th></th><th>evidence</th></tr>{rows}</table>")
    parts.append("<h2>Timeline</h2>")
    for caption, svg in plots(report):
        parts.append(f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure>")
    if report.cost:
        parts.append(cost_section(report.cost))
    info = [
        ("target", run.target.url),
        ("Prometheus", run.target.prometheus_url or "not watched"),
        ("HPA", f"{run.target.namespace}/{run.target.hpa_name}" if run.target.hpa_name else "not watched"),
        ("shape", f"{run.shape.name} ({run.shape.path})"),
        ("shape settings", ", ".join(f"{k}={v}" for k, v in sorted(run.shape.env.items())) or "defaults"),
        ("sample interval", f"{run.interval_s:g} s"),
        ("samples", str(len(report.timeline))),
        ("locust exit code", _num(run.locust_exit_code, "{}")),
    ]
    if report.criteria:
        c = report.criteria
        info += [
            ("p95 SLO", f"{c.slo_p95_ms:g} ms"),
            ("max error ratio", f"{c.max_error_ratio:.2%}"),
            ("scale-up bound", f"{c.scale_up_within_s:g} s"),
            (
                "scale-down bound",
                "skipped" if c.skip_scale_down else _num(c.scale_down_within_s, "{:g}", " s"),
            ),
        ]
    parts.append("<h2>Run</h2>" + _kv_table(info))
    generated = datetime.now(tz=UTC).isoformat(timespec="seconds")
    parts.append(
        f"<p class=muted>Generated {generated}. All data: report.json next to this file.</p></body></html>"
    )
    return "\n".join(parts)


def write_html(report: RunReport, path: Path) -> Path:
    path.write_text(render_html(report))
    return path
