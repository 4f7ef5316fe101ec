"""A fake OpenAI-compatible streaming server for the open-loop tests (aiohttp, 127.0.0.1 only).

It runs in a thread with its own event loop, so the engine under test (in the test's thread)
and the server do not share a scheduler. Each request is answered from a `Plan` chosen by a
function of the request's number (from its X-Request-Id), body and X-Request-Id: status,
delay to the first token, gap between tokens, number of tokens, whether to hang, break the
stream or send an error chunk.
`slots` > 0 makes the server a queue with that many parallel slots (a slot is held from the
request's arrival to its last token), so latency grows with concurrency.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MODEL = "fake/model-1"


async def _settle(tasks: set[asyncio.Task[Any]]) -> None:
    """Wait for cancelled tasks inside the loop (gather outside a running loop needs a current one)."""
    await asyncio.gather(*tasks, return_exceptions=True)


@dataclass(frozen=True)
class Plan:
    status: int = 200
    ttft_s: float = 0.0
    itl_s: float = 0.0
    tokens: int = 4
    hang: bool = False
    error_chunk: bool = False
    omit_done: bool = False
    usage: bool = True
    simulated: bool = True
    #: Bytes of text in the first token's chunk (one SSE line); large values break line readers.
    first_chunk_bytes: int = 0


@dataclass
class Seen:
    bodies: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0
    finished: int = 0


class SseServer:
    """Start with `with SseServer(plan) as server:`; server.url is http://127.0.0.1:<port>."""

    def __init__(
        self, plan: Callable[[int, dict[str, Any], str], Plan] | Plan = Plan(), slots: int = 0
    ) -> None:
        self.plan = plan if callable(plan) else (lambda _i, _b, _r, p=plan: p)
        self.slots = slots
        self.seen = Seen()
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> SseServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake server did not start")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive(), "fake server thread did not stop"

    def _main(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            # Handlers still sleeping (a hanging plan) are cancelled, not left for the GC to report.
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(_settle(pending))
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        sem = asyncio.Semaphore(self.slots) if self.slots else None
        app = web.Application()
        app.router.add_get("/v1/models", self._models)

        async def complete(request: web.Request) -> web.StreamResponse:
            return await self._complete(request, sem)

        app.router.add_post("/v1/completions", complete)
        app.router.add_post("/v1/chat/completions", complete)
        runner = web.AppRunner(app, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    async def _models(self, _request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def _complete(self, request: web.Request, sem: asyncio.Semaphore | None) -> web.StreamResponse:
        seen = self.seen
        body = await request.json()
        # The engine numbers its requests (X-Request-Id: openloop-<seed>-<id>); plans key on that id.
        rid = request.headers.get("X-Request-Id", "")
        index = int(rid.rsplit("-", 1)[1]) if rid.startswith("openloop-") else len(seen.bodies)
        seen.bodies.append(body)
        seen.paths.append(request.path)
        seen.arrivals.append(time.monotonic())
        seen.in_flight += 1
        seen.peak_in_flight = max(seen.peak_in_flight, seen.in_flight)
        try:
            if sem is None:
                return await self._answer(request, body, self.plan(index, body, rid))
            async with sem:
                return await self._answer(request, body, self.plan(index, body, rid))
        finally:
            seen.in_flight -= 1
            seen.finished += 1

    async def _answer(self, request: web.Request, body: dict[str, Any], plan: Plan) -> web.StreamResponse:
        headers = {"X-GPU-Simulated": "true", "X-GPU-Simulator": "fake"} if plan.simulated else {}
        if plan.status != 200:
            return web.json_response(
                {"error": {"message": "fake failure", "code": plan.status}},
                status=plan.status,
                headers=headers,
            )
        chat = request.path.endswith("/chat/completions")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", **headers})
        await resp.prepare(request)
        obj = "chat.completion.chunk" if chat else "text_completion"

        async def send(payload: dict[str, Any]) -> None:
            await resp.write(b"data: " + json.dumps(payload).encode() + b"\n\n")

        if chat:
            await send(
                {"object": obj, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
            )
        if plan.hang:
            await asyncio.sleep(3600)
        await asyncio.sleep(plan.ttft_s)
        for i in range(plan.tokens):
            if i:
                await asyncio.sleep(plan.itl_s)
            if plan.error_chunk and i == 1:
                await send({"error": {"message": "fake engine failure", "code": 500}})
                await resp.write_eof()
                return resp
            text = "x" * plan.first_chunk_bytes if i == 0 and plan.first_chunk_bytes else f" w{i}"
            piece = {"index": 0, "delta": {"content": text}} if chat else {"index": 0, "text": text}
            await send({"object": obj, "choices": [piece]})
        if plan.usage:
            prompt = len(json.dumps(body)) // 4
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": plan.tokens,
                "total_tokens": prompt + plan.tokens,
            }
            await send({"object": obj, "choices": [], "usage": usage})
        if not plan.omit_done:
            await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
