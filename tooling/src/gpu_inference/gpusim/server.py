"""The simulator's HTTP servers (aiohttp): per-replica vLLM API, per-node DCGM exporter, front door.

* `make_replica_app`: what one inference pod serves on <podIP>:8000: GET /health, GET /v1/models,
  POST /v1/completions, POST /v1/chat/completions (whole responses, or server-sent events with
  ``stream: true``), GET /metrics (vLLM's server metrics), GET /gpusim/profile.
  Requests are really delayed by the modelled time (`EngineRunner`): streamed tokens leave when
  the model produces them, so a client measures time to first token and inter-token latency.
* `make_exporter_app`: what one DCGM exporter pod serves on <podIP>:9400: GET /metrics.
* `FrontDoor`: the Service. Proxies every request to one Ready replica (round-robin or
  least-outstanding), streaming bodies through, 503 when none is Ready; GET /sim/status,
  /sim/metrics and /gpusim/profile describe the simulation.

Every response carries the headers ``X-GPU-Simulated: true`` and ``X-GPU-Simulator: <profile>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp
from aiohttp import web

from gpu_inference.gpusim import openai_api
from gpu_inference.gpusim.dcgm import simulated_marker
from gpu_inference.gpusim.lengths import OutputLengths
from gpu_inference.gpusim.model import Finished, SimEngine, Window
from gpu_inference.gpusim.params import Profile, ProfileKind, profile_document
from gpu_inference.gpusim.vllm_metrics import VllmMetrics

log = logging.getLogger(__name__)

SIMULATED_HEADER = "X-GPU-Simulated"
PROFILE_HEADER = "X-GPU-Simulator"
PROFILE_PATH = "/gpusim/profile"
PROM_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: While a client streams, the runner looks for new tokens at least this often (seconds).
STREAM_TICK_S = 0.01


class ReplicaGoneError(Exception):
    """The replica stopped while a request was in it."""


# --------------------------------------------------------------------------------------------
# Engine on the event loop
# --------------------------------------------------------------------------------------------


class EngineRunner:
    """Drives an engine on the event loop's clock: each request's future resolves when the
    model says it finishes (a timer per next engine event, no polling), and streaming callers
    are told about each new token when the model produces it."""

    def __init__(self, engine: SimEngine, clock: Callable[[], float]) -> None:
        self.engine = engine
        self._clock = clock
        self._futures: dict[str, asyncio.Future[Finished]] = {}
        self._watchers: dict[str, tuple[Callable[[int], None], list[int]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed = False

    @property
    def in_flight(self) -> int:
        return len(self._futures)

    async def run(
        self, prompt_tokens: int, completion_tokens: int, on_tokens: Callable[[int], None] | None = None
    ) -> Finished:
        """Submit one sequence and wait for it; `on_tokens(n)` is called as its count grows."""
        if self._closed:
            raise ReplicaGoneError("replica stopped")
        rid = uuid.uuid4().hex
        fut: asyncio.Future[Finished] = asyncio.get_running_loop().create_future()
        self.engine.submit(rid, prompt_tokens, completion_tokens, self._clock())
        self._futures[rid] = fut
        if on_tokens is not None:
            self._watchers[rid] = (on_tokens, [0])
        self._settle()
        try:
            return await fut
        except asyncio.CancelledError:
            self._watchers.pop(rid, None)
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
        self._watchers.clear()

    def _settle(self) -> None:
        finished = self.engine.pop_finished()
        for rid, (callback, seen) in list(self._watchers.items()):
            n = self.engine.tokens_out(rid)
            if n > seen[0]:
                seen[0] = n
                callback(n)
        for done in finished:
            self._watchers.pop(done.rid, None)
            fut = self._futures.pop(done.rid, None)
            if fut is not None and not fut.done():
                fut.set_result(done)
        if self._closed:
            return
        when = self.engine.next_event_time()
        if self._watchers and self.engine.tokens_between_events:
            tick = self._clock() + STREAM_TICK_S
            when = tick if when is None else min(when, tick)
        if when == self._timer_at and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = None
        if when is not None:
            # the engine clock and loop.time() are the same clock (see Simulator)
            self._timer = asyncio.get_running_loop().call_at(when, self._on_timer)
            self._timer_at = when

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.sync()


# --------------------------------------------------------------------------------------------
# One inference replica
# --------------------------------------------------------------------------------------------


@dataclass
class Replica:
    """The server state of one inference pod."""

    key: str
    model_name: str
    max_model_len: int
    runner: EngineRunner
    clock: Callable[[], float]
    profile: Profile | None = None
    metrics: VllmMetrics = field(init=False)
    lengths: OutputLengths = field(init=False)

    def __post_init__(self) -> None:
        if self.profile is None:
            self.profile = self.runner.engine.profile
        self.metrics = VllmMetrics(
            self.model_name, self.profile, lambda: self.runner.engine, self.runner.sync
        )
        self.lengths = OutputLengths(self.profile, self.key)

    @property
    def registry(self) -> Any:
        return self.metrics.registry

    @property
    def profile_name(self) -> str:
        assert self.profile is not None
        return self.profile.name or str(self.profile.kind)

    def default_max_tokens(self, kind: str) -> int:
        assert self.profile is not None
        if kind == "completion":
            return self.profile.default_completion_max_tokens
        if self.profile.kind is ProfileKind.LLM:
            return self.max_model_len  # vLLM: what the context leaves
        return self.profile.default_chat_max_tokens


def _error(exc: openai_api.ApiError) -> web.Response:
    return web.json_response(exc.payload(), status=exc.status)


def simulated_headers(profile_name: str) -> Any:
    """Middleware that stamps X-GPU-Simulated and X-GPU-Simulator on every response."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            exc.headers[SIMULATED_HEADER] = "true"
            exc.headers[PROFILE_HEADER] = profile_name
            raise
        if not resp.prepared:
            resp.headers[SIMULATED_HEADER] = "true"
            resp.headers[PROFILE_HEADER] = profile_name
        return resp

    return middleware


