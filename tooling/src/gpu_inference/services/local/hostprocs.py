"""Host processes of the local cluster (Prometheus, prometheus-adapter, the GPU simulator,
the node group scaler): started detached with a pid file and a log file in the cluster's
work directory, and stopped by `local down` even if the process that started them is gone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from gpu_inference.adapters.process import find_binary
from gpu_inference.errors import GpuInferenceError

log = logging.getLogger(__name__)


class HostProcessError(GpuInferenceError):
    """A host process of the local cluster failed to start or died."""


def _pid_file(workdir: Path, name: str) -> Path:
    return workdir / "pids" / f"{name}.pid"


def _cmdline_file(workdir: Path, name: str) -> Path:
    return workdir / "pids" / f"{name}.cmdline"


def log_file(workdir: Path, name: str) -> Path:
    return workdir / "logs" / f"{name}.log"


def start(
    workdir: Path,
    name: str,
    binary: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    python_module: bool = False,
) -> int:
    """Start `binary args...` detached; returns its pid. `binary` is looked up like any tool,
    unless python_module is set, in which case this interpreter runs `-m binary`."""
    stop(workdir, name)
    exe = (
        [os.environ.get("GPU_INFERENCE_PYTHON", _python()), "-m", binary]
        if python_module
        else [find_binary(binary)]
    )
    logf = log_file(workdir, name)
    logf.parent.mkdir(parents=True, exist_ok=True)
    _pid_file(workdir, name).parent.mkdir(parents=True, exist_ok=True)
    with logf.open("ab") as out:
        proc = subprocess.Popen(
            [*exe, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            cwd=workdir,
        )
    _cmdline_file(workdir, name).write_text(json.dumps([*exe, *args]))
    _pid_file(workdir, name).write_text(str(proc.pid))
    log.debug("started %s (pid %d): %s", name, proc.pid, " ".join([*exe, *args]))
    time.sleep(0.3)
    if proc.poll() is not None:
        raise HostProcessError(f"{name} exited at once with {proc.returncode}; see {logf}:\n{tail(logf)}")
    return proc.pid


def _python() -> str:
    import sys

    return sys.executable


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def pid_of(workdir: Path, name: str) -> int | None:
    pf = _pid_file(workdir, name)
    try:
        pid = int(pf.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def running(workdir: Path, name: str) -> bool:
    return pid_of(workdir, name) is not None


def cmdline(pid: int) -> list[str] | None:
    """The command line of process `pid` (Linux /proc), or None where it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def is_ours(workdir: Path, name: str, pid: int) -> bool:
    """Is `pid` still the process the pid file was written for? A pid is reused after its process
    exits, so `local down` checks the command line before signalling: the one recorded at start
    for processes this package started, else (kwokctl's own pid files) one naming the work directory."""
    actual = cmdline(pid)
    if actual is None:
        # No /proc on this system: nothing to check against. Otherwise the process is gone.
        return not Path("/proc/self").exists()
    recorded_file = _cmdline_file(workdir, name)
    if recorded_file.is_file():
        try:
            recorded = json.loads(recorded_file.read_text())
        except ValueError:
            recorded = None
        if isinstance(recorded, list):
            return actual == [str(a) for a in recorded]
    return str(workdir.resolve()) in " ".join(actual) or str(workdir) in " ".join(actual)


def stop(workdir: Path, name: str, grace_s: float = 10.0) -> bool:
    """SIGTERM the process group, SIGKILL after `grace_s`. Returns True if something was stopped."""
    pid = pid_of(workdir, name)
    pf = _pid_file(workdir, name)
    if pid is None:
        pf.unlink(missing_ok=True)
        _cmdline_file(workdir, name).unlink(missing_ok=True)
        return False
    if not is_ours(workdir, name, pid):
        log.warning(
            "%s: pid %d now belongs to another process (%s); not signalling it",
            name,
            pid,
            " ".join(cmdline(pid) or ["?"])[:200],
        )
        pf.unlink(missing_ok=True)
        _cmdline_file(workdir, name).unlink(missing_ok=True)
        return False
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            break
        time.sleep(0.1)
    else:
        log.warning("%s (pid %d) ignored SIGTERM for %.0fs; killing it", name, pid, grace_s)
        _signal(pid, signal.SIGKILL)
    pf.unlink(missing_ok=True)
    _cmdline_file(workdir, name).unlink(missing_ok=True)
    log.debug("stopped %s (pid %d)", name, pid)
    return True


def _signal(pid: int, sig: signal.Signals) -> None:
    """Signal the process group this process leads (ours are started in a new session),
    or the process alone when it leads none (e.g. kwokctl's)."""
    try:
        leads_group = os.getpgid(pid) == pid
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        if leads_group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def names(workdir: Path) -> list[str]:
    d = workdir / "pids"
    return sorted(p.stem for p in d.glob("*.pid")) if d.is_dir() else []


def stop_all(workdir: Path) -> list[str]:
    stopped = [n for n in names(workdir) if stop(workdir, n)]
    return stopped
