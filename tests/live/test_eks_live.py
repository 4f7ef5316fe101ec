"""Live: the real thing on AWS (billable, GPU quota needed). Skipped unless `pytest --live`.

Deploys the cluster from eksctl/cluster.yaml, measures one replica's capacity (calibrate --eks),
proves scale-up with verify-scaleup --eks (the deploy record gives the kubeconfig, namespace, HPA
and Prometheus; the inference Service and Prometheus are port-forwarded to loopback), and always
destroys everything, failing if the audit finds anything billable left. Needs AWS credentials,
eksctl, and about 45 minutes; costs a few dollars.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "gpu_inference.cli.main"]
CONFIG = "eksctl/cluster.yaml"

pytestmark = [pytest.mark.live, pytest.mark.timeout(4 * 3600)]


def live_commands(out: Path) -> dict[str, list[str]]:
    """The CLI arguments the live test runs, in order (a unit test checks that each one parses)."""
    calibration = out / "calibrate"
    return {
        "deploy": ["deploy", "--config", CONFIG],
        "calibrate": ["calibrate", "--eks", "--out", str(calibration)],
        "verify": [
            "verify-scaleup",
            "--eks",
            "--calibration",
            str(calibration / "calibration.json"),
            "--ready-within",
            "15m",
            "--out",
            str(out / "verify"),
        ],
        "destroy": ["destroy", "--config", CONFIG],
    }


def _cli(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=ROOT, text=True, capture_output=True, timeout=timeout, check=False
    )


def test_deploy_verify_scaleup_destroy(tmp_path: Path) -> None:
    if not shutil.which("eksctl") or not (
        os.environ.get("AWS_PROFILE") or os.environ.get("AWS_ACCESS_KEY_ID")
    ):
        pytest.fail("live tests need eksctl on PATH and AWS credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID)")
    cmd = live_commands(tmp_path)
    try:
        deployed = _cli(cmd["deploy"], timeout=3600)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        calibrated = _cli(cmd["calibrate"], timeout=1800)
        assert calibrated.returncode == 0, calibrated.stdout + calibrated.stderr
        verified = _cli(cmd["verify"], timeout=3600)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        destroyed = _cli(cmd["destroy"], timeout=3600)
        assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
