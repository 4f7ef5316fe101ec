"""Open-loop load: requests sent at Poisson arrival times from a rate shape, whatever the server does.

Locust's users are a closed loop: each waits for its answer before the next request, so a slow
server slows the load down and queues never grow past the number of users. Here arrivals are
scheduled in advance (`iter_poisson_arrivals`, seeded) and sent on time; a slow server meets the
same offered load and its queue grows, as with real independent clients.

Each request is an OpenAI-compatible streamed completion (``/v1/chat/completions`` or
``/v1/completions`` with ``stream: true`` and ``stream_options.include_usage``), read as
server-sent events to time the first token and every chunk. One `RequestRecord` per request is
appended to a JSON-lines file as it finishes.

Protection of the host running the load: at most `max_in_flight` requests are open at once; an
arrival that finds the cap full is not sent and is recorded as `dropped` (a miss), and the cap
being hit is logged and counted in the summary. The shape's end stops new arrivals; requests
still open `drain_s` later are cancelled and recorded as `cancelled`.

Only loopback URLs are accepted unless `allow_remote` is set.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import itertools
import json
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, ParamSpec, TypeVar
from urllib.parse import urlsplit

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from gpu_inference.domain.rate_shapes import RateShape, iter_poisson_arrivals
from gpu_inference.domain.requests import Outcome, RecordStats, RequestRecord, Slo, record_stats
from gpu_inference.errors import ConfigError

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

#: Response headers by which the GPU simulator names itself (gpu_inference.gpusim.server).
SIMULATED_HEADER = "X-GPU-Simulated"
PROFILE_HEADER = "X-GPU-Simulator"

#: A send this late after its due time means the client, not the server, set the pace.
MAX_SEND_LAG_S = 0.1

#: Words of four UTF-8 bytes (a leading space and three letters): one token each in common BPE
#: vocabularies, and one token each for the simulator's count of ceil(bytes / 4).
_PROMPT_WORDS = (
    " the",
    " and",
    " for",
    " are",
    " but",
    " not",
    " you",
    " all",
    " any",
    " can",
    " was",
    " one",
)


class OpenLoopOptions(BaseModel):
    """How requests are made and how the host is protected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: chat: POST /v1/chat/completions; completions: POST /v1/completions.
    api: Literal["chat", "completions"] = "chat"
    #: The model to request; None asks GET /v1/models and takes the first id.
    model: str | None = None
    #: Prompt length in tokens (approximately, for real tokenizers).
    prompt_tokens: int = Field(128, ge=1)
    max_tokens: int = Field(64, ge=1)
    #: Send vLLM's ignore_eos so every reply has max_tokens tokens (a vLLM extension).
    ignore_eos: bool = False
    #: RNG seed of the arrival schedule.
    seed: int = 0
    #: Whole-request limit (send to last byte); a request over it is recorded as a timeout.
    request_timeout_s: float = Field(60.0, gt=0)
    #: Most requests open at once; arrivals beyond it are dropped and recorded.
    max_in_flight: int = Field(256, ge=1)
    #: After the shape ends, how long open requests may run before being cancelled
    #: (None: request_timeout_s, so no request is cut short).
    drain_s: float | None = Field(None, ge=0)
    #: Allow a target that is not a loopback address.
    allow_remote: bool = False
    #: Sent as "Authorization: Bearer <key>" when set.
    api_key: SecretStr | None = None

    @property
    def drain_limit_s(self) -> float:
        return self.request_timeout_s if self.drain_s is None else self.drain_s


