"""Run a load test (and, for verify-scaleup, judge it): the Python API behind the CLI and `make demo`.

    report = run_verify_scaleup(VerifyOptions(target=Target(...), shape="step", out_dir=Path("out/demo")))
    report.passed  # False -> the CLI exits 1

Sequence: check the target, Prometheus and the HPA (its contract is read from the object), and
preview the shape's schedule; sample the baseline (verify-scaleup waits here until the HPA reads
its metric and sits at its minimum); start locust; sample every interval while it runs; after
it stops, keep sampling until the replicas are back at the start (verify) or for
--observe-after seconds; then measure, judge, price, and write report.json, report.html and
timeline.jsonl (the last one as the run goes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import requests
from pydantic import BaseModel, Field, field_validator

from gpu_inference import __version__
from gpu_inference.adapters.kube import ClusterReader
from gpu_inference.adapters.locust import (
    CSV_PREFIX,
    TOKENS_FILE,
    LocustOptions,
    LocustProcess,
    StatsHistoryReader,
    TokensReader,
    read_final_stats,
)
from gpu_inference.adapters.locust_support import ENV_DURATION_S, ENV_PEAK_USERS, ENV_SPAWN_RATE
from gpu_inference.adapters.openloop import (
    PROFILE_HEADER,
    OpenLoopOptions,
    OpenLoopSummary,
    run_open_loop,
)
from gpu_inference.adapters.prometheus import Prometheus
from gpu_inference.domain.constants import SIMULATED_HEADER, SIMULATED_METRIC, SIMULATED_NODE_LABEL
from gpu_inference.domain.models import read_json_model
from gpu_inference.domain.rate_shapes import RampRate, RateShape
from gpu_inference.domain.requests import RequestRecord, Slo, meets_slo, percentile
from gpu_inference.domain.timeline import (
    DEFAULT_METRIC,
    Bounds,
    Criteria,
    HpaSpec,
    NodeInfo,
    Phase,
    RequestWindow,
    RunInfo,
    RunReport,
    ShapeInfo,
    Target,
    TimelineSample,
)
from gpu_inference.domain.verdict import evaluate, measure, metric_failures, scale_down_bound_s
from gpu_inference.errors import ConfigError, GpuInferenceError
from gpu_inference.rendering.report_html import write_html
from gpu_inference.services.cost.report import cost_for_report
from gpu_inference.services.loadtest import shapes
from gpu_inference.services.loadtest.calibrate import Calibration, CalibrationOptions
from gpu_inference.services.loadtest.calibrate_sim import calibrate_simulated
from gpu_inference.services.loadtest.sampler import Sampler

log = logging.getLogger(__name__)

#: Route that proves each API is up before any load is sent.
HEALTH_ROUTES = {"openai": "/v1/models", "tgi": "/health", "triton": "/v2/health/ready"}
#: Extra seconds after a shape's own end before locust is stopped by force.
STOP_GRACE_S = 60.0
#: When the scale-down bound is not given: the HPA's scale-down window plus this.
SCALE_DOWN_SLACK_S = 120.0

OnSample = Callable[[TimelineSample], None]


class LoadTestOptions(BaseModel):
    target: Target
    shape: str = "step"
    out_dir: Path
    duration_s: float | None = Field(default=None, gt=0)
    peak_users: int | None = Field(default=None, ge=1)
    spawn_rate: float | None = Field(default=None, gt=0)
    shape_env: dict[str, str] = Field(default_factory=dict)
    interval_s: float = Field(default=5.0, gt=0)
    web_ui: bool = False
    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    observe_after_s: float = Field(default=0.0, ge=0)
    metric: str = DEFAULT_METRIC
    #: Hard cap on the load phase when the shape's length is unknown.
    max_load_s: float = Field(default=7200.0, gt=0)
    #: closed: locust users (each waits for its answer); open: Poisson arrivals at `rate_shape`'s rate,
    #: one record per request (requests.jsonl), which the SLO checks read.
    mode: Literal["closed", "open"] = "closed"
    rate_shape: RateShape | None = None
    open_loop: OpenLoopOptions = Field(default_factory=OpenLoopOptions)
    #: The local cluster's timing profile (fast, eks), recorded in the report; None elsewhere.
    timing_profile: str | None = None

    @field_validator("out_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        # locust runs in loadtest/; a relative path must still mean the caller's directory.
        return v.resolve()


class VerifyOptions(LoadTestOptions, Bounds):
    """A load test judged by the verdict: the run's options and the bounds (domain.timeline.Bounds)."""

    scale_down_within_s: float | None = Field(default=None, gt=0)
    #: Before the load: wait this long for the HPA to read its metric and sit at its minimum.
    settle_timeout_s: float = Field(default=180.0, ge=0)
    #: Seconds the metric pipeline adds before the HPA sees a change (scrape, relist, query window).
    metric_lag_s: float = Field(default=60.0, ge=0)
    #: With no capacity_rps: measure it first (simulated targets: a simulator replica beside the cluster).
    calibrate: bool = True
    #: A calibration.json from `gpu-inference calibrate` to take capacity_rps from.
    calibration_file: Path | None = None
    #: Open-loop mode with no rate shape: a step to this multiple of the measured capacity.
    peak_factor: float = Field(default=1.4, gt=0)
    #: Open-loop mode with no rate shape: the step's length (seconds).
    open_duration_s: float = Field(default=240.0, gt=0)


