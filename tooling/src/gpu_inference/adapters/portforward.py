"""`kubectl port-forward` as a context manager: a cluster Service on a loopback port for a block.

kubectl is used here because it is the one port-forward that also follows a Service to a ready
pod and keeps the tunnel up; the Python client only forwards to a named pod.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gpu_inference.adapters import process
from gpu_inference.errors import ToolFailedError

log = logging.getLogger(__name__)


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_forward_args(
    kubeconfig: Path, context: str | None, namespace: str, service: str, *, local_port: int, remote_port: int
) -> list[str]:
    """kubectl's arguments (without `kubectl`) for a Service's port on 127.0.0.1:local_port.

    `service` is a Service name, or `pod/NAME` for one pod.
    """
    ctx = ["--context", context] if context else []
    return [
        "--kubeconfig",
        str(kubeconfig),
        *ctx,
        "-n",
        namespace,
        "port-forward",
        "--address",
        "127.0.0.1",
        service if "/" in service else f"svc/{service}",
        f"{local_port}:{remote_port}",
    ]


@contextmanager
def port_forward(
    kubeconfig: Path,
    context: str | None,
    namespace: str,
    service: str,
    remote_port: int,
    *,
    timeout_s: float = 30.0,
) -> Iterator[str]:
    """Forward svc/`service`:`remote_port` to a free loopback port; yields http://127.0.0.1:<port>."""
    kubectl = process.find_binary("kubectl")
    local = free_port()
    args = port_forward_args(
        kubeconfig, context, namespace, service, local_port=local, remote_port=remote_port
    )
    proc = subprocess.Popen(
        [str(kubectl), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                raise ToolFailedError("kubectl", args, proc.returncode or 1, out[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", local), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise ToolFailedError(
                        "kubectl",
                        args,
                        1,
                        f"the port-forward to svc/{service} did not open in {timeout_s:g}s",
                    ) from None
                time.sleep(0.3)
        log.info("port-forward: svc/%s/%s:%d at 127.0.0.1:%d", namespace, service, remote_port, local)
        yield f"http://127.0.0.1:{local}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