class OpenLoopSummary(BaseModel):
    """What an open-loop run did: the schedule, the client's limits, and the records' figures."""

    model_config = ConfigDict(frozen=True)

    url: str
    endpoint: str
    model: str
    shape: RateShape
    seed: int
    records_path: str
    #: Wall-clock (Unix) time of the run's t = 0.
    started_at: float
    run_duration_s: float
    #: From t = 0 to the last record written (includes draining).
    wall_s: float
    #: Integral of the shape's rate: the mean number of arrivals.
    expected_arrivals: float
    #: Arrivals the seeded schedule drew.
    scheduled: int
    max_in_flight: int
    peak_in_flight: int
    #: Arrivals not sent because max_in_flight requests were open (recorded as dropped).
    dropped_at_cap: int
    cancelled_at_deadline: int
    stats: RecordStats
    #: At least one response named the GPU simulator: label every figure SIMULATED.
    simulated: bool

    @property
    def cap_hit(self) -> bool:
        return self.dropped_at_cap > 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url(url: str, allow_remote: bool) -> str:
    """The API root (no trailing / or /v1), checked: http(s), and loopback unless allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("url", f"'{url}' is not an http(s) URL", "give e.g. http://127.0.0.1:8000")
    if not allow_remote and not _is_loopback(parts.hostname):
        raise ConfigError(
            "url",
            f"{parts.hostname} is not a loopback address",
            "open-loop load goes to 127.0.0.1/localhost unless allow_remote is set",
        )
    root = url.rstrip("/")
    return root.removesuffix("/v1")


def build_prompt(tokens: int) -> str:
    """A prompt of about `tokens` tokens."""
    return "Repeat:" + "".join(_PROMPT_WORDS[i % len(_PROMPT_WORDS)] for i in range(max(0, tokens - 2)))


def request_body(options: OpenLoopOptions, model: str) -> dict[str, Any]:
    """The JSON body of one streamed request."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": options.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    prompt = build_prompt(options.prompt_tokens)
    if options.api == "chat":
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    if options.ignore_eos:
        body["ignore_eos"] = True
    return body


def chunk_text(payload: dict[str, Any]) -> str:
    """The generated text a streamed chunk carries (completions: text; chat: delta.content)."""
    out = []
    choices = payload.get("choices")
    if not isinstance(choices, list):
        return ""
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        text = choice.get("text")
        if text is None and isinstance(choice.get("delta"), dict):
            text = choice["delta"].get("content")
        if isinstance(text, str):
            out.append(text)
    return "".join(out)


class StreamError(Exception):
    """The server answered 200 but the event stream broke its protocol."""


@dataclass
class _Attempt:
    """One arrival: when it was due and sent, and what its request has seen so far (loop clock)."""

    rid: int
    scheduled: float
    rate: float
    start: float
    sent_at: float
    status: int | None = None
    token_times: list[float] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    response_bytes: int = 0
    simulated: bool = False
    profile: str | None = None
    outcome: Outcome = "ok"
    error: str | None = None

    def record(self, end: float | None) -> RequestRecord:
        """The request's record: TTFT, inter-token gaps and TPOT from the token times."""
        times = self.token_times
        source: Literal["usage", "chunks"] | None = None
        completion = self.completion_tokens
        if completion is not None:
            source = "usage"
        elif times:
            completion, source = len(times), "chunks"
        tpot = None
        if completion is not None and completion > 1 and len(times) >= 1:
            tpot = (times[-1] - times[0]) / (completion - 1)
        return RequestRecord(
            id=self.rid,
            scheduled_s=self.scheduled,
            target_rate=self.rate,
            start_s=self.start,
            sent_at=self.sent_at,
            ttft_s=times[0] - self.start if times else None,
            itl_s=[b - a for a, b in itertools.pairwise(times)],
            tpot_s=tpot,
            end_s=end,
            status=self.status,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=completion,
            tokens_source=source,
            response_bytes=self.response_bytes,
            outcome=self.outcome,
            error=self.error,
            simulated=self.simulated,
            simulator_profile=self.profile,
        )


def _usage_count(usage: dict[str, Any], key: str) -> int | None:
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


async def read_event_stream(
    resp: aiohttp.ClientResponse, progress: _Attempt, clock: Callable[[], float]
) -> None:
    """Consume an OpenAI-style SSE stream, stamping each chunk with content; raise StreamError."""
    done = False
    async for raw in resp.content:
        progress.response_bytes += len(raw)
        line = raw.strip()
        if not line or line.startswith(b":") or not line.startswith(b"data:"):
            continue
        now = clock()
        data = line[5:].strip()
        if data == b"[DONE]":
            done = True
            break
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise StreamError(f"chunk is not JSON: {data[:80]!r}") from exc
        if not isinstance(payload, dict):
            raise StreamError(f"chunk is not a JSON object: {data[:80]!r}")
        if "error" in payload:
            err = payload["error"]
            message = err.get("message") if isinstance(err, dict) else err
            raise StreamError(f"error in stream: {str(message)[:200]}")
        usage = payload.get("usage")
        if isinstance(usage, dict):
            progress.prompt_tokens = _usage_count(usage, "prompt_tokens")
            progress.completion_tokens = _usage_count(usage, "completion_tokens")
        if chunk_text(payload):
            progress.token_times.append(now)
    if not done:
        raise StreamError("stream ended without data: [DONE]")
    if not progress.token_times:
        raise StreamError("stream carried no generated text")


