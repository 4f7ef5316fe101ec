"""Typed cost reports: what a run (or a time window on a live cluster) cost, item by item."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gpu_inference.domain.models import FrozenModel
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
    #: OpenCost's "idle": GPU-hours of GPU nodes allocated to no inference pod, and their cost.
    unallocated_gpu_hours: float = 0.0
    unallocated_gpu_usd: float = 0.0
    #: Allocated but unused (OpenCost's efficiency gap): the sum of (1 - utilization) dt over GPUs
    #: that a pod held, and its cost.
    allocated_unused_gpu_hours: float = 0.0
    allocated_unused_gpu_usd: float = 0.0
    #: GPU-hours of nodes whose mean utilization was under the HPA target (whole node, whole
    #: interval): an autoscaling figure, not a FinOps idle figure.
    under_target_gpu_hours: float = 0.0
    under_target_gpu_usd: float = 0.0
    #: Image and model pulls the run caused through the NAT gateway (new private GPU nodes, new pods).
    nat_pull_gb: float = 0.0
    tail: TailCost | None = None
    hourly: list[HourlyPoint] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


#: The design's "about $1.50 per hour" claim, checked by every estimate.
DESIGN_CLAIM_USD_PER_HOUR = 1.50


class PullSizes(FrozenModel):
    """GB pulled per new GPU node (the inference image) and per new inference pod (the model).

    ASSUMED figures unless given: nothing here measures an image or a model download.
    """

    image_gb: float = Field(default=10.0, ge=0)
    model_gb: float = Field(default=3.1, ge=0)
    image_source: str = (
        "ASSUMED 10 GB: the vLLM OpenAI server image (docker.io/vllm/vllm-openai, CUDA + PyTorch) is several "
        "GB compressed; measure yours (e.g. the ECR console's image size) and pass --image-gb"
    )
    model_source: str = (
        "3.1 GB: Qwen/Qwen2.5-1.5B-Instruct in fp16, the chart's default model "
        "(charts/gpu-inference/charts/inference/values.yaml); pass --model-gb for another model"
    )


class Assumptions(BaseModel):
    """What the config files don't say. Each one is printed with the estimate."""

    typical_gpu_nodes: int | None = Field(default=None, ge=0)
    lcu_per_hour: float = Field(default=1.0, ge=0)
    egress_gb_month: float = Field(default=10.0, ge=0)
    nat_gb_month: float | None = Field(default=None, ge=0)
    claim_usd_per_hour: float = Field(default=DESIGN_CLAIM_USD_PER_HOUR, gt=0)
    claim_tolerance: float = Field(default=0.10, ge=0, lt=1)
    pulls: PullSizes = Field(default_factory=PullSizes)
    #: Each GPU node above the minimum starts this many times a day (a scale-up/scale-down cycle).
    scale_cycles_per_day: float = Field(default=1.0, ge=0)


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


class NatPullFix(BaseModel):
    """Image and model pulls through the NAT gateway, and what keeping them off it costs instead."""

    gb_per_gpu_node_start: float
    nat_usd_per_gpu_node_start: float
    typical_gpu_node_starts_per_day: float
    typical_nat_usd_per_hour: float
    fix: str
    fix_usd_per_hour: float | None
    #: GPU node starts per day above which the fix is cheaper (None: the fix could not be priced).
    breakeven_starts_per_day: float | None
    recommendation: str


class CostEstimate(BaseModel):
    cluster: str
    region: str
    prices: PriceBookInfo
    stack: StackInputs
    assumptions: list[str]
    scenarios: list[Scenario]
    claim: ClaimCheck
    nat_pulls: NatPullFix | None = None
    notes: list[str] = Field(default_factory=list)
