"""Calibrate the per-replica capacity of a SIMULATED service: one replica of the GPU simulator,
with the same profile as the cluster's pods, started on 127.0.0.1 beside the cluster.

The cluster's own replicas are not loaded for this: load on one of them would move the HPA
before the run it is meant to judge. The simulator's replicas are all the same model, so a
replica of it outside the cluster measures the same capacity. Real GPUs are calibrated with
`gpu-inference calibrate --target <one replica>` (docs/loadtest.md, Calibration).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from gpu_inference.domain.requests import Slo
from gpu_inference.errors import ConfigError
from gpu_inference.gpusim.engines import make_engine
from gpu_inference.gpusim.model import ProfileKind
from gpu_inference.gpusim.params import DEFAULT_PROFILES
from gpu_inference.gpusim.server import EngineRunner, Listener, Replica, make_replica_app
from gpu_inference.services.loadtest.calibrate import Calibration, CalibrationOptions, calibrate

log = logging.getLogger(__name__)


@contextmanager
def simulated_replica(profile: str, model_name: str = "sim/model") -> Iterator[str]:
    """One replica of the GPU simulator on 127.0.0.1 (a free port) for the block; yields its URL."""
    try:
        kind = ProfileKind(profile)
    except ValueError:
        raise ConfigError(
            "simulator profile",
            f"unknown profile '{profile}'",
            f"use one of {', '.join(k.value for k in ProfileKind)}",
        ) from None
    prof = DEFAULT_PROFILES[kind]
    ready = threading.Event()
    stop: dict[str, asyncio.Event] = {}
    address: dict[str, str] = {}
    failure: dict[str, BaseException] = {}

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        runner = EngineRunner(make_engine(prof, loop.time()), loop.time)
        replica = Replica(
            key="calibration/replica-0",
            model_name=model_name,
            max_model_len=prof.max_model_len,
            runner=runner,
            clock=loop.time,
            profile=prof,
        )
        listener = Listener(make_replica_app(replica), "127.0.0.1", 0)
        await listener.start()
        stop["event"] = asyncio.Event()
        address["url"] = f"http://{listener.address}"
        ready.set()
        try:
            await stop["event"].wait()
        finally:
            runner.close()
            await listener.stop()

    loop = asyncio.new_event_loop()

    def main() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # reported to the caller
            failure["error"] = exc
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=main, name="calibration-replica", daemon=True)
    thread.start()
    if not ready.wait(30) or "error" in failure:
        raise ConfigError(
            "calibration", f"the simulated replica did not start: {failure.get('error')}", "see the log"
        )
    log.info("calibration replica (SIMULATED, profile %s) at %s", profile, address["url"])
    try:
        yield address["url"]
    finally:
        loop.call_soon_threadsafe(stop["event"].set)
        thread.join(timeout=10)


def calibrate_simulated(profile: str, slo: Slo, options: CalibrationOptions) -> Calibration:
    """The capacity at `slo` of one simulated replica with `profile`, measured by open-loop steps."""
    with simulated_replica(profile) as url:
        return calibrate(url, slo, options)