class _Engine:
    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        endpoint: str,
        body: dict[str, Any],
        options: OpenLoopOptions,
        sink: IO[str],
        on_record: Callable[[RequestRecord], None] | None,
    ) -> None:
        self.session = session
        self.endpoint = endpoint
        self.body = body
        self.options = options
        self.sink = sink
        self.on_record = on_record
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        self.wall0 = time.time()
        self.records: list[RequestRecord] = []
        self.in_flight: set[asyncio.Task[None]] = set()
        self.peak_in_flight = 0
        self.dropped_at_cap = 0
        self.headers = {"Accept": "text/event-stream"}
        if options.api_key is not None:
            self.headers["Authorization"] = f"Bearer {options.api_key.get_secret_value()}"

    def now(self) -> float:
        return self.loop.time() - self.t0

    def write(self, record: RequestRecord) -> None:
        self.records.append(record)
        self.sink.write(record.model_dump_json() + "\n")
        self.sink.flush()
        if self.on_record is not None:
            self.on_record(record)

    def drop(self, rid: int, scheduled: float, rate: float) -> None:
        if self.dropped_at_cap == 0:
            log.warning(
                "open-loop: %d requests in flight (max_in_flight): arrival %d not sent and recorded as "
                "dropped; raise max_in_flight or lower the rate",
                self.options.max_in_flight,
                rid,
            )
        self.dropped_at_cap += 1
        error = f"not sent: {self.options.max_in_flight} requests in flight (max_in_flight)"
        # never sent: it "starts" when it was due
        dropped = _Attempt(rid, scheduled, rate, start=scheduled, sent_at=self.wall0 + scheduled)
        dropped.outcome, dropped.error = "dropped", error
        self.write(dropped.record(end=None))

    def send(self, rid: int, scheduled: float, rate: float) -> None:
        task = asyncio.create_task(self.one(rid, scheduled, rate))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)
        self.peak_in_flight = max(self.peak_in_flight, len(self.in_flight))

    async def one(self, rid: int, scheduled: float, rate: float) -> None:
        p = _Attempt(rid, scheduled, rate, self.now(), time.time())
        cancelled = False
        try:
            async with asyncio.timeout(self.options.request_timeout_s):
                headers = {**self.headers, "X-Request-Id": f"openloop-{self.options.seed}-{rid}"}
                async with self.session.post(self.endpoint, json=self.body, headers=headers) as resp:
                    p.status = resp.status
                    p.simulated = resp.headers.get(SIMULATED_HEADER, "").lower() == "true"
                    p.profile = resp.headers.get(PROFILE_HEADER)
                    if resp.status != 200:
                        text = (await resp.content.read(300)).decode(errors="replace")
                        p.outcome, p.error = "http_error", f"HTTP {resp.status}: {text.strip()[:200]}"
                    else:
                        await read_event_stream(resp, p, self.now)
        except TimeoutError:
            p.outcome, p.error = "timeout", f"no complete reply within {self.options.request_timeout_s:g}s"
        except asyncio.CancelledError:
            cancelled = True
            p.outcome, p.error = "cancelled", "still open at the run's deadline (drain_s)"
        except StreamError as exc:
            p.outcome, p.error = "stream_error", str(exc)
        except aiohttp.ClientConnectionError as exc:
            p.outcome = "connect_error" if p.status is None else "stream_error"
            p.error = f"{type(exc).__name__}: {exc}"[:300]
        except aiohttp.ClientError as exc:
            p.outcome, p.error = "stream_error", f"{type(exc).__name__}: {exc}"[:300]
        except Exception as exc:  # a request always leaves a record (e.g. an over-long SSE line)
            log.debug("open-loop: request %d failed unexpectedly", rid, exc_info=True)
            p.outcome, p.error = "stream_error", f"{type(exc).__name__}: {exc}"[:300]
        self.write(p.record(end=self.now()))
        if cancelled:
            raise asyncio.CancelledError

    async def run(self, shape: RateShape, seed: int) -> int:
        """Send every arrival on time; wait out the shape and the drain; return the arrivals drawn."""
        scheduled = 0
        for rid, at in enumerate(iter_poisson_arrivals(shape, seed)):
            scheduled += 1
            delay = at - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            rate = shape.demand(at)
            if len(self.in_flight) >= self.options.max_in_flight:
                self.drop(rid, at, rate)
            else:
                self.send(rid, at, rate)
        rest = shape.run_duration_s - self.now()
        if rest > 0:
            await asyncio.sleep(rest)
        if self.in_flight:
            limit = shape.run_duration_s + self.options.drain_limit_s - self.now()
            _, pending = await asyncio.wait(set(self.in_flight), timeout=max(0.0, limit))
            for task in pending:
                task.cancel()
            if pending:
                log.info("open-loop: cancelling %d requests still open at the deadline", len(pending))
                await asyncio.gather(*pending, return_exceptions=True)
        return scheduled


