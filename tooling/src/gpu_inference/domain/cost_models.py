"""Typed cost reports: what a run (or a time window on a live cluster) cost, item by item."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gpu_inference.domain.stack import StackInputs


class PriceBookInfo(BaseModel):
    """Which price data a figure was computed with."""

    path: str
    region: str
    as_of: str


class CostItem(BaseModel):
    """One line of a bill: quantity x unit price. cost_usd None means it could not be priced."""

    name: str
    quantity: float
    unit: str
    unit_usd: float | None
    cost_usd: float | None
    note: str = ""


class NodeHours(BaseModel):
    instance_type: str
    capacity_type: str
    pool: str | None = None
    gpu: bool
    node_hours: float
    usd_per_hour: float | None
    cost_usd: float | None
    note: str = ""


class TailCost(BaseModel):
    """GPU nodes still billed after the load stopped, above the count the run started with."""

    load_stopped_at_s: float
    observed_s: float
    extra_gpu_node_hours: float
    measured_usd: float
    #: True when the GPU node count was back at its starting value before the run ended.
    complete: bool
    projected_remaining_usd: float
    projection: str


class HourlyPoint(BaseModel):
    elapsed_s: float
    usd_per_hour: float


class CostReport(BaseModel):
    simulated: bool
    source: str
    window_start: float
    window_end: float
    hours: float
    prices: PriceBookInfo
    node_hours: list[NodeHours] = Field(default_factory=list)
    items: list[CostItem] = Field(default_factory=list)
    total_usd: float
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usd_per_1k_requests: float | None = None
    usd_per_1m_tokens: float | None = None
    usd_per_1m_completion_tokens: float | None = None
    utilization_target: float | None = None
    gpu_hours: float = 0.0
    idle_gpu_hours: float = 0.0
    idle_gpu_usd: float = 0.0
    tail: TailCost | None = None
    hourly: list[HourlyPoint] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


#: The design's "about $1.50 per hour" claim, checked by every estimate.
DESIGN_CLAIM_USD_PER_HOUR = 1.50


class Assumptions(BaseModel):
    """What the config files don't say. Each one is printed with the estimate."""

    typical_gpu_nodes: int | None = Field(default=None, ge=0)
    lcu_per_hour: float = Field(default=1.0, ge=0)
    egress_gb_month: float = Field(default=10.0, ge=0)
    nat_gb_month: float | None = Field(default=None, ge=0)
    claim_usd_per_hour: float = Field(default=DESIGN_CLAIM_USD_PER_HOUR, gt=0)
    claim_tolerance: float = Field(default=0.10, ge=0, lt=1)


class Scenario(BaseModel):
    name: str
    gpu_nodes: int
    system_nodes: int
    #: Hourly items: quantity x unit price = $ per hour.
    items: list[CostItem]
    usd_per_hour: float
    usd_per_month: float


class ClaimRow(BaseModel):
    variant: str
    gpu_nodes: int
    usd_per_hour: float
    matches: bool


class ClaimCheck(BaseModel):
    claim_usd_per_hour: float
    tolerance: float
    rows: list[ClaimRow]
    verdict: str


class CostEstimate(BaseModel):
    cluster: str
    region: str
    prices: PriceBookInfo
    stack: StackInputs
    assumptions: list[str]
    scenarios: list[Scenario]
    claim: ClaimCheck
    notes: list[str] = Field(default_factory=list)