def _shape_env(o: LoadTestOptions) -> dict[str, str]:
    env = dict(o.shape_env)
    if o.duration_s is not None:
        env[ENV_DURATION_S] = f"{o.duration_s:g}"
    if o.peak_users is not None:
        env[ENV_PEAK_USERS] = str(o.peak_users)
    if o.spawn_rate is not None:
        env[ENV_SPAWN_RATE] = f"{o.spawn_rate:g}"
    return env


def check_target(target: Target, timeout_s: float = 10.0) -> list[str]:
    """The inference API answers its health route, or a ConfigError says how to fix the URL.

    Returns the evidence of simulated GPUs the answer carries (the simulator's header), if any.
    """
    url = target.url + HEALTH_ROUTES[target.api]
    try:
        r = requests.get(url, timeout=timeout_s)
    except requests.RequestException as exc:
        raise ConfigError(
            "--target",
            f"{url} is not reachable ({type(exc).__name__})",
            "pass the inference API's base URL (or --local with the local cluster up)",
        ) from exc
    if r.status_code != 200:
        raise ConfigError(
            "--target",
            f"{url} answered HTTP {r.status_code}",
            f"is this a {target.api} API? pass --api to match the chart preset",
        )
    if r.headers.get(SIMULATED_HEADER, "").lower() == "true":
        return [f"{url} answered with header {SIMULATED_HEADER}: true"]
    return []


#: The open-loop mode's per-request records, one JSON line each (domain.requests.RequestRecord).
REQUESTS_FILE = "requests.jsonl"


