"""Typed models shared by the sampler, the verdict rules, the cost report and report.json.

Everything a run observes is a TimelineSample; everything it concludes is a RunReport.
Both serialise to JSON unchanged (report.json, timeline.jsonl).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from gpu_inference.domain.cost_models import CostReport
from gpu_inference.domain.models import FrozenModel, read_json_model

SCHEMA_VERSION = 1

#: The GPU utilization metric of the design (dcgm-exporter), used by the HPA and the timeline.
DEFAULT_METRIC = "DCGM_FI_DEV_GPU_UTIL"
#: Inference APIs the locust users in loadtest/users/ speak, one file each.
APIS = ("openai", "tgi", "triton")

#: Before the load (waiting, baseline), during it, and after it (watching the scale-down).
Phase = Literal["baseline", "load", "tail"]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


#: Conditions reasons with which the HPA says it could not read its metric (kubernetes#61007).
METRIC_FAILURE_REASONS = frozenset(
    {
        "FailedGetPodsMetric",
        "FailedGetObjectMetric",
        "FailedGetExternalMetric",
        "FailedGetResourceMetric",
        "FailedGetContainerResourceMetric",
        "FailedComputeMetricsReplicas",
        "InvalidMetricSourceType",
    }
)


class Target(FrozenModel):
    """Where a load test sends traffic and where it watches the stack.

    `simulated` is True when the GPUs behind it are the GPU simulator (local cluster): every
    report then says that its GPU figures are simulated.
    """

    url: str
    prometheus_url: str | None = None
    kubeconfig: Path | None = None
    namespace: str = "gpu-inference"
    hpa_name: str | None = None
    simulated: bool = False
    kube_context: str | None = None
    api: str = "openai"
    name: str = ""

    @field_validator("url", "prometheus_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"'{v}' is not an http(s) URL (e.g. http://127.0.0.1:8000)")
        return v.rstrip("/") if v else v

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        if not _DNS_LABEL.match(v):
            raise ValueError(f"'{v}' is not a valid namespace name (lowercase letters, digits, '-')")
        return v

    @field_validator("api")
    @classmethod
    def _api(cls, v: str) -> str:
        if v not in APIS:
            raise ValueError(f"unknown API '{v}', expected one of {', '.join(APIS)}")
        return v

    @property
    def watches_cluster(self) -> bool:
        return self.kubeconfig is not None and self.hpa_name is not None


# ---------------------------------------------------------------- timeline


class LocustPoint(BaseModel):
    """Locust's aggregated stats at one second (its stats-history CSV row)."""

    ts: float
    users: int
    rps: float
    fail_rps: float
    p50_ms: float | None
    p95_ms: float | None
    total_requests: int
    total_failures: int
    #: Mean response body size so far (locust's "Total Average Content Size").
    avg_content_bytes: float | None = None


class TokenPoint(BaseModel):
    """Cumulative token counts reported by the inference API, as the locust users counted them."""

    ts: float
    responses: int
    prompt_tokens: int
    completion_tokens: int


class PodGpu(BaseModel):
    """DCGM figures for one pod's GPU (averaged over its GPUs)."""

    pod: str
    util: float | None = None
    fb_used_mib: float | None = None
    temp_c: float | None = None


class PodInfo(BaseModel):
    name: str
    phase: str
    ready: bool
    node: str | None = None


class NodeInfo(BaseModel):
    """A node as cost and capacity see it; labels as EKS (and the local cluster) set them."""

    name: str
    instance_type: str | None = None
    capacity_type: str | None = None
    pool: str | None = None
    gpus: int = 0
    is_gpu: bool = False
    ready: bool = True
    #: The node carries the GPU simulator's label (its GPUs are simulated).
    simulated: bool = False


class HpaCondition(BaseModel):
    type: str
    status: str
    reason: str = ""
    message: str = ""


class HpaStatus(BaseModel):
    current_replicas: int
    desired_replicas: int
    #: The HPA's own view of the GPU metric (status.currentMetrics), None when it has none.
    current_value: float | None = None
    #: The HPA's own view of every metric it scales on (status.currentMetrics), by metric name.
    metrics: dict[str, float] = Field(default_factory=dict)
    conditions: list[HpaCondition] = Field(default_factory=list)


class WorkloadStatus(BaseModel):
    """The scale target (Deployment/StatefulSet): replicas and how many are Ready."""

    replicas: int
    ready_replicas: int