async def first_model(session: aiohttp.ClientSession, root: str, timeout_s: float) -> str:
    """GET /v1/models and return the first id; ConfigError if the URL does not serve it."""
    url = f"{root}/v1/models"
    try:
        async with asyncio.timeout(timeout_s), session.get(url) as resp:
            if resp.status != 200:
                raise ConfigError(
                    "url", f"GET {url} answered HTTP {resp.status}", "check the URL or give model"
                )
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise ConfigError("url", f"GET {url} failed ({type(exc).__name__}: {exc})", "check the URL") from None
    try:
        return str(body["data"][0]["id"])
    except (KeyError, IndexError, TypeError):
        raise ConfigError("url", f"GET {url} listed no model", "give the model explicitly") from None


async def run_open_loop_async(
    url: str,
    shape: RateShape,
    options: OpenLoopOptions,
    out_path: Path,
    *,
    slo: Slo | None = None,
    on_record: Callable[[RequestRecord], None] | None = None,
) -> OpenLoopSummary:
    """Run `shape` open-loop against `url`, writing one JSON line per request to out_path."""
    root = base_url(url, options.allow_remote)
    path = "/v1/chat/completions" if options.api == "chat" else "/v1/completions"
    endpoint = root + path
    out_path.parent.mkdir(parents=True, exist_ok=True)
    connector = aiohttp.TCPConnector(limit=options.max_in_flight)
    client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=options.request_timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
        model = options.model or await first_model(session, root, options.request_timeout_s)
        log.info(
            "open-loop: %s at %s, %s over %.0fs (%.0f arrivals expected), seed %d",
            model,
            endpoint,
            shape.kind,
            shape.run_duration_s,
            shape.expected_arrivals(),
            options.seed,
        )
        with out_path.open("w") as sink:
            engine = _Engine(
                session=session,
                endpoint=endpoint,
                body=request_body(options, model),
                options=options,
                sink=sink,
                on_record=on_record,
            )
            scheduled = await engine.run(shape, options.seed)
            wall = engine.now()
    stats = record_stats(engine.records, slo)
    summary = OpenLoopSummary(
        url=url,
        endpoint=endpoint,
        model=model,
        shape=shape,
        seed=options.seed,
        records_path=str(out_path),
        started_at=engine.wall0,
        run_duration_s=shape.run_duration_s,
        wall_s=wall,
        expected_arrivals=shape.expected_arrivals(),
        scheduled=scheduled,
        max_in_flight=options.max_in_flight,
        peak_in_flight=engine.peak_in_flight,
        dropped_at_cap=engine.dropped_at_cap,
        cancelled_at_deadline=stats.outcomes["cancelled"],
        stats=stats,
        simulated=stats.simulated_responses > 0,
    )
    if summary.cap_hit:
        log.warning(
            "open-loop: max_in_flight %d was reached; %d arrivals were dropped (counted as misses)",
            options.max_in_flight,
            summary.dropped_at_cap,
        )
    lag = stats.max_send_lag_s
    if lag is not None and lag > MAX_SEND_LAG_S:
        log.warning(
            "open-loop: a request left %.3fs after its due time: this host did not keep the schedule, "
            "so the load offered was below the shape (fewer or slower arrivals; see max_send_lag_s)",
            lag,
        )
    return summary


def _blocking(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """The blocking form of coroutine function `fn` (each call runs its own event loop)."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return asyncio.run(fn(*args, **kwargs))

    run.__doc__ = f"Blocking form of `{fn.__name__}` (runs its own event loop)."
    return run


#: `run_open_loop_async` for callers without an event loop.
run_open_loop = _blocking(run_open_loop_async)


def read_records(path: Path) -> list[RequestRecord]:
    """The records of a run's JSON-lines file (a torn last line, from a killed run, is skipped)."""
    records = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(RequestRecord.model_validate_json(line))
        except ValueError:
            if i == len(lines) - 1:
                log.warning("%s: last line is incomplete; skipped", path)
                continue
            raise
    return records