class RecordsSince:
    """Collects finished requests from the load thread; each window() takes those since the last one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._new: list[RequestRecord] = []

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._new.append(record)

    def window(self, slo: Slo) -> RequestWindow:
        with self._lock:
            batch, self._new = self._new, []
        return request_window(batch, slo)


def request_window(batch: list[RequestRecord], slo: Slo) -> RequestWindow:
    """Counts, SLO misses and p95s of the requests that finished in one sampling interval."""
    finished = [r for r in batch if r.outcome != "cancelled"]
    ok = [r for r in finished if r.ok]
    ttft = percentile([r.ttft_s * 1000 for r in finished if r.ttft_s is not None], 95)
    tpot = percentile([r.tpot_s * 1000 for r in finished if r.tpot_s is not None], 95)
    return RequestWindow(
        finished=len(finished),
        errors=len(finished) - len(ok),
        slo_misses=sum(1 for r in finished if not meets_slo(r, slo)),
        ttft_p95_ms=ttft,
        tpot_p95_ms=tpot,
        prompt_tokens=sum(r.prompt_tokens or 0 for r in ok),
        completion_tokens=sum(r.completion_tokens or 0 for r in ok),
        response_bytes=sum(r.response_bytes for r in ok),
    )


def merge_windows(a: RequestWindow | None, b: RequestWindow) -> RequestWindow:
    """Two request windows as one (p95s: the worse of the two)."""
    if a is None:
        return b

    def worse(x: float | None, y: float | None) -> float | None:
        return max(v for v in (x, y) if v is not None) if x is not None or y is not None else None

    counts = ("finished", "errors", "slo_misses", "prompt_tokens", "completion_tokens", "response_bytes")
    return RequestWindow(
        **{k: getattr(a, k) + getattr(b, k) for k in counts},
        ttft_p95_ms=worse(a.ttft_p95_ms, b.ttft_p95_ms),
        tpot_p95_ms=worse(a.tpot_p95_ms, b.tpot_p95_ms),
    )


def simulator_profile(url: str, timeout_s: float = 5.0) -> dict[str, Any] | None:
    """The GPU simulator's profile and parameters (GET /gpusim/profile), for the report."""
    try:
        r = requests.get(url + "/gpusim/profile", timeout=timeout_s)
        if r.status_code == 200:
            body: dict[str, Any] = r.json()
            return body
    except (requests.RequestException, ValueError) as exc:
        log.debug("no simulator profile at %s: %s", url, exc)
    return None


def simulation_evidence(prometheus: Prometheus | None, nodes: list[NodeInfo]) -> list[str]:
    """Evidence of simulated GPUs in Prometheus (the simulator's gauge) and on the nodes (its label)."""
    found = []
    if prometheus is not None:
        try:
            series = prometheus.query(f"max({SIMULATED_METRIC})")
        except GpuInferenceError as exc:
            log.debug("could not look for %s: %s", SIMULATED_METRIC, exc)
            series = []
        if any(s.value == 1 for s in series):
            found.append(f"Prometheus has the gauge {SIMULATED_METRIC} = 1")
    sim_nodes = [n.name for n in nodes if n.simulated]
    if sim_nodes:
        found.append(f"nodes labelled {SIMULATED_NODE_LABEL}: {', '.join(sim_nodes[:3])}")
    return found


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="seconds")