class RequestWindow(BaseModel):
    """Requests that finished in one sampling interval (open-loop mode): counts and SLO misses."""

    finished: int = 0
    errors: int = 0
    #: Finished requests that missed the TTFT or TPOT bound (errors count as misses too).
    slo_misses: int = 0
    ttft_p95_ms: float | None = None
    tpot_p95_ms: float | None = None
    #: Tokens and response bytes of the requests that succeeded (for the cost per token and egress).
    prompt_tokens: int = 0
    completion_tokens: int = 0
    response_bytes: int = 0


class TimelineSample(BaseModel):
    """Everything observed at one moment of a run. Sources that failed leave None and an error."""

    t: float
    elapsed_s: float
    phase: Phase
    locust: LocustPoint | None = None
    tokens: TokenPoint | None = None
    gpu: list[PodGpu] = Field(default_factory=list)
    #: Mean GPU utilization over the workload's pods (what the HPA averages), from Prometheus.
    gpu_util_mean: float | None = None
    hpa: HpaStatus | None = None
    workload: WorkloadStatus | None = None
    pods: list[PodInfo] = Field(default_factory=list)
    nodes: list[NodeInfo] = Field(default_factory=list)
    #: Offered load at this moment in requests/s: the open-loop shape's rate, or (closed loop) locust's rate.
    demand_rps: float | None = None
    #: Per-request figures of the requests that finished since the previous sample (open-loop mode).
    requests: RequestWindow | None = None
    #: Evidence that the GPUs behind the target are simulated (a simulator header, gauge or node label).
    simulated_evidence: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)

    @property
    def gpu_nodes(self) -> list[NodeInfo]:
        return [n for n in self.nodes if n.is_gpu]

    @property
    def utilization(self) -> float | None:
        """Prometheus' per-pod mean if there is one, else the HPA's own current value."""
        if self.gpu_util_mean is not None:
            return self.gpu_util_mean
        return self.hpa.current_value if self.hpa else None


class HpaMetric(BaseModel):
    """One metric the HPA scales on and its per-pod target (average value)."""

    name: str
    target: float


class ScalePolicy(BaseModel):
    """One HPA scaling policy: change by `value` pods (type Pods) or percent (type Percent) per period."""

    type: Literal["Pods", "Percent"]
    value: int
    period_s: int


class HpaSpec(BaseModel):
    """What the HPA object says about scaling (read from the cluster, never assumed)."""

    name: str
    namespace: str
    target_kind: str
    target_name: str
    min_replicas: int
    max_replicas: int
    metric_name: str
    target_value: float
    scale_down_stabilization_s: int = 300
    #: Every metric the HPA scales on (the first is metric_name); it acts on whichever asks for most.
    metrics: list[HpaMetric] = Field(default_factory=list)
    #: behavior.scaleDown: policies and selectPolicy (Kubernetes default: 100 % per 15 s, Max).
    scale_down_policies: list[ScalePolicy] = Field(
        default_factory=lambda: [ScalePolicy(type="Percent", value=100, period_s=15)]
    )
    scale_down_select: Literal["Max", "Min", "Disabled"] = "Max"
    #: The controller's sync period (kube-controller-manager --horizontal-pod-autoscaler-sync-period).
    sync_period_s: float = 15.0

    def all_metrics(self) -> list[HpaMetric]:
        """The metrics to judge: `metrics` when read, else the one named metric."""
        return self.metrics or [HpaMetric(name=self.metric_name, target=self.target_value)]


# ---------------------------------------------------------------- report


class Check(BaseModel):
    name: str
    passed: bool
    detail: str


