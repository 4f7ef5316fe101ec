"""What a run cost: node-hours from a timeline, priced, with per-request and idle figures.

Every interval between two samples is charged at the nodes seen at its start. Fixed parts of
the stack (EKS control plane, NAT gateway, load balancer, their public IPs) are charged for
the whole window; node root volumes and node public IPs per node-hour; data transfer out
from the response bytes locust measured.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gpu_inference.domain.constants import INSTANCE_TYPE_LABEL
from gpu_inference.domain.cost_items import overhead_items, usage_items
from gpu_inference.domain.cost_models import (
    CostItem,
    CostReport,
    HourlyPoint,
    NodeHours,
    PullSizes,
    TailCost,
)
from gpu_inference.domain.prices import HOURS_PER_MONTH, PriceBook, load_price_book
from gpu_inference.domain.stack import StackInputs, load_stack
from gpu_inference.domain.timeline import NodeInfo, RunReport, TimelineSample, load_report
from gpu_inference.errors import ConfigError
from gpu_inference.paths import chart_dir, eksctl_config

log = logging.getLogger(__name__)

#: Cluster Autoscaler's default scale-down-unneeded-time (a node idle this long is removed).
CA_SCALE_DOWN_UNNEEDED_S = 600.0


@dataclass(frozen=True)
class Usage:
    """What was served in the window: successful requests, tokens, response bytes (0 = not counted)."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    response_bytes: float = 0.0


def _node_key(n: NodeInfo) -> tuple[str, str, str | None, bool]:
    return (n.instance_type or "unknown", (n.capacity_type or "ON_DEMAND").upper(), n.pool, n.is_gpu)


def _gpus(n: NodeInfo) -> int:
    return max(n.gpus, 1) if n.is_gpu else 0


def _pod_utils_by_node(s: TimelineSample) -> dict[str, list[float]]:
    util = {g.pod: g.util for g in s.gpu if g.util is not None}
    out: dict[str, list[float]] = defaultdict(list)
    for p in s.pods:
        if p.node and p.name in util:
            out[p.node].append(util[p.name])
    return out