class _Run:
    """One run's resources; every one of them is released in close()."""

    def __init__(self, o: LoadTestOptions, verify: bool) -> None:
        self.o = o
        self.verify = verify
        self.prometheus: Prometheus | None = None
        self.cluster: ClusterReader | None = None
        self.hpa: HpaSpec | None = None
        self.locust: LocustProcess | None = None
        self.evidence: list[str] = []
        self.peak: int | None = None
        self.simulator: dict[str, Any] | None = None

    def close(self) -> None:
        if self.locust is not None:
            self.locust.stop()
        if self.prometheus is not None:
            self.prometheus.close()
        if self.cluster is not None:
            self.cluster.close()

    def connect(self) -> None:
        t = self.o.target
        if self.verify and (t.prometheus_url is None or not t.watches_cluster):
            raise ConfigError(
                "--prometheus-url/--kubeconfig/--hpa",
                "verify-scaleup watches the HPA and the GPU metric and needs all three",
                "pass them, or --local for the local cluster",
            )
        if t.prometheus_url:
            self.prometheus = Prometheus(t.prometheus_url)
            try:
                self.prometheus.check()
            except GpuInferenceError as exc:
                raise ConfigError(
                    "--prometheus-url", str(exc), "pass the Prometheus the HPA's adapter reads"
                ) from exc
        if t.kubeconfig is not None and t.hpa_name:
            self.cluster = ClusterReader(t.kubeconfig, t.namespace, t.hpa_name, context=t.kube_context)
            try:
                self.hpa = self.cluster.hpa_spec(self.o.metric)
            except ConfigError:
                if self.o.metric != DEFAULT_METRIC:
                    raise
                # The chart scales on the signals it is given (autoscaling.signals): judge those.
                self.hpa = self.cluster.hpa_spec(None)
            log.info(
                "HPA %s/%s scales %s %s on %s, target %g, %d..%d replicas, scale-down window %ds",
                self.hpa.namespace,
                self.hpa.name,
                self.hpa.target_kind,
                self.hpa.target_name,
                self.hpa.metric_name,
                self.hpa.target_value,
                self.hpa.min_replicas,
                self.hpa.max_replicas,
                self.hpa.scale_down_stabilization_s,
            )

    def _prepare(self) -> None:
        """Check the target, connect, and collect the evidence of simulated GPUs seen so far."""
        o = self.o
        o.out_dir.mkdir(parents=True, exist_ok=True)
        self.evidence = check_target(o.target)
        self.connect()
        self.evidence += simulation_evidence(self.prometheus, [])
        if self.evidence:
            log.info("the GPUs behind this target are SIMULATED: %s", "; ".join(self.evidence))
            self.simulator = simulator_profile(o.target.url)

    def _sampler(
        self,
        started: float,
        stats: StatsHistoryReader | None = None,
        tokens: TokensReader | None = None,
    ) -> Sampler:
        """The sampler for a run that started at `started` (locust's readers only for locust runs)."""
        return Sampler(
            namespace=self.o.target.namespace,
            load_started_at=started,
            prometheus=self.prometheus,
            cluster=self.cluster,
            hpa=self.hpa,
            stats=stats,
            tokens=tokens,
            metric=self.o.metric,
        )

    def _recorder(
        self,
        sampler: Sampler,
        samples: list[TimelineSample],
        on_sample: OnSample | None,
        fill: Callable[[TimelineSample], None] | None = None,
    ) -> Callable[[Phase], TimelineSample]:
        """record(phase): take a sample, let `fill` add what the load knows, keep and emit it."""
        timeline_path = self.o.out_dir / "timeline.jsonl"
        timeline_path.unlink(missing_ok=True)

        def record(phase: Phase) -> TimelineSample:
            s = sampler.sample(phase)
            if fill is not None:
                fill(s)
            samples.append(s)
            with timeline_path.open("a") as f:
                f.write(s.model_dump_json() + "\n")
            if on_sample is not None:
                on_sample(s)
            return s

        return record

    def execute_open(self, on_sample: OnSample | None) -> RunReport:
        """Open-loop load: Poisson arrivals at the rate shape's rate, one record per request."""
        o = self.o
        if o.rate_shape is None:
            raise ConfigError(
                "--rate-shape", "the open-loop mode needs a rate shape", "pass --rate-shape step"
            )
        shape = o.rate_shape
        self._prepare()
        started = time.time()
        samples: list[TimelineSample] = []
        sampler = self._sampler(started)
        slo = Slo(ttft_s=self._slo_ttft_s(), tpot_s=self._slo_tpot_s())
        done = RecordsSince()
        result: dict[str, Any] = {}
        started_load: dict[str, float] = {}

        def fill(s: TimelineSample) -> None:
            if s.phase == "load" and "t" in started_load:
                s.demand_rps = shape.demand(s.t - started_load["t"])
                s.requests = done.window(slo)

        record = self._recorder(sampler, samples, on_sample, fill)
        self._settle(record("baseline"), record)

        def drive() -> None:
            try:
                result["summary"] = run_open_loop(
                    o.target.url,
                    shape,
                    o.open_loop,
                    o.out_dir / REQUESTS_FILE,
                    slo=slo,
                    on_record=done.add,
                )
            except BaseException as exc:  # surfaced in the caller's thread
                result["error"] = exc

        thread = threading.Thread(target=drive, name="open-loop", daemon=True)
        load_started = time.time()
        started_load["t"] = load_started
        sampler.load_started_at = load_started
        for s in samples:
            s.elapsed_s = s.t - load_started
        thread.start()
        next_at = load_started + o.interval_s
        cap = shape.run_duration_s + o.open_loop.drain_limit_s + STOP_GRACE_S
        while thread.is_alive() and time.time() - load_started < cap:
            if time.time() >= next_at:
                record("load")
                next_at += o.interval_s
            time.sleep(min(0.5, max(0.05, next_at - time.time())))
        thread.join(timeout=o.open_loop.drain_limit_s + STOP_GRACE_S)
        if "error" in result:
            raise result["error"]
        summary: OpenLoopSummary = result["summary"]
        load_stopped = summary.started_at + summary.run_duration_s
        for s in samples:  # samples taken while draining are after the shape's end
            if s.phase == "load" and s.t > load_stopped:
                s.phase = "tail"
        rest = done.window(slo)  # requests that finished after the last sample: they belong to the load
        last_load = next((s for s in reversed(samples) if s.phase == "load"), None)
        if rest.finished and last_load is not None:
            last_load.requests = merge_windows(last_load.requests, rest)
        if summary.simulated:
            self.evidence.append(f"{summary.stats.simulated_responses} responses carried {SIMULATED_HEADER}")
        if summary.cap_hit:
            log.warning("the client's in-flight cap dropped %d arrivals", summary.dropped_at_cap)
        log.info("load stopped after %.0fs", load_stopped - load_started)
        before = [s.hpa.current_replicas for s in samples if s.phase == "baseline" and s.hpa]
        self.peak = max((s.hpa.desired_replicas for s in samples if s.hpa), default=None)
        self._tail(record, load_stopped, before[-1] if before else None)
        return self._report(
            samples,
            shape=ShapeInfo(
                name=shape.kind,
                path="",
                env={k: str(v) for k, v in shape.model_dump().items() if k != "kind"},
            ),
            started=started,
            load_started=load_started,
            load_stopped=load_stopped,
            exit_code=None,
            open_loop=summary,
        )

    def _slo_ttft_s(self) -> float:
        o = self.o
        return (o.slo_ttft_ms if isinstance(o, VerifyOptions) else 2000.0) / 1000

    def _slo_tpot_s(self) -> float:
        o = self.o
        return (o.slo_tpot_ms if isinstance(o, VerifyOptions) else 200.0) / 1000

    def execute(self, on_sample: OnSample | None) -> RunReport:
        o = self.o
        if o.mode == "open":
            return self.execute_open(on_sample)
        o.out_dir.mkdir(parents=True, exist_ok=True)
        env = _shape_env(o)
        shape_path = shapes.resolve_shape(o.shape)
        users_path = shapes.users_file(o.target.api)
        self._prepare()
        schedule = shapes.probe_shape(shape_path, env)
        log.info("shape: %s", shapes.summarize(schedule))
        if schedule.user_classes:
            log.warning(
                "shape file %s also defines users (%s): they will send load too",
                shape_path,
                ", ".join(schedule.user_classes),
            )
        started = time.time()
        samples: list[TimelineSample] = []
        stats = StatsHistoryReader(o.out_dir / f"{CSV_PREFIX}_stats_history.csv")
        tokens = TokensReader(o.out_dir / TOKENS_FILE)
        sampler = self._sampler(started, stats=stats, tokens=tokens)

        record = self._recorder(sampler, samples, on_sample)
        self._settle(record("baseline"), record)
        self.locust = LocustProcess(
            LocustOptions(
                host=o.target.url,
                users_file=users_path,
                shape_file=shape_path,
                out_dir=o.out_dir,
                env=env,
                web_ui=o.web_ui,
                model=o.model,
                max_tokens=o.max_tokens,
            )
        )
        load_started = self.locust.started_at
        sampler.load_started_at = load_started
        for s in samples:
            s.elapsed_s = s.t - load_started
        exited, exit_code = self._drive(self.locust, schedule, record)
        # locust exits a little after its users stop (and --web-ui lingers 5 s): its own stats say when
        # the last users ran; the CSV stamps whole seconds.
        active = [p.ts for p in stats.read() if p.users > 0]
        load_stopped = min(exited, active[-1] + 1.0) if active else exited
        final = read_final_stats(o.out_dir, exited)
        if final is not None:  # samples from the exit on carry the final totals
            stats.points.append(final)
        log.info("load stopped after %.0fs", load_stopped - load_started)
        before = [s.hpa.current_replicas for s in samples if s.phase == "baseline" and s.hpa]
        self.peak = max((s.hpa.desired_replicas for s in samples if s.hpa), default=None)
        self._tail(record, load_stopped, before[-1] if before else None)
        sampler.reattach_locust(samples)
        return self._report(
            samples,
            shape=ShapeInfo(
                name=o.shape if o.shape in shapes.bundled_shapes() else shape_path.name,
                path=str(shape_path),
                env=env,
            ),
            started=started,
            load_started=load_started,
            load_stopped=load_stopped,
            exit_code=exit_code,
        )

    def _drive(
        self, locust: LocustProcess, schedule: shapes.ShapeSchedule, record: Callable[[Phase], TimelineSample]
    ) -> tuple[float, int]:
        """Sample until locust ends (or runs past the shape's end). Returns (load stopped at, exit code)."""
        o = self.o
        cap = (schedule.duration_s + STOP_GRACE_S) if schedule.duration_s is not None else o.max_load_s
        next_at = locust.started_at + o.interval_s
        while locust.poll() is None:
            now = time.time()
            if now - locust.started_at > cap:
                log.warning(
                    "the load ran %.0fs, past the shape's end: stopping locust", now - locust.started_at
                )
                stopped = time.time()
                return stopped, locust.stop()
            if now >= next_at:
                record("load")
                next_at += o.interval_s
            time.sleep(min(0.5, max(0.05, next_at - time.time())))
        locust.check_failed()
        return locust.exited_at or time.time(), locust.stop()

    def _settle(self, first: TimelineSample, record: Callable[[Phase], TimelineSample]) -> None:
        """verify-scaleup starts from a steady state: the HPA reads its metric and is at its minimum.

        Waits (sampling, phase baseline) up to settle_timeout_s; after that the load starts anyway and
        the rules judge what they see (the wait is in the timeline either way).
        """
        o, hpa = self.o, self.hpa
        if not isinstance(o, VerifyOptions) or hpa is None:
            return
        deadline = time.time() + o.settle_timeout_s
        s = first
        while True:
            why = _not_settled(s, hpa)
            if why is None:
                return
            if time.time() >= deadline:
                log.warning("starting the load although %s (waited %.0fs)", why, o.settle_timeout_s)
                return
            log.info("waiting before the load: %s", why)
            time.sleep(o.interval_s)
            s = record("baseline")

    def _tail_bound(self, peak: int | None = None) -> float:
        """How long to watch after the load: the given bound, or what the HPA's own behavior allows."""
        o = self.o
        if isinstance(o, VerifyOptions) and not o.skip_scale_down:
            if o.scale_down_within_s is not None:
                return o.scale_down_within_s
            if self.hpa is None:
                return 300 + SCALE_DOWN_SLACK_S
            bound = scale_down_bound_s(self.hpa, peak or self.hpa.max_replicas, o.metric_lag_s)
            return bound if bound is not None else o.observe_after_s
        return o.observe_after_s

    def _tail(
        self, record: Callable[[Phase], TimelineSample], load_stopped: float, initial: int | None
    ) -> None:
        """Sample after the load (at least once: the final totals), until replicas are back at
        `initial` (verify) or the bound passes."""
        bound = self._tail_bound(self.peak)
        watch = isinstance(self.o, VerifyOptions) and initial is not None
        if bound > 0:
            log.info("watching for up to %.0fs after the load", bound)
        while True:
            s = record("tail")
            back = (
                s.hpa is not None
                and initial is not None
                and max(s.hpa.current_replicas, s.hpa.desired_replicas) <= initial
            )
            if watch and back:
                log.info("replicas back at %d: done watching", initial)
                return
            if time.time() - load_stopped + self.o.interval_s > bound:
                return
            time.sleep(self.o.interval_s)

    def _report(
        self,
        samples: list[TimelineSample],
        *,
        shape: ShapeInfo,
        started: float,
        load_started: float,
        load_stopped: float,
        exit_code: int | None,
        open_loop: OpenLoopSummary | None = None,
    ) -> RunReport:
        o = self.o
        seen_nodes = {n.name: n for s in samples for n in s.nodes}
        self.evidence += simulation_evidence(None, list(seen_nodes.values()))
        run = RunInfo(
            tool_version=__version__,
            started_at=_iso(started),
            ended_at=_iso(time.time()),
            load_started_at=load_started,
            load_stopped_at=load_stopped,
            interval_s=o.interval_s,
            target=o.target,
            shape=shape,
            out_dir=str(o.out_dir),
            locust_exit_code=exit_code,
            mode=o.mode,
            open_loop=open_loop.model_dump(mode="json", exclude={"stats"}) if open_loop else None,
            simulator=self.simulator,
            timing_profile=o.timing_profile,
        )
        if isinstance(o, VerifyOptions) and self.hpa is not None:
            criteria = Criteria(
                **o.bounds(),
                scale_down_within_s=None if o.skip_scale_down else self._tail_bound(self.peak),
            )
            m, checks = evaluate(samples, self.hpa, criteria, load_stopped)
            report = RunReport(
                **m.model_dump(),
                kind="verify-scaleup",
                passed=all(c.passed for c in checks),
                reasons=[c.detail for c in checks if not c.passed],
                simulated=o.target.simulated or bool(self.evidence),
                simulated_evidence=self.evidence,
                checks=checks,
                criteria=criteria,
                hpa=self.hpa,
                run=run,
                timeline=samples,
            )
        else:
            m = measure(samples, self.hpa, load_stopped)
            report = RunReport(
                **m.model_dump(),
                kind="loadtest",
                simulated=o.target.simulated or bool(self.evidence),
                simulated_evidence=self.evidence,
                hpa=self.hpa,
                run=run,
                timeline=samples,
            )
        if any(s.nodes for s in samples):
            try:
                report.cost = cost_for_report(report, source=f"run {o.out_dir}")
            except ConfigError as exc:
                log.warning("no cost report: %s", exc)
        (o.out_dir / "report.json").write_text(report.model_dump_json(indent=2) + "\n")
        write_html(report, o.out_dir / "report.html")
        log.info("report: %s", o.out_dir / "report.html")
        return report