class Bounds(BaseModel):
    """The bounds a verify-scaleup run is judged against (docs/loadtest.md lists each with its reason)."""

    slo_p95_ms: float = Field(default=5000.0, gt=0)
    max_error_ratio: float = Field(default=0.01, ge=0, le=1)
    scale_up_within_s: float = Field(default=300.0, gt=0)
    skip_scale_down: bool = False
    hpa_tolerance: float = Field(default=0.1, ge=0, lt=1)
    #: Each scale-up's new replicas must all be Ready within this many seconds.
    ready_within_s: float = Field(default=120.0, gt=0)
    #: Direction reversals of desired replicas allowed per 10 minutes (flapping).
    max_reversals_per_10min: float = Field(default=2.0, ge=0)
    #: Minutes desired replicas may sit at maxReplicas while a metric is still over its threshold.
    max_minutes_pinned_at_max: float = Field(default=3.0, ge=0)
    #: GPU-hours during the load may be at most this multiple of the oracle's.
    max_overprovision: float = Field(default=1.5, ge=1)
    #: Requests/s one replica serves within the SLO, measured by calibration; None: not judged.
    capacity_rps: float | None = Field(default=None, gt=0)
    #: Where capacity_rps came from (calibration file and its figures), for the report.
    capacity_source: str = ""
    skip_overprovision: bool = False
    #: Per-request SLO: time to first token and time per output token, and the share that must meet both.
    slo_ttft_ms: float = Field(default=2000.0, gt=0)
    slo_tpot_ms: float = Field(default=200.0, gt=0)
    min_slo_attainment: float = Field(default=0.95, ge=0, le=1)

    def bounds(self) -> dict[str, object]:
        """These fields and their values (to carry them from the options into Criteria)."""
        return {k: getattr(self, k) for k in Bounds.model_fields}


class Criteria(Bounds):
    """The bounds of one judged run, with the scale-down bound resolved (given, or from the HPA)."""

    scale_down_within_s: float | None = Field(default=None, gt=0)


class ShapeInfo(BaseModel):
    name: str
    path: str
    env: dict[str, str] = Field(default_factory=dict)


class RunInfo(BaseModel):
    tool_version: str
    started_at: str
    ended_at: str
    load_started_at: float
    load_stopped_at: float | None
    interval_s: float
    target: Target
    shape: ShapeInfo
    out_dir: str
    locust_exit_code: int | None = None
    #: closed (locust users) or open (Poisson arrivals at a rate shape, per-request records).
    mode: Literal["closed", "open"] = "closed"
    #: The open-loop client's summary (schedule, seed, in-flight cap, drops), when mode is open.
    open_loop: dict[str, Any] | None = None
    #: The GPU simulator's profile and parameters, as it reported them (GET /gpusim/profile).
    simulator: dict[str, Any] | None = None
    #: The local cluster's timing profile (fast, eks) the run used.
    timing_profile: str | None = None


class Measurements(BaseModel):
    """Figures measured from the timeline. None means the run gave no evidence for it."""

    initial_replicas: int | None = None
    peak_replicas: int | None = None
    peak_ready_replicas: int | None = None
    final_replicas: int | None = None
    utilization_target: float | None = None
    #: Seconds after load start when mean utilization first exceeded the HPA's scale-up threshold.
    utilization_crossed_at_s: float | None = None
    seconds_to_first_scale_up: float | None = None
    seconds_to_ready: float | None = None
    seconds_to_scale_down: float | None = None
    max_p95_ms: float | None = None
    error_ratio: float | None = None
    total_requests: int = 0
    total_failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    max_gpu_nodes: int | None = None
    mean_rps: float | None = None
    #: The metric whose crossing preceded the first scale-up (as the HPA reported it).
    scaled_up_on: str | None = None
    #: Slowest scale-up: seconds from desired replicas rising to all of them Ready.
    slowest_ready_s: float | None = None
    reversals: int | None = None
    minutes_pinned_at_max: float | None = None
    gpu_hours: float | None = None
    oracle_gpu_hours: float | None = None
    overprovision_ratio: float | None = None
    slo_attainment: float | None = None
    ttft_p95_ms: float | None = None
    tpot_p95_ms: float | None = None


class RunReport(Measurements):
    """report.json: a load test (kind loadtest, passed None) or a verify-scaleup verdict."""

    schema_version: int = SCHEMA_VERSION
    kind: Literal["loadtest", "verify-scaleup"]
    passed: bool | None = None
    reasons: list[str] = Field(default_factory=list)
    simulated: bool
    #: What showed that the GPUs are simulated (header, gauge, node label); empty for real GPUs.
    simulated_evidence: list[str] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    criteria: Criteria | None = None
    hpa: HpaSpec | None = None
    run: RunInfo
    cost: CostReport | None = None
    timeline: list[TimelineSample] = Field(default_factory=list)


def load_report(run_dir: Path) -> RunReport:
    """Read report.json from a load test's output directory."""
    return read_json_model(
        run_dir / "report.json" if run_dir.is_dir() else run_dir,
        RunReport,
        setting="--run",
        name="report.json",
        missing_fix="pass the --out directory of a `gpu-inference loadtest` or verify-scaleup run",
        invalid_fix="rerun the load test",
    )
