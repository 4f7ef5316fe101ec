"""cost report for a time window on a live cluster, rebuilt from (recorded) Prometheus history."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cost_testkit import RecordedPrometheus

from gpu_inference.adapters.prometheus import Prometheus
from gpu_inference.domain.cost_models import CostReport
from gpu_inference.domain.prices import PriceBook
from gpu_inference.domain.stack import StackInputs
from gpu_inference.errors import ConfigError
from gpu_inference.services.cost.window import PromWindow, cost_report_from_window

pytestmark = pytest.mark.unit

# The recorded range answers hold two points, 2 s apart, from 1795957661.384.
START, END = 1795957661.0, 1795957664.0


@pytest.fixture
def recorded() -> Iterator[RecordedPrometheus]:
    server = RecordedPrometheus()
    try:
        yield server
    finally:
        server.close()


def _window_report(url: str, stack: StackInputs, prices: PriceBook) -> CostReport:
    """The cost report of [START, END] (2 s steps, target 80 %) from the Prometheus at `url`."""
    with Prometheus(url) as prom:
        return cost_report_from_window(
            prom,
            PromWindow("gpu-inference", start=START, end=END, step_s=2),
            stack=stack,
            prices=prices,
            cluster=None,
            simulated=False,
            utilization_target=80,
        )


def test_window_cost_from_prometheus_history(
    recorded: RecordedPrometheus, stack: StackInputs, prices: PriceBook
) -> None:
    c = _window_report(recorded.url, stack, prices)
    assert recorded.unknown == []  # every query the window asks is one that was recorded
    # Three GPUs reported (three Hostnames) for one 2 s interval; none of those nodes exists any more, so they
    # are priced as the eksctl 'gpu' node group.
    (gpu,) = c.node_hours
    assert (gpu.instance_type, gpu.capacity_type, gpu.pool) == ("g4dn.xlarge", "ON_DEMAND", "gpu")
    assert gpu.node_hours == pytest.approx(3 * 2 / 3600)
    assert gpu.cost_usd == pytest.approx(0.526 * 3 * 2 / 3600)
    # Two GPUs served pods at 93 % and 88 % (busy); the third had no pod: idle for the 2 s.
    assert c.gpu_hours == pytest.approx(3 * 2 / 3600)
    assert c.unallocated_gpu_hours == pytest.approx(2 / 3600)
    assert c.unallocated_gpu_usd == pytest.approx(0.526 * 2 / 3600)
    assert c.under_target_gpu_hours == pytest.approx(2 / 3600)  # the podless GPU at 0 % < 80 %
    assert c.allocated_unused_gpu_hours == pytest.approx((0.07 + 0.12) * 2 / 3600)
    assert c.requests == 0
    assert c.usd_per_1k_requests is None
    assert any("no longer exist" in n and "'gpu' node group" in n for n in c.notes)
    assert any("no vLLM request counters" in n for n in c.notes)


def test_a_window_without_gpu_series_is_a_clear_error(
    recorded: RecordedPrometheus, stack: StackInputs, prices: PriceBook
) -> None:
    recorded.answers = {q: a for q, a in recorded.answers.items() if "count by" not in q}
    recorded.answers["count by (Hostname, hostname, node, kubernetes_node) (DCGM_FI_DEV_GPU_UTIL)"] = [
        200,
        {"status": "success", "data": {"resultType": "matrix", "result": []}},
    ]
    with pytest.raises(ConfigError, match="no DCGM_FI_DEV_GPU_UTIL series"):
        _window_report(recorded.url, stack, prices)