def _not_settled(s: TimelineSample, hpa: HpaSpec) -> str | None:
    """Why the HPA is not in a state to start a scale-up test from, or None."""
    if s.hpa is None:
        return "the HPA could not be read"
    failures = metric_failures([s])
    if failures:
        return f"the HPA has no metric yet ({failures[0][1]})"
    if s.hpa.current_value is None:
        return f"the HPA shows no current value of {hpa.metric_name} yet"
    if s.hpa.current_replicas != hpa.min_replicas or s.hpa.desired_replicas != hpa.min_replicas:
        return (
            f"the HPA is at {s.hpa.current_replicas} (desired {s.hpa.desired_replicas}) replicas, "
            f"not its minimum {hpa.min_replicas}"
        )
    return None


def _run(options: LoadTestOptions, verify: bool, on_sample: OnSample | None) -> RunReport:
    run = _Run(options, verify)
    try:
        return run.execute(on_sample)
    finally:
        run.close()


def run_loadtest(options: LoadTestOptions, on_sample: OnSample | None = None) -> RunReport:
    """A load test with a timeline and reports, no verdict (report.passed is None)."""
    return _run(options, verify=False, on_sample=on_sample)


def with_capacity(o: VerifyOptions) -> VerifyOptions:
    """Fill in capacity_rps (from a calibration file, or measured now) and the default rate shape."""
    update: dict[str, Any] = {}
    if o.capacity_rps is None and o.calibration_file is not None:
        cal = load_calibration(o.calibration_file)
        update["capacity_rps"] = cal.capacity_rps
        update["capacity_source"] = f", calibrated in {o.calibration_file}"
    elif o.capacity_rps is None and o.calibrate and not o.skip_overprovision:
        profile = simulator_profile_name(o.target)
        if profile is None:
            raise ConfigError(
                "--capacity-rps",
                "over-provisioning is judged against a measured per-replica capacity, and this target "
                "is not the GPU simulator (whose replicas can be calibrated beside the cluster)",
                "run `gpu-inference calibrate --target <one replica's URL>` and pass --calibration "
                "FILE or --capacity-rps, or --skip-overprovision",
            )
        slo = Slo(ttft_s=o.slo_ttft_ms / 1000, tpot_s=o.slo_tpot_ms / 1000)
        log.info(
            "calibrating one SIMULATED %s replica at TTFT <= %gs, TPOT <= %gs",
            profile,
            slo.ttft_s,
            slo.tpot_s,
        )
        options = CalibrationOptions.quick(o.min_slo_attainment, o.open_loop, o.out_dir / "calibration")
        cal = calibrate_simulated(profile, slo, options)
        log.info("calibration:\n%s", cal.table())
        if cal.capacity_rps is None:
            raise ConfigError("calibration", "no rate met the SLO", "relax --slo-ttft-ms/--slo-tpot-ms")
        update["capacity_rps"] = cal.capacity_rps
        update["capacity_source"] = f", SIMULATED replica calibrated in {o.out_dir / 'calibration-fine'}"
    capacity = update.get("capacity_rps", o.capacity_rps)
    if o.mode == "open" and o.rate_shape is None:
        if capacity is None:
            raise ConfigError(
                "--rate-shape",
                "no rate shape and no capacity to size one from",
                "pass --rate-shape and --rate",
            )
        peak = round(o.peak_factor * capacity, 1)
        # A ramp (like a morning's traffic) from a fifth of one replica's capacity to the peak over
        # half the run, then the peak: the autoscaler can add capacity before the first replica
        # saturates. A step (--rate-shape step) also measures the cold start's backlog.
        update["rate_shape"] = RampRate(
            base_rate=round(0.2 * capacity, 1),
            peak_rate=peak,
            duration_s=o.open_duration_s,
            rise_fraction=0.5,
        )
        log.info("open-loop load: a ramp to %.1f req/s (%.1fx the measured capacity)", peak, o.peak_factor)
    return o.model_copy(update=update) if update else o


