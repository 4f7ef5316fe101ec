"""vLLM's own server metrics (V1 engine, v0.11) for one simulated replica.

Names, types, help texts, bucket bounds and labels (``model_name``, ``engine``) follow vLLM's
``vllm/v1/metrics/loggers.py`` (PrometheusStatLogger): gauges for running/waiting requests and
KV-cache usage, counters for preemptions, prompt/generation tokens and finished requests
(``finished_reason``), histograms for time to first token, inter-token latency (and its
deprecated twin time_per_output_token), end-to-end latency and queue time. Gauges and counters
read the engine when scraped; histograms are fed from each finished request's modelled
timeline (`observe`). Beside them: ``gpu_inference_simulated 1`` and ``gpusim_info``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gpu_inference.gpusim.dcgm import SIMULATED_HELP, SIMULATED_METRIC
from gpu_inference.gpusim.model import Finished, SimEngine
from gpu_inference.gpusim.params import Profile

ENGINE_INDEX = "0"
LABELS = ["model_name", "engine"]

#: vLLM v0.11 bucket bounds (vllm/v1/metrics/loggers.py).
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)  # fmt: skip
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
               20.0, 40.0, 80.0)  # fmt: skip
REQUEST_LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0,
                           60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)  # fmt: skip
FINISH_REASONS = ("stop", "length", "abort")
INFO_METRIC = "gpusim_info"


class _EngineState(Collector):
    """Gauges and counters read from the engine at scrape time."""

    def __init__(self, engine: Callable[[], SimEngine], model_name: str, sync: Callable[[], None]) -> None:
        self._engine = engine
        self._model = model_name
        self._sync = sync

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        self._sync()
        eng = self._engine()
        labels = [self._model, ENGINE_INDEX]
        family: type[GaugeMetricFamily | CounterMetricFamily]
        for family, name, doc, value in (
            (GaugeMetricFamily, "vllm:num_requests_running", "Number of requests in model execution batches.",
             eng.running),
            (GaugeMetricFamily, "vllm:num_requests_waiting", "Number of requests waiting to be processed.",
             eng.waiting),
            (GaugeMetricFamily, "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
             eng.kv_usage),
            (CounterMetricFamily, "vllm:num_preemptions", "Cumulative number of preemption from the engine.",
             eng.num_preemptions),
            (CounterMetricFamily, "vllm:prompt_tokens", "Number of prefill tokens processed.",
             eng.prompt_tokens_total),
            (CounterMetricFamily, "vllm:generation_tokens", "Number of generation tokens processed.",
             eng.generation_tokens_total),
        ):  # fmt: skip
            metric = family(name, doc, labels=LABELS)
            metric.add_metric(labels, float(value))
            yield metric


class VllmMetrics:
    """The /metrics registry of one replica."""

    def __init__(
        self,
        model_name: str,
        profile: Profile,
        engine: Callable[[], SimEngine],
        sync: Callable[[], None] = lambda: None,
    ) -> None:
        self.model_name = model_name
        reg = CollectorRegistry(auto_describe=True)
        values = (model_name, ENGINE_INDEX)

        def hist(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, LABELS, buckets=buckets, registry=reg).labels(*values)

        self._ttft = hist(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", TTFT_BUCKETS
        )
        self._tpot = hist(
            "vllm:time_per_output_token_seconds",
            "Histogram of time per output token in seconds.DEPRECATED: Use vllm:inter_token_latency_seconds "
            "instead.",
            ITL_BUCKETS,
        )
        self._itl = hist(
            "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", ITL_BUCKETS
        )
        self._e2e = hist(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            REQUEST_LATENCY_BUCKETS,
        )
        self._queue = hist(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            REQUEST_LATENCY_BUCKETS,
        )
        success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            [*LABELS, "finished_reason"],
            registry=reg,
        )
        self._success = {r: success.labels(model_name, ENGINE_INDEX, r) for r in FINISH_REASONS}
        Gauge(SIMULATED_METRIC, SIMULATED_HELP, registry=reg).set(1)
        info = Gauge(
            INFO_METRIC,
            "The GPU simulator profile behind this endpoint (GET /gpusim/profile has its parameters).",
            ["profile", "kind", "model", "server"],
            registry=reg,
        )
        info.labels(profile.name or str(profile.kind), str(profile.kind), profile.model, profile.server).set(
            1
        )
        reg.register(_EngineState(engine, model_name, sync))
        self.registry = reg

    def observe(self, done: Finished, finish_reason: str) -> None:
        """Record one finished sequence from its modelled timeline."""
        self._ttft.observe(done.ttft_s)
        self._queue.observe(max(0.0, done.queue_s))
        self._e2e.observe(done.e2e_s)
        for gap in done.inter_token_s:
            self._itl.observe(gap)
            self._tpot.observe(gap)
        self._success.get(finish_reason, self._success["length"]).inc()

    def abort(self) -> None:
        """Count a request the client abandoned."""
        self._success["abort"].inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