def cost_from_timeline(
    samples: Sequence[TimelineSample],
    *,
    prices: PriceBook,
    stack: StackInputs,
    simulated: bool,
    source: str,
    usage: Usage,
    utilization_target: float | None,
    load_stopped_at: float | None = None,
    scale_down_window_s: float = 300.0,
    ca_unneeded_s: float = CA_SCALE_DOWN_UNNEEDED_S,
    lcu_per_hour: float = 1.0,
    pulls: PullSizes | None = None,
) -> CostReport:
    """Price a timeline. Raises ConfigError when it holds no node observations.

    GPU-hours are split three ways, as OpenCost names them: unallocated (no inference pod on the
    GPU: "idle"), allocated but unused (sum of (1 - utilization) dt over GPUs a pod held), and
    separately the time under the HPA target (an autoscaling figure). Private GPU nodes and pods
    that appear during the run pull the image and the model through the NAT gateway (`pulls`).
    """
    ordered = sorted(samples, key=lambda s: s.t)
    if len(ordered) < 2 or not any(s.nodes for s in ordered):
        raise ConfigError(
            "timeline",
            "no node observations to price (the run did not watch a cluster)",
            "run the load test with --kubeconfig/--hpa or --local",
        )
    notes: list[str] = []
    t0, t1 = ordered[0].t, ordered[-1].t
    hours = (t1 - t0) / 3600.0
    gb_hour = prices.ebs_gp3_gb_month.usd / HOURS_PER_MONTH

    node_hours: dict[tuple[str, str, str | None, bool], float] = defaultdict(float)
    volume_gib_hours = 0.0
    public_node_hours = 0.0
    gpu_hours = under_hours = under_usd = unknown_util_gpu_hours = 0.0
    unalloc_hours = unalloc_usd = unused_hours = unused_usd = 0.0
    hourly: list[HourlyPoint] = []
    baseline_gpu_nodes = len(ordered[0].gpu_nodes)
    tail_extra_hours = tail_usd = 0.0

    fixed = overhead_items(stack, prices, lcu_per_hour)
    fixed_per_hour = sum(i.cost_usd or 0.0 for i in fixed)

    def node_price(n: NodeInfo) -> float | None:
        if n.instance_type is None:
            return None
        return prices.node_hourly(n.instance_type, n.capacity_type)[0]

    for i, s in enumerate(ordered):
        per_hour = fixed_per_hour
        for n in s.nodes:
            group = stack.group_for_pool(n.pool, n.is_gpu)
            per_hour += (node_price(n) or 0.0) + (group.volume_gib * gb_hour if group else 0.0)
            if group and group.public_ip:
                per_hour += prices.public_ipv4_hour.usd
        hourly.append(HourlyPoint(elapsed_s=s.elapsed_s, usd_per_hour=per_hour))
        if i == len(ordered) - 1:
            break
        dt_h = (ordered[i + 1].t - s.t) / 3600.0
        utils = _pod_utils_by_node(s)
        for n in s.nodes:
            node_hours[_node_key(n)] += dt_h
            group = stack.group_for_pool(n.pool, n.is_gpu)
            if group is not None:
                volume_gib_hours += group.volume_gib * dt_h
                public_node_hours += dt_h if group.public_ip else 0.0
            if not n.is_gpu:
                continue
            g = _gpus(n)
            gpu_hours += g * dt_h
            price = node_price(n)
            node_utils = utils.get(n.name)
            pods_on_node = any(p.node == n.name for p in s.pods)
            if node_utils is None and pods_on_node:
                unknown_util_gpu_hours += g * dt_h
                continue
            per_gpu = (price or 0.0) / g
            held = min(g, sum(1 for p in s.pods if p.node == n.name))
            unalloc_hours += (g - held) * dt_h
            unalloc_usd += (g - held) * per_gpu * dt_h
            for u in (node_utils or [])[:held]:
                unused = max(0.0, 1.0 - u / 100.0) * dt_h
                unused_hours += unused
                unused_usd += unused * per_gpu
            util = sum(node_utils) / len(node_utils) if node_utils else 0.0
            if utilization_target is not None and util < utilization_target:
                under_hours += g * dt_h
                under_usd += (price or 0.0) * dt_h
        if load_stopped_at is not None and ordered[i + 1].t > load_stopped_at:
            # the part of this interval after the load stopped
            tail_h = (ordered[i + 1].t - max(s.t, load_stopped_at)) / 3600.0
            gpu_nodes = s.gpu_nodes
            extra = max(0, len(gpu_nodes) - baseline_gpu_nodes)
            if extra and gpu_nodes:
                mean_price = sum(node_price(n) or 0.0 for n in gpu_nodes) / len(gpu_nodes)
                tail_extra_hours += extra * tail_h
                tail_usd += extra * mean_price * tail_h

    items: list[CostItem] = []
    rows: list[NodeHours] = []
    for (itype, cap, pool, is_gpu), nh in sorted(node_hours.items(), key=lambda kv: (not kv[0][3], kv[0])):
        price, note = (
            (None, f"node has no {INSTANCE_TYPE_LABEL} label")
            if itype == "unknown"
            else (prices.node_hourly(itype, cap))
        )
        cost = None if price is None else price * nh
        if price is None:
            notes.append(f"{nh:.3f} node-hours of {itype} ({pool or 'no pool'}) could not be priced: {note}")
        rows.append(
            NodeHours(
                instance_type=itype,
                capacity_type=cap,
                pool=pool,
                gpu=is_gpu,
                node_hours=nh,
                usd_per_hour=price,
                cost_usd=cost,
                note=note,
            )
        )
        kind = "GPU nodes" if is_gpu else "nodes"
        items.append(
            CostItem(
                name=f"{kind} {itype} {cap}" + (f" ({pool})" if pool else ""),
                quantity=nh,
                unit="node-hours",
                unit_usd=price,
                cost_usd=cost,
                note=note,
            )
        )
    for f in fixed:
        items.append(
            f.model_copy(
                update={
                    "quantity": f.quantity * hours,
                    "unit": f"{f.unit}-hours",
                    "cost_usd": (f.cost_usd or 0.0) * hours,
                }
            )
        )
    sizes = pulls or PullSizes()
    new_nodes, new_pods = _starts_behind_nat(ordered, stack)
    pull_gb = new_nodes * sizes.image_gb + new_pods * sizes.model_gb
    items += usage_items(
        stack,
        prices,
        volume_gib_hours=volume_gib_hours,
        public_node_hours=public_node_hours,
        egress_gb=usage.response_bytes / 1e9,
        traffic="measured",
        nat_pull_gb=pull_gb,
        pull_note=(
            f"{new_nodes} new private GPU node(s) x {sizes.image_gb:g} GB image + {new_pods} new pod(s) x "
            f"{sizes.model_gb:g} GB model (sizes as stated in the assumptions)"
        ),
        per_hour=False,
    )
    total = sum(i.cost_usd or 0.0 for i in items)
    tokens = usage.prompt_tokens + usage.completion_tokens
    if unknown_util_gpu_hours:
        notes.append(
            f"{unknown_util_gpu_hours:.3f} GPU-hours had a pod but no utilization sample: "
            "left out of the allocated-but-unused and under-target figures"
        )
    tail = None
    if load_stopped_at is not None and t1 > load_stopped_at:
        tail = _tail(
            ordered,
            prices,
            load_stopped_at=load_stopped_at,
            baseline=baseline_gpu_nodes,
            extra_hours=tail_extra_hours,
            usd=tail_usd,
            scale_down_window_s=scale_down_window_s,
            ca_unneeded_s=ca_unneeded_s,
        )
    if simulated:
        notes.insert(
            0,
            "SIMULATED: GPUs and nodes are simulated; figures price what the same timeline would cost on AWS",
        )
    return CostReport(
        simulated=simulated,
        source=source,
        window_start=t0,
        window_end=t1,
        hours=hours,
        prices=prices.info,
        node_hours=rows,
        items=items,
        total_usd=total,
        requests=usage.requests,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        usd_per_1k_requests=total / usage.requests * 1000 if usage.requests else None,
        usd_per_1m_tokens=total / tokens * 1e6 if tokens else None,
        usd_per_1m_completion_tokens=total / usage.completion_tokens * 1e6
        if usage.completion_tokens
        else None,
        utilization_target=utilization_target,
        gpu_hours=gpu_hours,
        unallocated_gpu_hours=unalloc_hours,
        unallocated_gpu_usd=unalloc_usd,
        allocated_unused_gpu_hours=unused_hours,
        allocated_unused_gpu_usd=unused_usd,
        under_target_gpu_hours=under_hours,
        under_target_gpu_usd=under_usd,
        nat_pull_gb=pull_gb,
        tail=tail,
        hourly=hourly,
        notes=[*notes, *stack.notes, *prices.notes],
    )