def simulator_profile_name(target: Target, timeout_s: float = 10.0) -> str | None:
    """The GPU simulator's profile behind `target` (its X-GPU-Simulator header), or None for real GPUs."""
    url = target.url + HEALTH_ROUTES[target.api]
    try:
        r = requests.get(url, timeout=timeout_s)
    except requests.RequestException:
        return None
    if r.headers.get(SIMULATED_HEADER, "").lower() != "true":
        return None
    return r.headers.get(PROFILE_HEADER) or None


def load_calibration(path: Path) -> Calibration:
    """A calibration.json written by `gpu-inference calibrate`."""
    cal = read_json_model(
        path,
        Calibration,
        setting="--calibration",
        name="calibration.json",
        missing_fix="pass the calibration.json of a calibrate run",
        invalid_fix="rerun calibrate",
    )
    if cal.capacity_rps is None:
        raise ConfigError("--calibration", f"{path} found no rate that met the SLO", "calibrate again")
    return cal


def run_verify_scaleup(options: VerifyOptions, on_sample: OnSample | None = None) -> RunReport:
    """A load test judged by the scale-up rules (gpu_inference.domain.verdict); report.passed is set.

    Without a per-replica capacity it is measured first (see with_capacity).
    """
    return _run(with_capacity(options), verify=True, on_sample=on_sample)
