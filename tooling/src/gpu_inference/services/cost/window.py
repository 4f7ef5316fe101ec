"""Cost of a time window on a live cluster, rebuilt from Prometheus history.

The DCGM series say which GPUs existed and on which node (the exporter's Hostname label),
which pod used each and how busy it was. Instance and capacity types come from the Node
objects where the node still exists, else from the GPU node group in eksctl/cluster.yaml
(noted). CPU nodes leave no DCGM trace: the nodes present now are assumed present for the
whole window (noted). Requests and tokens come from vLLM's own counters when Prometheus has
them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from gpu_inference.adapters.kube import ClusterReader
from gpu_inference.adapters.prometheus import Prometheus, PrometheusError
from gpu_inference.domain.cost_models import CostReport, PullSizes
from gpu_inference.domain.prices import PriceBook
from gpu_inference.domain.stack import StackInputs
from gpu_inference.domain.timeline import DEFAULT_METRIC, NodeInfo, PodGpu, PodInfo, TimelineSample
from gpu_inference.errors import ConfigError
from gpu_inference.services.cost.report import Usage, cost_from_timeline

log = logging.getLogger(__name__)

#: Labels dcgm-exporter has used for the node name (renamed to lowercase after 4.8.2).
NODE_LABELS = ("Hostname", "hostname", "node", "kubernetes_node")
VLLM_COUNTERS = {
    "requests": "vllm:request_success_total",
    "prompt_tokens": "vllm:prompt_tokens_total",
    "completion_tokens": "vllm:generation_tokens_total",
}


@dataclass(frozen=True)
class PromWindow:
    """The history to read: one namespace's series over [start, end], every step_s seconds."""

    namespace: str
    start: float
    end: float
    step_s: float
    #: The GPU utilization series (DCGM's by default).
    metric: str = DEFAULT_METRIC


def _node_of(labels: dict[str, str]) -> str | None:
    return next((labels[k] for k in NODE_LABELS if labels.get(k)), None)


def _increase(prom: Prometheus, metric: str, w: PromWindow) -> int | None:
    span = max(1, round(w.end - w.start))
    try:
        found = prom.query(f'sum(increase({metric}{{namespace="{w.namespace}"}}[{span}s]))', at=w.end)
    except PrometheusError as exc:
        log.warning("%s", exc)
        return None
    return round(found[0].value) if found else None


def timeline_from_prometheus(
    prom: Prometheus, w: PromWindow, *, stack: StackInputs, current_nodes: list[NodeInfo]
) -> tuple[list[TimelineSample], list[str]]:
    """Samples at every step of the window and the assumptions made to build them."""
    namespace, start, end, metric = w.namespace, w.start, w.end, w.metric
    notes: list[str] = []
    by_name = {n.name: n for n in current_nodes}
    gpu_group = stack.gpu_groups[0]
    util_q = (
        f'avg by (namespace, pod, {", ".join(NODE_LABELS)}) ({metric}{{namespace="{namespace}", pod!=""}})'
    )
    gpus_q = f"count by ({', '.join(NODE_LABELS)}) ({metric})"
    util: dict[float, list[tuple[str, str | None, float]]] = defaultdict(list)
    gpus: dict[float, dict[str, int]] = defaultdict(dict)
    for series in prom.query_range(util_q, start, end, w.step_s):
        for ts, value in series.points:
            util[ts].append((series.labels.get("pod", ""), _node_of(series.labels), value))
    for series in prom.query_range(gpus_q, start, end, w.step_s):
        node = _node_of(series.labels)
        if node is None:
            notes.append(
                f"{metric} has no node label ({'/'.join(NODE_LABELS)}): GPU nodes cannot be told apart"
            )
            continue
        for ts, value in series.points:
            gpus[ts][node] = int(value)
    if not gpus:
        raise ConfigError(
            "--prometheus-url/--namespace",
            f"Prometheus has no {metric} series between the given times",
            "check the window and that dcgm-exporter is scraped",
        )
    assumed: set[str] = set()
    cpu_nodes = [n for n in current_nodes if not n.is_gpu]
    if cpu_nodes:
        notes.append(f"{len(cpu_nodes)} non-GPU node(s) seen now are assumed present for the whole window")

    def gone(name: str) -> NodeInfo:
        """A node no longer in the cluster: one of the GPU group, as eksctl/cluster.yaml has it."""
        assumed.add(name)
        g = gpu_group
        return NodeInfo(name=name, instance_type=g.instance_type, capacity_type=g.capacity_type, pool=g.name)

    samples = []
    for ts in sorted(gpus):
        nodes: list[NodeInfo] = list(cpu_nodes)
        for name, count in sorted(gpus[ts].items()):
            seen = by_name.get(name) or gone(name)
            nodes.append(seen.model_copy(update={"gpus": count, "is_gpu": True}))
        rows = util.get(ts, [])
        samples.append(
            TimelineSample(
                t=ts,
                elapsed_s=ts - start,
                phase="load",
                gpu=[PodGpu(pod=pod, util=v) for pod, _, v in rows],
                gpu_util_mean=sum(v for _, _, v in rows) / len(rows) if rows else None,
                pods=[PodInfo(name=pod, phase="Running", ready=True, node=node) for pod, node, _ in rows],
                nodes=nodes,
            )
        )
    if assumed:
        notes.append(
            f"{len(assumed)} GPU node(s) no longer exist ({', '.join(sorted(assumed)[:5])}): "
            "priced as the "
            f"'{gpu_group.name}' node group ({gpu_group.instance_type} {gpu_group.capacity_type})"
        )
    return samples, notes


def cost_report_from_window(
    prom: Prometheus,
    window: PromWindow,
    *,
    stack: StackInputs,
    prices: PriceBook,
    cluster: ClusterReader | None,
    simulated: bool,
    utilization_target: float,
    pulls: PullSizes | None = None,
) -> CostReport:
    """Cost of the window on a live cluster, from Prometheus history (see the module docstring)."""
    current = cluster.nodes() if cluster is not None else []
    samples, notes = timeline_from_prometheus(prom, window, stack=stack, current_nodes=current)
    counts = {k: _increase(prom, m, window) for k, m in VLLM_COUNTERS.items()}
    notes.append("data transfer out is not known for a window (no response sizes): not included")
    if counts["requests"] is None:
        notes.append(
            "no vLLM request counters in Prometheus: cost per request and per token are not available"
        )
    usage = Usage(
        requests=counts["requests"] or 0,
        prompt_tokens=counts["prompt_tokens"] or 0,
        completion_tokens=counts["completion_tokens"] or 0,
    )
    report = cost_from_timeline(
        samples,
        prices=prices,
        stack=stack,
        simulated=simulated,
        source=f"Prometheus {prom.url}, namespace {window.namespace}",
        usage=usage,
        utilization_target=utilization_target,
        pulls=pulls,
    )
    report.notes = [*notes, *report.notes]
    return report
