"""eksctl adapter: the only place that builds eksctl command lines.

Every call is an argument list run through gpu_inference.adapters.process.run (no shell), with an
explicit timeout; failures raise ToolFailedError, a missing binary ToolNotFoundError.
Tests pass a recording `runner` (a process.Runner) or put a fake `eksctl` on PATH.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from gpu_inference.adapters import process
from gpu_inference.adapters.process import Runner, parse_version
from gpu_inference.errors import ToolFailedError

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "Install eksctl (https://eksctl.io/installation/, or `brew install eksctl`) and make sure it is on PATH; "
    "`make deploy`/`make destroy` need it, the rest of the project does not."
)

#: eksctl's own CloudFormation waits are bounded by --timeout; ours is that plus a margin.
CREATE_TIMEOUT_S = 60 * 60
DELETE_TIMEOUT_S = 60 * 60
SHORT_TIMEOUT_S = 120


LineSink = Callable[[str], None]


class Eksctl:
    """Builds and runs eksctl commands."""

    def __init__(self, runner: Runner | None = None) -> None:
        self._run: Runner = runner or process.run

    def ensure_installed(self) -> str:
        """Path of the eksctl binary; ToolNotFoundError with an install hint if missing."""
        return process.find_binary("eksctl", INSTALL_HINT)

    def _call(self, args: list[str], timeout: float) -> process.Result:
        if self._run is process.run:
            self.ensure_installed()
        result = self._run("eksctl", args, timeout=timeout)
        # eksctl reports progress on stderr; keep all of it in the log file (debug level).
        for line in (result.stdout + result.stderr).splitlines():
            log.debug("eksctl: %s", line)
        return result

    def _stream(self, args: list[str], timeout: float, on_line: LineSink | None) -> process.Result:
        """Run eksctl and hand each output line to `on_line` as it is printed (eksctl's create and
        delete run 15-25 minutes; its progress lines are the only sign of life)."""
        if on_line is None:
            return self._call(args, timeout)
        if self._run is not process.run:  # a test runner: replay its output
            result = self._call(args, timeout)
            for line in (result.stdout + result.stderr).splitlines():
                on_line(line)
            return result
        binary = self.ensure_installed()
        log.debug("run: eksctl %s", " ".join(args))
        proc = subprocess.Popen(
            [binary, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        lines: list[str] = []
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                lines.append(line)
                log.debug("eksctl: %s", line)
                on_line(line)
            code = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        output = "\n".join(lines)
        if killed.is_set():
            raise ToolFailedError("eksctl", args, None, output)
        if code != 0:
            raise ToolFailedError("eksctl", args, code, output)
        return process.Result(["eksctl", *args], code, output, "")

    def supported_kubernetes_versions(self) -> list[str]:
        """The Kubernetes versions this eksctl can create (`eksctl version -o json`)."""
        out = self._call(["version", "-o", "json"], SHORT_TIMEOUT_S).stdout
        try:
            found = json.loads(out).get("EKSServerSupportedVersions")
        except (json.JSONDecodeError, AttributeError) as exc:
            raise ToolFailedError("eksctl", ["version", "-o", "json"], 0, f"not JSON: {out!r}") from exc
        if not isinstance(found, list):
            raise ToolFailedError(
                "eksctl", ["version", "-o", "json"], 0, f"no EKSServerSupportedVersions in {out!r}"
            )
        return [str(v) for v in found]

    def version(self) -> tuple[int, int, int]:
        out = self._call(["version"], SHORT_TIMEOUT_S).stdout
        try:
            return parse_version(out)
        except ValueError as exc:
            raise ToolFailedError("eksctl", ["version"], 0, f"unexpected version output: {out!r}") from exc

    def create_cluster(
        self,
        config: Path,
        *,
        kubeconfig: Path,
        install_nvidia_plugin: bool = False,
        wait_timeout: str = "40m",
        on_line: LineSink | None = None,
    ) -> process.Result:
        """`eksctl create cluster -f CONFIG`: control plane, addons, pod identities, node groups.

        The NVIDIA device plugin is left to the chart (exactly one plugin per GPU node).
        """
        args = [
            "create",
            "cluster",
            "--config-file",
            str(config),
            f"--install-nvidia-plugin={str(install_nvidia_plugin).lower()}",
            "--kubeconfig",
            str(kubeconfig),
            "--timeout",
            wait_timeout,
        ]
        return self._stream(args, CREATE_TIMEOUT_S, on_line)

    def create_nodegroups(
        self,
        config: Path,
        *,
        include: Sequence[str],
        install_nvidia_plugin: bool = False,
        wait_timeout: str = "40m",
        on_line: LineSink | None = None,
    ) -> process.Result:
        """`eksctl create nodegroup -f CONFIG --include=...`: node groups missing from an existing cluster."""
        if not include:
            raise ValueError("include must name at least one node group")
        args = [
            "create",
            "nodegroup",
            "--config-file",
            str(config),
            "--include",
            ",".join(include),
            f"--install-nvidia-plugin={str(install_nvidia_plugin).lower()}",
            "--timeout",
            wait_timeout,
        ]
        return self._stream(args, CREATE_TIMEOUT_S, on_line)

    def write_kubeconfig(self, *, cluster: str, region: str, kubeconfig: Path) -> process.Result:
        kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        args = [
            "utils",
            "write-kubeconfig",
            "--cluster",
            cluster,
            "--region",
            region,
            "--kubeconfig",
            str(kubeconfig),
        ]
        return self._call(args, SHORT_TIMEOUT_S)

    def delete_cluster(
        self, *, cluster: str, region: str, wait_timeout: str = "40m", on_line: LineSink | None = None
    ) -> process.Result:
        """`eksctl delete cluster --wait`: without --wait eksctl exits 0 while the stack may still fail
        (eksctl#4979).

        Node-group eviction is skipped: the workloads were uninstalled first, and a
        PodDisruptionBudget must not be able to hang the teardown.
        """
        args = [
            "delete",
            "cluster",
            "--name",
            cluster,
            "--region",
            region,
            "--wait",
            "--disable-nodegroup-eviction",
            "--timeout",
            wait_timeout,
        ]
        return self._stream(args, DELETE_TIMEOUT_S, on_line)
