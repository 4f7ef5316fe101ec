"""Host ports and host processes: TIME_WAIT is not "in use"; a reused pid is never signalled."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_testkit import free_port, free_ports

from gpu_inference.errors import ConfigError
from gpu_inference.services.local import hostprocs
from gpu_inference.services.local.cluster import LocalCluster, port_free
from gpu_inference.services.local.config import LocalClusterConfig

pytestmark = pytest.mark.unit


def _time_wait_port() -> int:
    """A loopback port whose last connection the server side closed first: it sits in TIME_WAIT."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = int(server.getsockname()[1])
    cli = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()  # the server side closes first -> its end goes to TIME_WAIT
    time.sleep(0.05)
    cli.close()
    server.close()
    return port


def _in_time_wait(port: int) -> bool:
    out = subprocess.run(["ss", "-tan", "state", "time-wait"], capture_output=True, text=True, check=False)
    return f"127.0.0.1:{port} " in out.stdout or out.returncode != 0


def _plain_bind_fails(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def test_port_in_time_wait_counts_as_free() -> None:
    port = _time_wait_port()
    assert _in_time_wait(port)
    assert _plain_bind_fails(port), "the old check (bind without SO_REUSEADDR) would fail here"
    assert port_free(port)


@pytest.fixture
def listener() -> Iterator[int]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen()
    try:
        yield int(s.getsockname()[1])
    finally:
        s.close()


def test_port_something_listens_on_is_in_use(listener: int) -> None:
    assert not port_free(listener)
    others = free_ports("front_door_port", "adapter_port")
    cluster = LocalCluster(LocalClusterConfig(name="p", prometheus_port=listener, **others))
    with pytest.raises(ConfigError) as exc:
        cluster.check_ports()
    assert exc.value.setting == "--prometheus-port"
    assert f"127.0.0.1:{listener} is already in use" in exc.value.problem


def test_same_port_twice_is_bad_input() -> None:
    port = free_port()
    same = {"front_door_port": port, "prometheus_port": port}
    cfg = LocalClusterConfig(name="p", **same, **free_ports("adapter_port"))
    cluster = LocalCluster(cfg)
    with pytest.raises(ConfigError, match="also --front-door-port"):
        cluster.check_ports()


def test_up_after_down_finds_its_ports_free() -> None:
    port = _time_wait_port()
    cfg = LocalClusterConfig(name="p", prometheus_port=port, **free_ports("front_door_port", "adapter_port"))
    LocalCluster(cfg).check_ports()


def _server(workdir: Path) -> int:
    """A harmless host process started the way the local cluster starts its own."""
    return hostprocs.start(workdir, "web", "http.server", ["--bind", "127.0.0.1", "0"], python_module=True)


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """A process that is not the cluster's: a pid file may come to point at one like it."""
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_stop_ends_the_process_it_started(tmp_path: Path) -> None:
    workdir = tmp_path / "c"
    pid = _server(workdir)
    assert hostprocs.is_ours(workdir, "web", pid)
    assert hostprocs.stop(workdir, "web", grace_s=5)
    assert not hostprocs.running(workdir, "web")
    assert not (workdir / "pids" / "web.pid").exists()


def test_stop_leaves_a_process_that_reused_the_pid_alone(
    tmp_path: Path, stranger: subprocess.Popen[bytes]
) -> None:
    workdir = tmp_path / "c"
    pid = _server(workdir)
    try:
        # The cluster's process is gone and its pid now belongs to someone else.
        (workdir / "pids" / "web.pid").write_text(str(stranger.pid))
        assert not hostprocs.is_ours(workdir, "web", stranger.pid)
        assert hostprocs.stop(workdir, "web", grace_s=2) is False
        assert stranger.poll() is None, "local down signalled a process that was not the cluster's"
        assert not (workdir / "pids" / "web.pid").exists()
    finally:
        (workdir / "pids" / "web.pid").write_text(str(pid))
        hostprocs.stop(workdir, "web", grace_s=5)


def test_pid_file_without_a_recorded_command_must_name_the_workdir(
    tmp_path: Path, stranger: subprocess.Popen[bytes]
) -> None:
    workdir = tmp_path / "kwok"
    (workdir / "pids").mkdir(parents=True)
    own = subprocess.Popen([sys.executable, "-c", "import time, sys; time.sleep(60)", str(workdir / "etcd")])
    try:
        wait = time.monotonic() + 5
        while "-c" not in (hostprocs.cmdline(own.pid) or []) and time.monotonic() < wait:
            time.sleep(0.02)  # until the child has exec'd
        assert hostprocs.is_ours(workdir, "etcd", own.pid)
        assert not hostprocs.is_ours(workdir, "etcd", stranger.pid)
    finally:
        own.kill()
        own.wait()
