"""Typed cost reports: what a run (or a time window on a live cluster) cost, item by item."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
