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
import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection

from gpu_inference.domain.requests import Slo
from gpu_inference.errors import ConfigError
from gpu_inference.gpusim.engines import make_engine
from gpu_inference.gpusim.model import ProfileKind
from gpu_inference.gpusim.params import DEFAULT_PROFILES
from gpu_inference.gpusim.server import EngineRunner, Listener, Replica, make_replica_app
from gpu_inference.services.loadtest.calibrate import Calibration, CalibrationOptions, calibrate

log = logging.getLogger(__name__)


def _serve(profile: str, model_name: str, conn: Connection) -> None:
    """Child process: one simulator replica on 127.0.0.1; sends its URL, serves until told to stop."""
    kind = ProfileKind(profile)
    prof = DEFAULT_PROFILES[kind]

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
        conn.send(f"http://{listener.address}")
        try:
            # The parent closes its end (or exits): recv then fails and the replica stops.
            await loop.run_in_executor(None, _wait_closed, conn)
        finally:
            runner.close()
            await listener.stop()

    asyncio.run(serve())


def _wait_closed(conn: Connection) -> None:
    try:
        conn.recv()
    except EOFError:
        return


@contextmanager
def simulated_replica(profile: str, model_name: str = "sim/model") -> Iterator[str]:
    """One replica of the GPU simulator on 127.0.0.1 (a free port) for the block; yields its URL.

    It runs in a process of its own, as each pod's replica does in the local cluster, so the load
    client does not share an interpreter (and its lock) with the server it measures.
    """
    try:
        ProfileKind(profile)
    except ValueError:
        known = ", ".join(k.value for k in ProfileKind)
        raise ConfigError(
            "simulator profile", f"unknown profile '{profile}'", f"use one of {known}"
        ) from None
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=_serve, args=(profile, model_name, child), name="calibration-replica", daemon=True
    )
    proc.start()
    child.close()
    try:
        try:
            if not parent.poll(60):
                raise EOFError("no answer in 60 s")
            url = str(parent.recv())
        except EOFError as exc:
            raise ConfigError(
                "calibration", f"the simulated replica did not start ({exc or 'it exited'})", "see the log"
            ) from None
        log.info("calibration replica (SIMULATED, profile %s) at %s, pid %s", profile, url, proc.pid)
        yield url
    finally:
        parent.close()
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)


def calibrate_simulated(
    profile: str, slo: Slo, options: CalibrationOptions, *, refine: bool = True
) -> Calibration:
    """The capacity at `slo` of one simulated replica with `profile`, measured by open-loop steps.

    With `refine`, the climb's bracket (within its growth factor) is narrowed by three finer steps
    (x1.19, x1.41, x1.68 of the first estimate); their records go to `<out_dir>-fine`.
    """
    with simulated_replica(profile) as url:
        cal = calibrate(url, slo, options)
        if refine and cal.capacity_rps is not None:
            fine = [round(cal.capacity_rps * f, 2) for f in (1.19, 1.41, 1.68)]
            out = options.out_dir.with_name(options.out_dir.name + "-fine")
            cal = calibrate(
                url, slo, options.model_copy(update={"rates": [cal.capacity_rps, *fine], "out_dir": out})
            )
        return cal
