"""`python -m gpu_inference.gpusim`: options, errors naming the option, clean exit on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gpu_inference.errors import ConfigError
from gpu_inference.gpusim.__main__ import build_parser, config_from_args, main
from gpu_inference.gpusim.model import ProfileKind
from gpu_inference.gpusim.pods import AddressMode, WatchConfig
from gpu_inference.gpusim.server import DispatchMode
from gpu_inference.gpusim.simulator import SimConfig

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster:
    server: https://127.0.0.1:1
    insecure-skip-tls-verify: true
users:
- name: nobody
  user:
    token: not-a-secret
contexts:
- name: nowhere
  context: {cluster: nowhere, user: nobody}
current-context: nowhere
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    return path


def parse(*argv: str) -> tuple[SimConfig, WatchConfig]:
    return config_from_args(build_parser().parse_args(list(argv)))


def test_options_build_the_config(kubeconfig: Path) -> None:
    sim, watch = parse(
        "--kubeconfig", str(kubeconfig), "--namespace", "serving", "--front-door", "127.0.0.1:18080",
        "--profile", "llm", "--capacity", "300", "--max-batch", "16", "--single-stream", "30",
        "--collect-interval", "0.5", "--dispatch", "least-outstanding", "--address-mode", "allocate",
        "--hostname-label", "hostname", "--dcgm-namespace", "gpu-system",
    )  # fmt: skip
    assert sim.profile.kind is ProfileKind.LLM
    assert (sim.profile.capacity_tps, sim.profile.max_batch, sim.profile.single_stream_tps) == (300, 16, 30)
    assert (sim.front_door_host, sim.front_door_port) == ("127.0.0.1", 18080)
    assert sim.dispatch is DispatchMode.LEAST_OUTSTANDING
    assert sim.address_mode is AddressMode.ALLOCATE
    assert sim.collect_interval_s == 0.5
    assert (watch.namespace, watch.dcgm_namespace) == ("serving", "gpu-system")
    assert watch.selector == "app.kubernetes.io/name=inference"
    assert watch.dcgm_selector == "app.kubernetes.io/name=dcgm-exporter"


def test_classic_is_the_default_profile(kubeconfig: Path) -> None:
    sim, _ = parse("--kubeconfig", str(kubeconfig), "--front-door", "127.0.0.1:18080")
    assert sim.profile.kind is ProfileKind.CLASSIC


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        (["--front-door", "18080"], "--front-door"),
        (["--front-door", "127.0.0.1:99999"], "--front-door"),
        (["--single-stream", "30"], "--single-stream"),
        (["--capacity", "-1"], "--capacity"),
        (["--profile", "llm", "--capacity", "50000"], "--capacity"),  # > 256 x single stream
        (["--max-num-batched-tokens", "4096"], "--max-num-batched-tokens"),  # llm only
        (["--collect-interval", "0"], "--collect-interval"),
        (["--inference-port", "0"], "--inference-port"),
    ],
)
def test_bad_options_name_the_option(kubeconfig: Path, extra: list[str], option: str) -> None:
    argv = ["--kubeconfig", str(kubeconfig), "--front-door", "127.0.0.1:18080", *extra]
    with pytest.raises(ConfigError) as err:
        parse(*argv)
    assert err.value.setting == option


def test_missing_kubeconfig_exits_2_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--kubeconfig", str(tmp_path / "absent"), "--front-door", "127.0.0.1:18080"])
    assert code == 2
    assert "--kubeconfig" in capsys.readouterr().err


def test_process_serves_and_exits_cleanly_on_sigterm(kubeconfig: Path, tmp_path: Path) -> None:
    port = free_port()
    pid_file = tmp_path / "run" / "gpusim.pid"
    log_file = tmp_path / "gpusim.log"
    cmd = [
        sys.executable, "-m", "gpu_inference.gpusim", "--kubeconfig", str(kubeconfig),
        "--front-door", f"127.0.0.1:{port}", "--pid-file", str(pid_file), "--log-file", str(log_file),
        "--profile", "llm",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ | {"NO_COLOR": "1"}
    )
    try:
        status = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/sim/status", timeout=2) as r:
                    status = json.load(r)
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        assert status is not None, "the simulator never served /sim/status"
        assert status["simulated"] is True
        assert "SIMULATED" in status["notice"]
        assert status["replicas"] == []  # no API server behind the kubeconfig: nothing to follow
        assert pid_file.read_text().strip() == str(proc.pid)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/gpusim/profile", timeout=2) as r:
            assert r.headers["X-GPU-Simulator"] == "llm"
            profile = json.load(r)
        assert profile["profile"] == "llm"
        assert profile["parameters"]["max_batch"]["value"] == 256
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
        assert err.value.code == 503
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert not pid_file.exists()
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/sim/status", timeout=2)
        assert "SIMULATED" in log_file.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_the_simulator_does_not_import_the_cli() -> None:
    """The simulator is a program of its own: importing it must not pull in the CLI package."""
    code = (
        "import sys, gpu_inference.gpusim.__main__ as m; "
        "bad = sorted(n for n in sys.modules if n.startswith('gpu_inference.cli')); "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_configure_logging_writes_stderr_and_the_log_file(tmp_path: Path) -> None:
    import logging

    from gpu_inference.gpusim.__main__ import configure_logging

    log_file = tmp_path / "logs" / "gpusim.log"
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging(verbose=False, log_file=str(log_file))
        logging.getLogger("gpu_inference.gpusim.test").debug("debug line for the file")
        for h in root.handlers:
            h.flush()
        assert "debug line for the file" in log_file.read_text()
        stderr_handlers = [h for h in root.handlers if not isinstance(h, logging.FileHandler)]
        assert [h.level for h in stderr_handlers] == [logging.INFO]
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
            h.close()
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
