"""A bounded load generator for the integration tests: N concurrent clients send completions
to the local front door (loopback only) until stopped or until `max_seconds` pass."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import aiohttp


@dataclass
class LoadStats:
    ok: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)


class Load:
    def __init__(self, url: str, concurrency: int, max_seconds: float, max_tokens: int = 64) -> None:
        assert url.startswith(("http://127.", "http://localhost")), "load goes to loopback only"
        self.url = url.rstrip("/") + "/v1/completions"
        self.concurrency = concurrency
        self.max_seconds = max_seconds
        self.max_tokens = max_tokens
        self.stats = LoadStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _worker(self, session: aiohttp.ClientSession, deadline: float) -> None:
        body = {"model": "any", "prompt": "Say something about GPUs.", "max_tokens": self.max_tokens}
        while not self._stop.is_set() and time.monotonic() < deadline:
            start = time.monotonic()
            try:
                async with session.post(self.url, json=body) as resp:
                    await resp.read()
                    if resp.status == 200:
                        self.stats.ok += 1
                        self.stats.latencies.append(time.monotonic() - start)
                    else:
                        self.stats.errors += 1
                        await asyncio.sleep(0.2)
            except aiohttp.ClientError:
                self.stats.errors += 1
                await asyncio.sleep(0.2)

    async def _main(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(*(self._worker(session, deadline) for _ in range(self.concurrency)))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
