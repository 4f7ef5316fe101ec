"""`python -m gpu_inference.gpusim`: the GPU simulator process that `local up` runs.

Everything it serves is simulated and says so (gauges `gpu_inference_simulated 1` and
`gpusim_info{profile=...} 1`, headers `X-GPU-Simulated: true` and `X-GPU-Simulator: <profile>`,
"SIMULATED" in /sim/status, the profile and its parameters at GET /gpusim/profile). Exits 0 on
SIGTERM/SIGINT after closing every listener; exits 2 on bad settings with a message naming the
option. It is a program of its own and sets up its own logging (plain lines on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpu_inference.errors import ConfigError
from gpu_inference.gpusim.model import DEFAULT_PROFILES, ProfileKind
from gpu_inference.gpusim.pods import (
    DEFAULT_DCGM_PORT,
    DEFAULT_DCGM_SELECTOR,
    DEFAULT_INFERENCE_PORT,
    DEFAULT_INFERENCE_SELECTOR,
    AddressMode,
    ClusterWatcher,
    WatchConfig,
)
from gpu_inference.gpusim.server import DispatchMode
from gpu_inference.gpusim.simulator import DEFAULT_MODEL_NAME, SimConfig, Simulator

log = logging.getLogger("gpu_inference.gpusim")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_QUIET_LOGGERS = ("urllib3", "kubernetes", "asyncio", "aiohttp.access")


def configure_logging(verbose: bool = False, log_file: str | None = None) -> None:
    """The simulator's logging: plain lines on stderr (info, or debug with -v), and every debug
    line in `log_file` when given. Replaces whatever handlers the root logger had."""
    level = logging.DEBUG if verbose else logging.INFO
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.DEBUG if log_file else level)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter(LOG_FORMAT))
    stderr.setLevel(level)
    root.addHandler(stderr)
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file)
        fh.setFormatter(logging.Formatter(LOG_FORMAT))
        fh.setLevel(logging.DEBUG)
        root.addHandler(fh)
    for noisy in _QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gpu_inference.gpusim",
        description="Simulated GPUs for the local cluster: vLLM API per Ready inference pod, "
        "dcgm-exporter metrics per exporter pod, and a front door that plays the Service. "
        "All figures are SIMULATED.",
    )
    p.add_argument("--kubeconfig", required=True, help="kubeconfig of the local cluster")
    p.add_argument(
        "--namespace", default="default", help="namespace of the inference pods (default: default)"
    )
    p.add_argument(
        "--selector", default=DEFAULT_INFERENCE_SELECTOR, help="label selector of the inference pods"
    )
    p.add_argument(
        "--dcgm-selector", default=DEFAULT_DCGM_SELECTOR, help="label selector of the DCGM exporter pods"
    )
    p.add_argument("--dcgm-namespace", default="", help="namespace of the DCGM exporter pods (default: all)")
    p.add_argument(
        "--front-door", required=True, metavar="HOST:PORT", help="where the simulated Service listens"
    )
    p.add_argument(
        "--dispatch", choices=[m.value for m in DispatchMode], default=DispatchMode.ROUND_ROBIN.value
    )
    p.add_argument("--profile", choices=[k.value for k in ProfileKind], default=ProfileKind.CLASSIC.value)
    p.add_argument(
        "--capacity", type=float, help="tokens/s per GPU with every batch slot busy (profile default)"
    )
    p.add_argument(
        "--max-batch", type=int, help="sequences on the GPU at once (classic 1; llm: max_num_seqs, 256)"
    )
    p.add_argument(
        "--single-stream",
        type=float,
        help="llm: tokens/s of one sequence alone (default: from the step model)",
    )
    p.add_argument(
        "--max-num-batched-tokens", type=int, help="llm: token budget of one step (default 2048, vLLM's)"
    )
    p.add_argument("--max-model-len", type=int, help="longest prompt+completion in tokens (default 4096)")
    p.add_argument(
        "--collect-interval", type=float, default=1.0, help="DCGM collection interval in s (default 1)"
    )
    p.add_argument("--address-mode", choices=[m.value for m in AddressMode], default=AddressMode.POD_IP.value)
    p.add_argument(
        "--allocate-cidr", default="127.1.0.0/16", help="loopback range for --address-mode allocate"
    )
    p.add_argument(
        "--inference-port", type=int, default=DEFAULT_INFERENCE_PORT, help="if the pod declares none"
    )
    p.add_argument(
        "--dcgm-port", type=int, default=DEFAULT_DCGM_PORT, help="if the exporter pod declares none"
    )
    p.add_argument(
        "--model-name", default=DEFAULT_MODEL_NAME, help="served model name if the pod's args name none"
    )
    p.add_argument("--hostname-label", choices=["Hostname", "hostname"], default="Hostname")
    p.add_argument("--pid-file", type=Path, help="write the process id here (removed on exit)")
    p.add_argument("--log-file", help="also log (at debug level) to this file")
    p.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    return p


def parse_host_port(value: str, option: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(option, f"{value!r} is not HOST:PORT", "pass e.g. 127.0.0.1:18000")
    return host, int(port)


def config_from_args(ns: argparse.Namespace) -> tuple[SimConfig, WatchConfig]:
    kind = ProfileKind(ns.profile)
    profile = DEFAULT_PROFILES[kind].with_overrides(
        capacity_tps=ns.capacity,
        max_batch=ns.max_batch,
        single_stream_tps=ns.single_stream if kind is ProfileKind.LLM else None,
        max_model_len=ns.max_model_len,
        max_num_batched_tokens=ns.max_num_batched_tokens if kind is ProfileKind.LLM else None,
        source="command line",
    )
    if kind is ProfileKind.CLASSIC:
        for opt, val in (
            ("--single-stream", ns.single_stream),
            ("--max-num-batched-tokens", ns.max_num_batched_tokens),
        ):
            if val is not None:
                raise ConfigError(opt, "applies to --profile llm only", "drop it or use --profile llm")
    profile.validate()
    if not ns.collect_interval > 0:
        raise ConfigError("--collect-interval", f"must be > 0 s, got {ns.collect_interval}", "pass e.g. 1.0")
    host, port = parse_host_port(ns.front_door, "--front-door")
    for opt, val in (("--inference-port", ns.inference_port), ("--dcgm-port", ns.dcgm_port)):
        if not 1 <= val <= 65535:
            raise ConfigError(opt, f"{val} is not a TCP port", "pass a port in 1..65535")
    if not Path(ns.kubeconfig).is_file():
        raise ConfigError(
            "--kubeconfig", f"{ns.kubeconfig} does not exist", "pass the local cluster's kubeconfig"
        )
    sim = SimConfig(
        profile=profile,
        front_door_host=host,
        front_door_port=port,
        collect_interval_s=ns.collect_interval,
        dispatch=DispatchMode(ns.dispatch),
        address_mode=AddressMode(ns.address_mode),
        allocate_cidr=ns.allocate_cidr,
        inference_port=ns.inference_port,
        dcgm_port=ns.dcgm_port,
        model_name=ns.model_name,
        hostname_label=ns.hostname_label,
    )
    watch = WatchConfig(
        kubeconfig=ns.kubeconfig,
        namespace=ns.namespace,
        selector=ns.selector,
        dcgm_namespace=ns.dcgm_namespace,
        dcgm_selector=ns.dcgm_selector,
    )
    return sim, watch


async def run(sim_cfg: SimConfig, watch_cfg: WatchConfig) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sim = Simulator(sim_cfg)

    def deliver(kind: str, event: str, obj: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(sim.on_watch_event, kind, event, obj)

    watcher = ClusterWatcher(watch_cfg, deliver)
    if sim_cfg.address_mode is AddressMode.ALLOCATE:
        sim.annotator = watcher.annotate_pod
    await sim.start()
    log.warning("GPU simulator running: every GPU figure it serves is SIMULATED")
    watcher.start()
    try:
        await stop.wait()
        log.info("signal received, shutting down")
    finally:
        await sim.stop()
        watcher.stop()


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        sim_cfg, watch_cfg = config_from_args(ns)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(verbose=ns.verbose, log_file=ns.log_file)
    pid_file: Path | None = ns.pid_file
    if pid_file is not None:
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{os.getpid()}\n")
    try:
        asyncio.run(run(sim_cfg, watch_cfg))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if pid_file is not None:
            with contextlib.suppress(FileNotFoundError):
                pid_file.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