def _starts_behind_nat(ordered: Sequence[TimelineSample], stack: StackInputs) -> tuple[int, int]:
    """GPU nodes and pods first seen after the first sample, on nodes of private node groups
    (their pulls pass the NAT gateway). Those of the first sample were started before the run."""
    if not stack.nat_gateways:
        return 0, 0
    seen_nodes = {n.name for n in ordered[0].nodes}
    seen_pods = {p.name for p in ordered[0].pods}
    private: dict[str, bool] = {}
    new_nodes = new_pods = 0
    for s in ordered[1:]:
        for n in s.nodes:
            group = stack.group_for_pool(n.pool, n.is_gpu)
            private[n.name] = group is not None and not group.public_ip
            if n.name not in seen_nodes:
                seen_nodes.add(n.name)
                new_nodes += 1 if (n.is_gpu and private[n.name]) else 0
        for p in s.pods:
            if p.name not in seen_pods:
                seen_pods.add(p.name)
                new_pods += 1 if private.get(p.node or "", False) else 0
    return new_nodes, new_pods


def _tail(
    ordered: Sequence[TimelineSample],
    prices: PriceBook,
    *,
    load_stopped_at: float,
    baseline: int,
    extra_hours: float,
    usd: float,
    scale_down_window_s: float,
    ca_unneeded_s: float,
) -> TailCost:
    last = ordered[-1]
    observed = last.t - load_stopped_at
    extra_now = max(0, len(last.gpu_nodes) - baseline)
    stop_elapsed = load_stopped_at - ordered[0].t + ordered[0].elapsed_s
    if extra_now == 0:
        return TailCost(
            load_stopped_at_s=stop_elapsed,
            observed_s=observed,
            extra_gpu_node_hours=extra_hours,
            measured_usd=usd,
            complete=True,
            projected_remaining_usd=0.0,
            projection="GPU nodes were back at their starting count before the run ended",
        )
    remaining = max(0.0, scale_down_window_s + ca_unneeded_s - observed)
    prices_now = [
        prices.node_hourly(n.instance_type, n.capacity_type)[0] or 0.0
        for n in last.gpu_nodes
        if n.instance_type
    ]
    mean_price = sum(prices_now) / len(prices_now) if prices_now else 0.0
    projected = extra_now * mean_price * remaining / 3600.0
    return TailCost(
        load_stopped_at_s=stop_elapsed,
        observed_s=observed,
        extra_gpu_node_hours=extra_hours,
        measured_usd=usd,
        complete=False,
        projected_remaining_usd=projected,
        projection=(
            f"PROJECTED, not measured: {extra_now} extra GPU node(s) were still up when the run ended; "
            f"with the HPA scale-down window ({scale_down_window_s:g} s) and the cluster autoscaler's "
            f"scale-down-unneeded-time "
            f"({ca_unneeded_s:g} s) they stay about {remaining:.0f} s more"
        ),
    )