def _stamp(resp: web.StreamResponse, profile_name: str) -> None:
    resp.headers[SIMULATED_HEADER] = "true"
    resp.headers[PROFILE_HEADER] = profile_name


MAX_BODY_BYTES = 64 * 1024**2


async def _stream(
    request: web.Request, replica: Replica, req: openai_api.InferenceRequest
) -> web.StreamResponse:
    """Answer with server-sent events, one chunk per batch of new tokens, as the model makes them."""
    rid = uuid.uuid4().hex
    created = int(time.time())
    queue: asyncio.Queue[tuple[int, int, Finished | BaseException | None]] = asyncio.Queue()

    async def one(i: int, s: openai_api.Sequence) -> None:
        try:
            done = await replica.runner.run(
                s.prompt_tokens, s.completion_tokens, lambda n: queue.put_nowait((i, n, None))
            )
        except BaseException as exc:
            queue.put_nowait((i, -1, exc))
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        queue.put_nowait((i, done.completion_tokens, done))

    tasks = [asyncio.create_task(one(i, s)) for i, s in enumerate(req.sequences)]
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    _stamp(resp, replica.profile_name)
    try:
        await resp.prepare(request)
        if req.kind == "chat":
            for s in req.sequences:
                await resp.write(openai_api.sse(openai_api.chat_role_chunk(req, rid, created, s)))
        sent = [0] * len(req.sequences)
        open_seqs = len(req.sequences)
        while open_seqs:
            i, n, outcome = await queue.get()
            seq = req.sequences[i]
            if isinstance(outcome, BaseException):
                err = openai_api.ApiError(503, "the replica is shutting down", "ServiceUnavailableError")
                await resp.write(openai_api.sse(err.payload()))
                open_seqs = 0
                break
            finished = outcome is not None
            if n > sent[i] or finished:
                chunk = openai_api.stream_chunk(
                    req, rid, created, seq=seq, first=sent[i], last=max(n, sent[i]), finished=finished
                )
                await resp.write(openai_api.sse(chunk))
                sent[i] = max(n, sent[i])
            if isinstance(outcome, Finished):
                replica.metrics.observe(outcome, seq.finish_reason)
                open_seqs -= 1
        if req.include_usage:
            await resp.write(openai_api.sse(openai_api.usage_chunk(req, rid, created)))
        await resp.write(openai_api.SSE_DONE)
        await resp.write_eof()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    return resp


