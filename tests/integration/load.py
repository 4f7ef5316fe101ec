"""A bounded, open-loop load generator for the integration tests: `rate` completions per second
to the local front door (loopback only) until stopped or until `max_seconds` pass. Open loop, so
more replicas really lower per-replica utilization (a closed loop of many clients would keep any
number of replicas busy)."""

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
    skipped: int = 0
    latencies: list[float] = field(default_factory=list)


class Load:
    def __init__(
        self, url: str, rate: float, max_seconds: float, max_in_flight: int = 200, max_tokens: int = 64
    ) -> None:
        assert url.startswith(("http://127.", "http://localhost")), "load goes to loopback only"
        self.url = url.rstrip("/") + "/v1/completions"
        self.rate = rate
        self.max_seconds = max_seconds
        self.max_in_flight = max_in_flight
        self.max_tokens = max_tokens
        self.stats = LoadStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _one(self, session: aiohttp.ClientSession, slots: asyncio.Semaphore, model: str) -> None:
        body = {"model": model, "prompt": "Say something about GPUs.", "max_tokens": self.max_tokens}
        start = time.monotonic()
        try:
            async with session.post(self.url, json=body) as resp:
                await resp.read()
                if resp.status == 200:
                    self.stats.ok += 1
                    self.stats.latencies.append(time.monotonic() - start)
                else:
                    self.stats.errors += 1
        except (aiohttp.ClientError, TimeoutError):
            self.stats.errors += 1
        finally:
            slots.release()

    async def _main(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        slots = asyncio.Semaphore(self.max_in_flight)
        tasks: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            # The served model's name, as a client would learn it.
            async with session.get(self.url.replace("/v1/completions", "/v1/models")) as resp:
                model = str((await resp.json())["data"][0]["id"])
            next_at = time.monotonic()
            while not self._stop.is_set() and time.monotonic() < deadline:
                if slots.locked():
                    self.stats.skipped += 1
                else:
                    await slots.acquire()
                    task = asyncio.create_task(self._one(session, slots, model))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                next_at += 1.0 / self.rate
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=90)