def default_stack() -> StackInputs:
    """The stack of this checkout: eksctl/cluster.yaml and the chart's values (if the chart exists)."""
    chart = chart_dir()
    return load_stack(eksctl_config(), chart if (chart / "values.yaml").is_file() else None, [])


def usage_from_report(report: RunReport) -> Usage:
    last_locust = next((s.locust for s in reversed(report.timeline) if s.locust), None)
    response_bytes = 0.0
    if last_locust and last_locust.avg_content_bytes:
        response_bytes = last_locust.avg_content_bytes * last_locust.total_requests
    elif last_locust is None:  # open loop: the bytes each finished request read
        response_bytes = float(sum(s.requests.response_bytes for s in report.timeline if s.requests))
    return Usage(
        requests=report.total_requests - report.total_failures,
        prompt_tokens=report.prompt_tokens,
        completion_tokens=report.completion_tokens,
        response_bytes=response_bytes,
    )


def cost_for_report(
    report: RunReport,
    *,
    prices: PriceBook | None = None,
    stack: StackInputs | None = None,
    source: str = "",
    ca_unneeded_s: float = CA_SCALE_DOWN_UNNEEDED_S,
    pulls: PullSizes | None = None,
) -> CostReport:
    """Price a run's report (the timeline it recorded, its usage, its HPA's target and windows)."""
    stack = stack or default_stack()
    prices = prices or load_price_book(stack.region)
    hpa = report.hpa
    return cost_from_timeline(
        report.timeline,
        prices=prices,
        stack=stack,
        simulated=report.simulated,
        source=source or f"run {report.run.out_dir}",
        usage=usage_from_report(report),
        utilization_target=hpa.target_value if hpa else report.utilization_target,
        load_stopped_at=report.run.load_stopped_at,
        scale_down_window_s=float(hpa.scale_down_stabilization_s) if hpa else 300.0,
        ca_unneeded_s=ca_unneeded_s,
        pulls=pulls,
    )


