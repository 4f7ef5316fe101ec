"""Servers on loopback for the GPU simulator's HTTP tests: one replica, one front door."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from gpu_inference.gpusim.model import Profile, make_engine
from gpu_inference.gpusim.server import (
    DispatchMode,
    EngineRunner,
    FrontDoor,
    Listener,
    Replica,
    make_replica_app,
)
from gpu_inference.gpusim.simulator import SimConfig


async def start_replica(
    host: str, profile: Profile, model: str, key: str = "ns/pod"
) -> tuple[Listener, Replica]:
    """A replica of `profile` serving `model` on `host` (a free port); the caller stops the listener."""
    loop = asyncio.get_running_loop()
    runner = EngineRunner(make_engine(profile, loop.time()), loop.time)
    replica = Replica(
        key=key, model_name=model, max_model_len=profile.max_model_len, runner=runner, clock=loop.time
    )
    listener = Listener(make_replica_app(replica), host, 0)
    await listener.start()
    return listener, replica


async def stop_replica(listener: Listener, replica: Replica) -> None:
    """Stop serving, then close the replica's engine runner (fails whatever still waits on it)."""
    await listener.stop()
    replica.runner.close()


@contextlib.asynccontextmanager
async def serving(started: Awaitable[tuple[Listener, Replica]]) -> AsyncIterator[tuple[Listener, Replica]]:
    """The replica `started` brings up (``serving(start_replica(host, ...))``); stopped on the way out."""
    listener, replica = await started
    try:
        yield listener, replica
    finally:
        await stop_replica(listener, replica)


def hand_driven(profile: Profile, front_door_host: str, **settings: Any) -> SimConfig:
    """A whole simulator whose front door takes a free port on `front_door_host` and that collects
    and reconciles only when the test calls it to (the periodic loops wait an hour)."""
    return SimConfig(
        profile=profile,
        front_door_host=front_door_host,
        front_door_port=0,
        collect_interval_s=3600,
        reconcile_period_s=3600,
        **settings,
    )


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The OpenAI ``usage`` object vLLM returns for these token counts."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": None,
    }


def replica_starter(model: str, default: Profile) -> Callable[..., Awaitable[tuple[Listener, Replica]]]:
    """`start_replica` for one test module: ``start(host, profile=default, key="ns/pod")`` serving `model`."""

    async def start(host: str, profile: Profile = default, key: str = "ns/pod") -> tuple[Listener, Replica]:
        return await start_replica(host, profile, model, key)

    return start


@contextlib.asynccontextmanager
async def front_door(
    host: str, mode: DispatchMode, status: Callable[[], dict[str, Any]] = dict, **kwargs: Any
) -> AsyncIterator[tuple[FrontDoor, Listener]]:
    """A started front door listening on `host`; stopped (listener, then the door) on the way out."""
    fd = FrontDoor(mode, status, **kwargs)
    await fd.start()
    try:
        front = Listener(fd.app(), host, 0)
        await front.start()
        try:
            yield fd, front
        finally:
            await front.stop()
    finally:
        await fd.close()
