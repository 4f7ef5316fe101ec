"""cost report from a run: node-hours, totals, per-request/token, idle GPU and the tail, by hand."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from timeline_testkit import hpa_spec

from gpu_inference.domain.cost_models import CostReport
from gpu_inference.domain.prices import PriceBook
from gpu_inference.domain.stack import StackInputs
from gpu_inference.domain.timeline import (
    LocustPoint,
    NodeInfo,
    PodGpu,
    PodInfo,
    RunInfo,
    RunReport,
    ShapeInfo,
    Target,
    TimelineSample,
    TokenPoint,
)
from gpu_inference.errors import ConfigError
from gpu_inference.services.cost.report import Usage, cost_from_timeline, cost_report_from_run, to_csv

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0
SYSTEM = NodeInfo(name="sys", instance_type="m6i.large", capacity_type="ON_DEMAND", pool="system")


def gpu(i: int, capacity: str = "ON_DEMAND") -> NodeInfo:
    return NodeInfo(
        name=f"gpu-{i}", instance_type="g4dn.xlarge", capacity_type=capacity, pool="gpu", gpus=1, is_gpu=True
    )


def sample(t: float, nodes: list[NodeInfo], utils: dict[int, float]) -> TimelineSample:
    return TimelineSample(
        t=T0 + t,
        elapsed_s=t,
        phase="load",
        nodes=nodes,
        gpu=[PodGpu(pod=f"p{i}", util=u) for i, u in utils.items()],
        pods=[PodInfo(name=f"p{i}", phase="Running", ready=True, node=f"gpu-{i}") for i in utils],
    )


def one_hour() -> list[TimelineSample]:
    """0-30 min: one GPU node at 50 %; 30-45 min: two at 95/90 %; 45-60 min: two idle; at 60 min: one."""
    return [
        sample(0, [SYSTEM, gpu(0)], {0: 50}),
        sample(1800, [SYSTEM, gpu(0), gpu(1)], {0: 95, 1: 90}),
        sample(2700, [SYSTEM, gpu(0), gpu(1)], {0: 10, 1: 0}),
        sample(3600, [SYSTEM, gpu(0)], {0: 0}),
    ]


USAGE = Usage(requests=1_000_000, prompt_tokens=2_000_000, completion_tokens=8_000_000, response_bytes=1e9)


def _cost(
    samples: list[TimelineSample],
    stack: StackInputs,
    prices: PriceBook,
    *,
    simulated: bool = False,
    source: str = "t",
    usage: Usage = USAGE,
    **options: Any,
) -> CostReport:
    """cost_from_timeline with the HPA target at 80 % and, unless given, USAGE."""
    options.update(prices=prices, stack=stack, simulated=simulated, source=source, usage=usage)
    return cost_from_timeline(samples, utilization_target=80, **options)


def test_one_hour_by_hand(stack: StackInputs, prices: PriceBook) -> None:
    c = _cost(one_hour(), stack, prices, source="test", load_stopped_at=T0 + 2700)
    assert c.hours == 1.0
    nodes = {(n.instance_type, n.capacity_type): (n.node_hours, n.cost_usd) for n in c.node_hours}
    # g4dn: 0.5 h x 1 + 0.25 h x 2 + 0.25 h x 2 = 1.5 node-hours x 0.526; m6i: 1 node-hour x 0.096
    assert nodes[("g4dn.xlarge", "ON_DEMAND")] == pytest.approx((1.5, 0.789))
    assert nodes[("m6i.large", "ON_DEMAND")] == pytest.approx((1.0, 0.096))
    items = {i.name: i.cost_usd for i in c.items}
    assert items["EKS control plane"] == pytest.approx(0.10)
    assert items["NAT gateway"] == pytest.approx(0.045)
    assert items["ALB"] == pytest.approx(0.0225)
    assert items["ALB capacity units"] == pytest.approx(0.008)
    assert items["public IPv4: NAT and load balancer"] == pytest.approx(3 * 0.005)
    # 40 GiB x 1 h + 80 GiB x 1.5 h = 160 GiB-hours = 0.219178 GiB-months x $0.08
    assert items["EBS gp3: node root volumes"] == pytest.approx(160 / 730 * 0.08)
    assert items["data transfer out (response bodies)"] == pytest.approx(0.09)  # 1 GB
    # gpu-1 and its pod p1 appear at 30 min on a private node group: one 10 GB image (assumed) and one
    # 3.1 GB model through the NAT gateway at $0.045/GB
    assert c.nat_pull_gb == pytest.approx(13.1)
    assert items["NAT gateway data processed: image and model pulls"] == pytest.approx(13.1 * 0.045)
    total = 0.789 + 0.096 + 0.10 + 0.045 + 0.0225 + 0.008 + 0.015 + 160 / 730 * 0.08 + 0.09  # 1.1830342
    total += 13.1 * 0.045  # 0.5895: the largest item after the nodes
    assert c.total_usd == pytest.approx(total)
    assert c.total_usd == pytest.approx(1.7725342, abs=1e-7)
    assert c.usd_per_1k_requests == pytest.approx(total / 1000)
    assert c.usd_per_1m_tokens == pytest.approx(total / 10)
    assert c.usd_per_1m_completion_tokens == pytest.approx(total / 8)
    # under the HPA target: gpu-0 0-30 min (50 % < 80) and both 45-60 min: 0.5 + 0.5 GPU-hours, at 0.526
    assert (c.gpu_hours, c.under_target_gpu_hours, c.under_target_gpu_usd) == pytest.approx((1.5, 1.0, 0.526))
    # every GPU held a pod the whole hour: nothing unallocated (OpenCost's idle)
    assert (c.unallocated_gpu_hours, c.unallocated_gpu_usd) == (0, 0)
    # allocated but unused: 0.5 h x 0.5 + 0.25 h x (0.05 + 0.10) + 0.25 h x (0.90 + 1.00) = 0.7625
    assert c.allocated_unused_gpu_hours == pytest.approx(0.7625)
    assert c.allocated_unused_gpu_usd == pytest.approx(0.7625 * 0.526)
    # tail: load stopped at 45 min; one extra GPU node for 15 min; back to one node by the end
    assert c.tail is not None
    assert c.tail.complete
    assert (c.tail.extra_gpu_node_hours, c.tail.measured_usd) == pytest.approx((0.25, 0.1315))
    assert c.tail.observed_s == 900
    assert c.tail.projected_remaining_usd == 0
    # $/h at the start: fixed 0.1905 + 0.096 + 0.526 + 120 GiB of gp3 per hour
    assert c.hourly[0].usd_per_hour == pytest.approx(0.1905 + 0.096 + 0.526 + 120 * 0.08 / 730)
    assert c.hourly[1].usd_per_hour == pytest.approx(c.hourly[0].usd_per_hour + 0.526 + 80 * 0.08 / 730)


def test_a_tail_that_outlasts_the_run_is_projected_and_labelled(
    stack: StackInputs, prices: PriceBook
) -> None:
    samples = one_hour()
    samples[-1] = sample(3600, [SYSTEM, gpu(0), gpu(1)], {0: 0, 1: 0})  # still two GPU nodes at the end
    c = _cost(samples, stack, prices, load_stopped_at=T0 + 3000, scale_down_window_s=300, ca_unneeded_s=600)
    assert c.tail is not None
    assert not c.tail.complete
    # 600 s observed; 300 + 600 - 600 = 300 s more for 1 extra node: 0.526 x 300 / 3600
    assert c.tail.projected_remaining_usd == pytest.approx(0.0438333, abs=1e-7)
    assert c.tail.measured_usd == pytest.approx(0.526 * 600 / 3600)
    assert c.tail.projection.startswith("PROJECTED, not measured: 1 extra GPU node(s)")


def test_simulated_spot_and_unpriced_nodes_are_said(stack: StackInputs, prices: PriceBook) -> None:
    odd = NodeInfo(name="x", instance_type=None, capacity_type=None, pool=None)
    samples = [sample(0, [gpu(0, "SPOT"), odd], {0: 90}), sample(3600, [gpu(0, "SPOT"), odd], {0: 90})]
    c = _cost(samples, stack, prices, simulated=True, usage=Usage())
    assert c.notes[0].startswith("SIMULATED")
    spot = next(n for n in c.node_hours if n.capacity_type == "SPOT")
    assert spot.cost_usd == pytest.approx(0.526)
    assert "upper bound" in spot.note
    unknown = next(n for n in c.node_hours if n.instance_type == "unknown")
    assert unknown.cost_usd is None
    assert "instance-type label" in unknown.note
    assert any("could not be priced" in n for n in c.notes)
    assert c.usd_per_1k_requests is None
    assert c.usd_per_1m_tokens is None


def test_a_run_without_node_observations_cannot_be_priced(stack: StackInputs, prices: PriceBook) -> None:
    with pytest.raises(ConfigError, match="no node observations"):
        _cost([sample(0, [], {}), sample(60, [], {})], stack, prices, usage=Usage())


def test_cost_report_from_a_run_directory(tmp_path: Path, stack: StackInputs, prices: PriceBook) -> None:
    timeline = one_hour()
    for s in timeline:
        s.locust = LocustPoint(
            ts=s.t,
            users=5,
            rps=1,
            fail_rps=0,
            p50_ms=100,
            p95_ms=200,
            total_requests=1_000_010,
            total_failures=10,
            avg_content_bytes=1000,
        )
        s.tokens = TokenPoint(
            ts=s.t, responses=1_000_000, prompt_tokens=2_000_000, completion_tokens=8_000_000
        )
    report = RunReport(
        kind="loadtest",
        simulated=True,
        total_requests=1_000_010,
        total_failures=10,
        prompt_tokens=2_000_000,
        completion_tokens=8_000_000,
        hpa=hpa_spec(),
        run=RunInfo(
            tool_version="t",
            started_at="a",
            ended_at="b",
            load_started_at=T0,
            load_stopped_at=T0 + 2700,
            interval_s=5,
            target=Target(url="http://127.0.0.1:8000", simulated=True),
            shape=ShapeInfo(name="step", path="step.py"),
            out_dir=str(tmp_path),
        ),
        timeline=timeline,
    )
    (tmp_path / "report.json").write_text(report.model_dump_json())
    cost = cost_report_from_run(tmp_path, prices=prices, stack=stack)
    # the same hour as above, with the response bytes of all 1,000,010 requests: 1.00001 GB out
    assert cost.total_usd == pytest.approx(1.7725342 + 0.00001 * 0.09, abs=1e-7)
    assert cost.requests == 1_000_000
    assert cost.utilization_target == 80
    assert json.loads((tmp_path / "cost.json").read_text())["total_usd"] == pytest.approx(cost.total_usd)
    rows = list(csv.reader(io.StringIO((tmp_path / "cost.csv").read_text())))
    assert rows[0] == ["section", "name", "quantity", "unit", "unit_usd", "cost_usd", "note"]
    summary = {r[1]: r[2] for r in rows if r[0] == "summary"}
    assert float(summary["total_usd"]) == pytest.approx(cost.total_usd)
    assert summary["requests"] == "1000000"
    assert all(r[6] == "SIMULATED" for r in rows if r[0] == "summary")
    updated = RunReport.model_validate_json((tmp_path / "report.json").read_text())
    assert updated.cost is not None
    assert updated.cost.total_usd == pytest.approx(cost.total_usd)
    html = (tmp_path / "report.html").read_text()
    assert "<h2>Cost</h2>" in html
    assert "idle GPU-hours (unallocated: no inference pod)" in html
    assert "allocated but unused GPU-hours" in html
    assert "GPU-hours under the HPA target (80 %)" in html
    for key in (
        "unallocated_gpu_hours",
        "allocated_unused_gpu_hours",
        "under_target_gpu_hours",
        "nat_pull_gb",
    ):
        assert key in summary
    assert "Scale-down tail" in html
    assert "SIMULATED GPU figures" in html
    assert to_csv(cost) == (tmp_path / "cost.csv").read_text()


def test_a_gpu_node_without_a_pod_is_idle_not_just_under_target(
    stack: StackInputs, prices: PriceBook
) -> None:
    """OpenCost's idle is capacity allocated to no pod: a GPU node that holds no inference pod for half
    an hour is 0.5 unallocated GPU-hours; the busy node next to it is allocated, 10 % unused."""
    samples = [
        sample(0, [SYSTEM, gpu(0), gpu(1)], {0: 90}),  # gpu-1 holds no pod
        sample(1800, [SYSTEM, gpu(0), gpu(1)], {0: 90}),
    ]
    c = _cost(samples, stack, prices, simulated=True, usage=Usage())
    assert c.unallocated_gpu_hours == pytest.approx(0.5)
    assert c.unallocated_gpu_usd == pytest.approx(0.5 * 0.526)
    assert c.allocated_unused_gpu_hours == pytest.approx(0.5 * 0.10)
    assert c.under_target_gpu_hours == pytest.approx(0.5)  # only the podless node is under 80 %
    # nothing new appeared after the first sample: nothing pulled through the NAT
    assert c.nat_pull_gb == 0
    assert not any(i.cost_usd for i in c.items if i.name.endswith("image and model pulls"))


def test_pull_sizes_given_price_the_runs_new_node_and_pod(stack: StackInputs, prices: PriceBook) -> None:
    from gpu_inference.domain.cost_models import PullSizes

    c = _cost(one_hour(), stack, prices, pulls=PullSizes(image_gb=7.5, model_gb=16))
    assert c.nat_pull_gb == pytest.approx(7.5 + 16)  # gpu-1 (image) and p1 (model) appear at 30 min
    item = next(i for i in c.items if i.name == "NAT gateway data processed: image and model pulls")
    assert item.cost_usd == pytest.approx(23.5 * 0.045)
    assert item.note.startswith("1 new private GPU node(s) x 7.5 GB image + 1 new pod(s) x 16 GB model")