def cost_report_from_run(
    run_dir: Path,
    *,
    prices: PriceBook | None = None,
    stack: StackInputs | None = None,
    write: bool = True,
    ca_unneeded_s: float = CA_SCALE_DOWN_UNNEEDED_S,
    pulls: PullSizes | None = None,
) -> CostReport:
    """Cost of a finished load test. With write=True: cost.json, cost.csv, and report.json/.html updated.

    ca_unneeded_s: the Cluster Autoscaler's scale-down-unneeded-time on the cluster the figures are
    for (default: CA's 10 minutes), used only to project a scale-down tail the run did not see end.
    """
    report = load_report(run_dir)
    cost = cost_for_report(
        report, prices=prices, stack=stack, source=f"run {run_dir}", ca_unneeded_s=ca_unneeded_s, pulls=pulls
    )
    if write:
        folder = run_dir if run_dir.is_dir() else run_dir.parent
        (folder / "cost.json").write_text(cost.model_dump_json(indent=2) + "\n")
        (folder / "cost.csv").write_text(to_csv(cost))
        updated = report.model_copy(update={"cost": cost})
        (folder / "report.json").write_text(updated.model_dump_json(indent=2) + "\n")
        from gpu_inference.rendering.report_html import write_html

        write_html(updated, folder / "report.html")
    return cost


def to_csv(cost: CostReport) -> str:
    """One row per bill item, then the summary figures as rows."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["section", "name", "quantity", "unit", "unit_usd", "cost_usd", "note"])
    for i in cost.items:
        w.writerow(
            [
                "item",
                i.name,
                f"{i.quantity:.6f}",
                i.unit,
                "" if i.unit_usd is None else f"{i.unit_usd:.6f}",
                "" if i.cost_usd is None else f"{i.cost_usd:.6f}",
                i.note,
            ]
        )
    for n in cost.node_hours:
        w.writerow(
            [
                "node_hours",
                f"{n.instance_type} {n.capacity_type} {n.pool or ''}".strip(),
                f"{n.node_hours:.6f}",
                "node-hours",
                "" if n.usd_per_hour is None else f"{n.usd_per_hour:.6f}",
                "" if n.cost_usd is None else f"{n.cost_usd:.6f}",
                n.note,
            ]
        )
    summary = {
        "total_usd": cost.total_usd,
        "hours": cost.hours,
        "requests": cost.requests,
        "usd_per_1k_requests": cost.usd_per_1k_requests,
        "usd_per_1m_tokens": cost.usd_per_1m_tokens,
        "gpu_hours": cost.gpu_hours,
        "unallocated_gpu_hours": cost.unallocated_gpu_hours,
        "unallocated_gpu_usd": cost.unallocated_gpu_usd,
        "allocated_unused_gpu_hours": cost.allocated_unused_gpu_hours,
        "allocated_unused_gpu_usd": cost.allocated_unused_gpu_usd,
        "under_target_gpu_hours": cost.under_target_gpu_hours,
        "under_target_gpu_usd": cost.under_target_gpu_usd,
        "nat_pull_gb": cost.nat_pull_gb,
        "tail_measured_usd": cost.tail.measured_usd if cost.tail else None,
        "tail_projected_usd": cost.tail.projected_remaining_usd if cost.tail else None,
    }
    for k, v in summary.items():
        w.writerow(
            [
                "summary",
                k,
                "" if v is None else (f"{v:.6f}" if isinstance(v, float) else v),
                "",
                "",
                "",
                "SIMULATED" if cost.simulated else "",
            ]
        )
    return buf.getvalue()


def to_json(cost: CostReport) -> str:
    return json.dumps(cost.model_dump(mode="json"), indent=2) + "\n"
