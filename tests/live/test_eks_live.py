"""Live: the real thing on AWS (billable, GPU quota needed). Skipped unless `pytest --live`.

Deploys the cluster from eksctl/cluster.yaml with the public Ingress on, proves scale-up with
verify-scaleup against the ALB, and always destroys everything, failing if the audit finds anything
billable left. Needs AWS credentials, eksctl, and about 45 minutes; costs a few dollars.
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

pytestmark = [pytest.mark.live, pytest.mark.timeout(4 * 3600)]


def _cli(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=ROOT, text=True, capture_output=True, timeout=timeout, check=False
    )


def test_deploy_verify_scaleup_destroy(tmp_path: Path) -> None:
    if not shutil.which("eksctl") or not (
        os.environ.get("AWS_PROFILE") or os.environ.get("AWS_ACCESS_KEY_ID")
    ):
        pytest.fail("live tests need eksctl on PATH and AWS credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID)")
    values = tmp_path / "ingress.yaml"
    values.write_text("inference:\n  ingress:\n    enabled: true\n")
    try:
        deployed = _cli("deploy", "--config", "eksctl/cluster.yaml", "-f", str(values), timeout=3600)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        endpoint = next(
            line.split()[-1] for line in deployed.stdout.splitlines() if line.strip().startswith("endpoint:")
        )
        if not endpoint.startswith("http"):
            endpoint = f"http://{endpoint}"
        verified = _cli(
            "verify-scaleup", "--target", endpoint, "--out", str(tmp_path / "verify"), timeout=3600
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        destroyed = _cli("destroy", "--config", "eksctl/cluster.yaml", timeout=3600)
        assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
