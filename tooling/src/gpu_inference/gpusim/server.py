"""The simulator's HTTP servers (aiohttp): per-replica vLLM API, per-node DCGM exporter, front door.

* `make_replica_app`: what one inference pod serves on <podIP>:8000: GET /health, GET /v1/models,
  POST /v1/completions, POST /v1/chat/completions, GET /metrics (vLLM's server metrics).
  Requests are really delayed by the modelled time (`EngineRunner`), so a load test measures
  the model's latency, queueing included.
* `make_exporter_app`: what one DCGM exporter pod serves on <podIP>:9400: GET /metrics.
* `FrontDoor`: the Service. Proxies every request to one Ready replica (round-robin or
  least-outstanding), 503 when none is Ready; GET /sim/status and /sim/metrics describe the
  simulation.

Every response carries the header ``X-GPU-Simulated: true``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gpu_inference.gpusim import openai_api
from gpu_inference.gpusim.dcgm import SIMULATED_HELP, SIMULATED_METRIC, simulated_marker
from gpu_inference.gpusim.model import Engine, Finished, Window

log = logging.getLogger(__name__)

SIMULATED_HEADER = "X-GPU-Simulated"
PROM_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
E2E_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0,
               60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)  # fmt: skip
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)  # fmt: skip


class ReplicaGoneError(Exception):
    """The replica stopped while a request was in it."""


# --------------------------------------------------------------------------------------------
# Engine on the event loop
# --------------------------------------------------------------------------------------------


class EngineRunner:
    """Drives an `Engine` on the event loop's clock: each request's future resolves when the
    model says it finishes (a timer per next completion, no polling)."""

    def __init__(self, engine: Engine, clock: Callable[[], float]) -> None:
        self.engine = engine
        self._clock = clock
        self._futures: dict[str, asyncio.Future[Finished]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def in_flight(self) -> int:
        return len(self._futures)

    async def run(self, prompt_tokens: int, completion_tokens: int) -> Finished:
        if self._closed:
            raise ReplicaGoneError("replica stopped")
        rid = uuid.uuid4().hex
        fut: asyncio.Future[Finished] = asyncio.get_running_loop().create_future()
        self.engine.submit(rid, prompt_tokens, completion_tokens, self._clock())
        self._futures[rid] = fut
        self._settle()
        try:
            return await fut
        except asyncio.CancelledError:
            if self._futures.pop(rid, None) is not None and not self._closed:
                self.engine.abort(rid, self._clock())
                self._settle()
            raise

    def sync(self) -> None:
        """Bring the engine up to now (resolving whatever finished)."""
        if not self._closed:
            self.engine.advance(self._clock())
            self._settle()

    def take_window(self) -> Window:
        win = self.engine.take_window(self._clock())
        self._settle()
        return win

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for fut in self._futures.values():
            if not fut.done():
                fut.set_exception(ReplicaGoneError("replica stopped"))
        self._futures.clear()

    def _settle(self) -> None:
        for done in self.engine.pop_finished():
            fut = self._futures.pop(done.rid, None)
            if fut is not None and not fut.done():
                fut.set_result(done)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.engine.next_event_time()
        if when is not None and not self._closed:
            loop = asyncio.get_running_loop()
            # the engine clock and loop.time() are the same clock (see Simulator)
            self._timer = loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.sync()


# --------------------------------------------------------------------------------------------
# One inference replica
# --------------------------------------------------------------------------------------------


class _EngineGauges(Collector):
    def __init__(self, replica: Replica) -> None:
        self._replica = replica

    def collect(self) -> Iterator[GaugeMetricFamily]:
        r = self._replica
        r.runner.sync()
        eng = r.runner.engine
        for name, doc, value in (
            ("vllm:num_requests_running", "Number of requests in model execution batches.", eng.running),
            ("vllm:num_requests_waiting", "Number of requests waiting to be processed.", eng.waiting),
            ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", eng.kv_usage),
        ):
            g = GaugeMetricFamily(name, doc, labels=["model_name"])
            g.add_metric([r.model_name], float(value))
            yield g


@dataclass
class Replica:
    """The server state of one inference pod."""

    key: str
    model_name: str
    max_model_len: int
    runner: EngineRunner
    clock: Callable[[], float]
    registry: CollectorRegistry = field(init=False)

    def __post_init__(self) -> None:
        reg = CollectorRegistry(auto_describe=True)
        labels = ["model_name"]
        self._e2e = Histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of end to end request latency in seconds (measured on the simulator's clock).",
            labels,
            buckets=E2E_BUCKETS,
            registry=reg,
        ).labels(self.model_name)
        self._ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds (modelled: responses are not streamed).",
            labels,
            buckets=TTFT_BUCKETS,
            registry=reg,
        ).labels(self.model_name)
        self._queue = Histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            labels,
            buckets=E2E_BUCKETS,
            registry=reg,
        ).labels(self.model_name)
        self._prompt = Counter(
            "vllm:prompt_tokens", "Number of prefill tokens processed.", labels, registry=reg
        ).labels(self.model_name)
        self._generation = Counter(
            "vllm:generation_tokens", "Number of generation tokens processed.", labels, registry=reg
        ).labels(self.model_name)
        self._success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            ["model_name", "finished_reason"],
            registry=reg,
        ).labels(self.model_name, "length")
        Gauge(SIMULATED_METRIC, SIMULATED_HELP, registry=reg).set(1)
        reg.register(_EngineGauges(self))
        self.registry = reg

    def record(self, req: openai_api.InferenceRequest, results: list[Finished], e2e_s: float) -> None:
        self._e2e.observe(e2e_s)
        self._ttft.observe(min(f.ttft_s for f in results))
        self._queue.observe(min(f.queue_s for f in results))
        self._prompt.inc(req.total_prompt_tokens)
        self._generation.inc(req.total_completion_tokens)
        self._success.inc()


def _error(exc: openai_api.ApiError) -> web.Response:
    return web.json_response(exc.payload(), status=exc.status)


@web.middleware
async def _simulated_header(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        exc.headers[SIMULATED_HEADER] = "true"
        raise
    resp.headers[SIMULATED_HEADER] = "true"
    return resp


MAX_BODY_BYTES = 64 * 1024**2


def make_replica_app(replica: Replica) -> web.Application:
    app = web.Application(middlewares=[_simulated_header], client_max_size=MAX_BODY_BYTES)

    async def health(_: web.Request) -> web.Response:
        return web.Response(status=200)

    async def models(_: web.Request) -> web.Response:
        return web.json_response(
            openai_api.models_response(replica.model_name, int(time.time()), replica.max_model_len)
        )

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(replica.registry), headers={"Content-Type": PROM_CONTENT_TYPE}
        )

    async def infer(request: web.Request, kind: str) -> web.Response:
        started = replica.clock()
        try:
            body = await request.json()
        except ValueError:
            return _error(openai_api.ApiError(400, "request body is not valid JSON"))
        try:
            parse = openai_api.parse_completion if kind == "completion" else openai_api.parse_chat
            req = parse(body, replica.model_name, replica.max_model_len)
            try:
                results = await asyncio.gather(
                    *(replica.runner.run(s.prompt_tokens, s.completion_tokens) for s in req.sequences)
                )
            except ValueError as exc:
                raise openai_api.ApiError(400, str(exc)) from exc
            except ReplicaGoneError as exc:
                raise openai_api.ApiError(
                    503, "the replica is shutting down", "ServiceUnavailableError"
                ) from exc
        except openai_api.ApiError as exc:
            return _error(exc)
        replica.record(req, list(results), replica.clock() - started)
        rid = uuid.uuid4().hex
        build = openai_api.completion_response if kind == "completion" else openai_api.chat_response
        return web.json_response(build(req, rid, int(time.time())))

    async def completions(request: web.Request) -> web.Response:
        return await infer(request, "completion")

    async def chat(request: web.Request) -> web.Response:
        return await infer(request, "chat")

    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/chat/completions", chat)
    return app


# --------------------------------------------------------------------------------------------
# One DCGM exporter
# --------------------------------------------------------------------------------------------


def make_exporter_app(render: Callable[[], str]) -> web.Application:
    app = web.Application(middlewares=[_simulated_header])

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=render(), headers={"Content-Type": PROM_CONTENT_TYPE})

    async def health(_: web.Request) -> web.Response:
        return web.Response(status=200)

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)  # the exporter's readiness/liveness path
    return app


# --------------------------------------------------------------------------------------------
# The front door (the Service)
# --------------------------------------------------------------------------------------------


class DispatchMode(StrEnum):
    ROUND_ROBIN = "round-robin"
    LEAST_OUTSTANDING = "least-outstanding"


@dataclass(frozen=True)
class Endpoint:
    name: str  # namespace/pod
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


_HOP_HEADERS = {"content-type", "accept", "authorization", "x-request-id"}


class FrontDoor:
    """Spreads requests over the Ready replicas, like the Service in front of them."""

    def __init__(self, mode: DispatchMode, status: Callable[[], dict[str, Any]]) -> None:
        self.mode = mode
        self._status = status
        self._endpoints: list[Endpoint] = []
        self._outstanding: dict[str, int] = {}
        self.routed: dict[str, int] = {}
        self.unavailable = 0
        self.upstream_errors = 0
        self._rr = itertools.count()
        self._session: aiohttp.ClientSession | None = None

    @property
    def endpoints(self) -> list[Endpoint]:
        return list(self._endpoints)

    def outstanding(self, name: str) -> int:
        return self._outstanding.get(name, 0)

    def set_endpoints(self, endpoints: list[Endpoint]) -> None:
        self._endpoints = sorted(endpoints, key=lambda e: e.name)

    def pick(self) -> Endpoint | None:
        eps = self._endpoints
        if not eps:
            return None
        start = next(self._rr) % len(eps)
        rotated = eps[start:] + eps[:start]
        if self.mode is DispatchMode.ROUND_ROBIN:
            return rotated[0]
        return min(rotated, key=lambda e: self._outstanding.get(e.name, 0))

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
            auto_decompress=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def metrics_text(self) -> str:
        lines = [
            "# HELP gpu_inference_frontdoor_requests_total Requests the simulated Service sent to each pod.",
            "# TYPE gpu_inference_frontdoor_requests_total counter",
        ]
        lines += [
            f'gpu_inference_frontdoor_requests_total{{pod="{n}"}} {c}' for n, c in sorted(self.routed.items())
        ]
        lines += [
            "# HELP gpu_inference_frontdoor_unavailable_total Requests answered 503 (no Ready replica).",
            "# TYPE gpu_inference_frontdoor_unavailable_total counter",
            f"gpu_inference_frontdoor_unavailable_total {self.unavailable}",
            "# HELP gpu_inference_frontdoor_ready_replicas Ready replicas behind the simulated Service.",
            "# TYPE gpu_inference_frontdoor_ready_replicas gauge",
            f"gpu_inference_frontdoor_ready_replicas {len(self._endpoints)}",
            simulated_marker(),
        ]
        return "\n".join(lines) + "\n"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_simulated_header], client_max_size=MAX_BODY_BYTES)

        async def status(_: web.Request) -> web.Response:
            return web.json_response(self._status())

        async def sim_metrics(_: web.Request) -> web.Response:
            return web.Response(text=self.metrics_text(), headers={"Content-Type": PROM_CONTENT_TYPE})

        app.router.add_get("/sim/status", status)
        app.router.add_get("/sim/metrics", sim_metrics)
        app.router.add_route("*", "/{tail:.*}", self._proxy)
        return app

    async def _proxy(self, request: web.Request) -> web.Response:
        ep = self.pick()
        if ep is None:
            self.unavailable += 1
            return web.json_response(
                openai_api.ApiError(
                    503,
                    "no Ready inference replica behind the simulated Service (GPU simulator)",
                    "ServiceUnavailableError",
                ).payload(),
                status=503,
            )
        assert self._session is not None, "FrontDoor.start() was not called"
        self._outstanding[ep.name] = self._outstanding.get(ep.name, 0) + 1
        self.routed[ep.name] = self.routed.get(ep.name, 0) + 1
        try:
            body = await request.read()
            headers = {k: v for k, v in request.headers.items() if k.lower() in _HOP_HEADERS}
            async with self._session.request(
                request.method, ep.url + str(request.rel_url), data=body, headers=headers
            ) as resp:
                payload = await resp.read()
                out_headers = {"Content-Type": resp.headers.get("Content-Type", "application/octet-stream")}
                return web.Response(status=resp.status, body=payload, headers=out_headers)
        except (aiohttp.ClientError, OSError) as exc:
            self.upstream_errors += 1
            return web.json_response(
                openai_api.ApiError(502, f"replica {ep.name} failed: {exc}", "BadGatewayError").payload(),
                status=502,
            )
        finally:
            self._outstanding[ep.name] -= 1
            if self._outstanding[ep.name] <= 0:
                del self._outstanding[ep.name]


# --------------------------------------------------------------------------------------------
# Listening
# --------------------------------------------------------------------------------------------


class Listener:
    """One aiohttp app bound to host:port."""

    def __init__(self, app: web.Application, host: str, port: int, shutdown_timeout_s: float = 1.0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=shutdown_timeout_s
        )
        self._started = False

    async def start(self) -> None:
        await self._runner.setup()
        try:
            site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            raise
        self._started = True
        if self.port == 0:  # an ephemeral port: learn which one
            server = getattr(site, "_server", None)
            sockets = getattr(server, "sockets", None) or []
            if sockets:
                self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self._runner.cleanup()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"