def make_replica_app(replica: Replica) -> web.Application:
    app = web.Application(
        middlewares=[simulated_headers(replica.profile_name)], client_max_size=MAX_BODY_BYTES
    )

    async def health(_: web.Request) -> web.Response:
        return web.Response(status=200)

    async def models(_: web.Request) -> web.Response:
        return web.json_response(
            openai_api.models_response(replica.model_name, int(time.time()), replica.max_model_len)
        )

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=replica.metrics.render(), headers={"Content-Type": PROM_CONTENT_TYPE})

    async def profile(_: web.Request) -> web.Response:
        assert replica.profile is not None
        doc = profile_document(replica.profile)
        doc["replica"] = {"pod": replica.key, "model_name": replica.model_name}
        return web.json_response(doc)

    async def infer(request: web.Request, kind: str) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(openai_api.ApiError(400, "request body is not valid JSON"))
        try:
            parse = openai_api.parse_completion if kind == "completion" else openai_api.parse_chat
            req = parse(body, replica.model_name, replica.max_model_len, replica.default_max_tokens(kind))
            req = openai_api.with_lengths(req, replica.lengths.length)
            if req.stream:
                return await _stream(request, replica, req)
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
        for seq, done in zip(req.sequences, results, strict=True):
            replica.metrics.observe(done, seq.finish_reason)
        rid = uuid.uuid4().hex
        build = openai_api.completion_response if kind == "completion" else openai_api.chat_response
        return web.json_response(build(req, rid, int(time.time())))

    async def completions(request: web.Request) -> web.StreamResponse:
        return await infer(request, "completion")

    async def chat(request: web.Request) -> web.StreamResponse:
        return await infer(request, "chat")

    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/metrics", metrics)
    app.router.add_get(PROFILE_PATH, profile)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/chat/completions", chat)
    return app


# --------------------------------------------------------------------------------------------
# One DCGM exporter
# --------------------------------------------------------------------------------------------


def make_exporter_app(render: Callable[[], str], profile_name: str = "") -> web.Application:
    app = web.Application(middlewares=[simulated_headers(profile_name)])

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

    def __init__(
        self,
        mode: DispatchMode,
        status: Callable[[], dict[str, Any]],
        profile_doc: Callable[[], dict[str, Any]] | None = None,
        profile_name: str = "",
    ) -> None:
        self.mode = mode
        self._status = status
        self._profile_doc = profile_doc
        self.profile_name = profile_name
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
        app = web.Application(
            middlewares=[simulated_headers(self.profile_name)], client_max_size=MAX_BODY_BYTES
        )

        async def status(_: web.Request) -> web.Response:
            return web.json_response(self._status())

        async def profile(_: web.Request) -> web.Response:
            doc = self._profile_doc() if self._profile_doc else self._status().get("profile", {})
            return web.json_response(doc)

        async def sim_metrics(_: web.Request) -> web.Response:
            return web.Response(text=self.metrics_text(), headers={"Content-Type": PROM_CONTENT_TYPE})

        app.router.add_get("/sim/status", status)
        app.router.add_get("/sim/metrics", sim_metrics)
        app.router.add_get(PROFILE_PATH, profile)
        app.router.add_route("*", "/{tail:.*}", self._proxy)
        return app

    async def _proxy(self, request: web.Request) -> web.StreamResponse:
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
        out: web.StreamResponse | None = None
        try:
            body = await request.read()
            headers = {k: v for k, v in request.headers.items() if k.lower() in _HOP_HEADERS}
            async with self._session.request(
                request.method, ep.url + str(request.rel_url), data=body, headers=headers
            ) as resp:
                ctype = resp.headers.get("Content-Type", "application/octet-stream")
                if not ctype.startswith("text/event-stream"):
                    payload = await resp.read()
                    return web.Response(status=resp.status, body=payload, headers={"Content-Type": ctype})
                # a stream: pass each chunk on as it arrives, so clients see the tokens' timing
                out = web.StreamResponse(
                    status=resp.status, headers={"Content-Type": ctype, "Cache-Control": "no-cache"}
                )
                _stamp(out, self.profile_name)
                await out.prepare(request)
                async for chunk in resp.content.iter_any():
                    await out.write(chunk)
                await out.write_eof()
                return out
        except (aiohttp.ClientError, OSError) as exc:
            self.upstream_errors += 1
            if out is not None:  # the stream had started: all we can do is end it
                with contextlib.suppress(Exception):
                    await out.write_eof()
                return out
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
