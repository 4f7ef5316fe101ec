"""The verdict fails bad autoscalers on the real control plane and HPA (SIMULATED GPUs, llm profile).

Each test brings up its own local cluster with the chart configured badly on purpose, drives an
open-loop load sized from a measured per-replica capacity, and checks that verify-scaleup fails
for the right reason, with its figure.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from gpu_inference.adapters.openloop import OpenLoopOptions
from gpu_inference.domain.rate_shapes import BurstsRate, ConstantRate
from gpu_inference.domain.timeline import RunReport
from gpu_inference.services import local
from gpu_inference.services.loadtest.calibrate import Calibration
from gpu_inference.services.loadtest.runner import VerifyOptions, run_verify_scaleup
from gpu_inference.services.local.cluster import LocalCluster
from gpu_inference.services.local.config import LocalClusterConfig

from .clusters import running

pytestmark = pytest.mark.timeout(900)

NAME = "gi-verdict"
PORTS = {"front_door_port": 23100, "prometheus_port": 23190, "adapter_port": 23543}
REQUEST = OpenLoopOptions(prompt_tokens=128, max_tokens=64, max_in_flight=1024)


@pytest.fixture(scope="module")
def capacity(llm_calibration: Path) -> float:
    """One SIMULATED llm replica's requests/s at the SLO, measured once for the session."""
    cal = Calibration.model_validate_json(llm_calibration.read_text())
    assert cal.capacity_rps is not None
    return cal.capacity_rps


def _cluster(*set_values: str) -> AbstractContextManager[LocalCluster]:
    return running(LocalClusterConfig.from_options(name=NAME, profile="llm", set_values=set_values, **PORTS))


def _verify(out: Path, capacity: float, shape: object, **bounds: object) -> RunReport:
    return run_verify_scaleup(
        VerifyOptions(
            target=local.target(NAME),
            out_dir=out,
            interval_s=5.0,
            mode="open",
            rate_shape=shape,  # type: ignore[arg-type]
            open_loop=REQUEST,
            capacity_rps=capacity,
            capacity_source=", measured by the test's calibration",
            settle_timeout_s=120,
            **bounds,  # type: ignore[arg-type]
        )
    )


def _failed(report: RunReport) -> dict[str, str]:
    return {c.name: c.detail for c in report.checks if not c.passed}


def test_a_very_low_target_over_provisions(capacity: float, tmp_path: Path) -> None:
    """runningRequests target 1: half a replica's worth of load sends the HPA to maxReplicas."""
    with _cluster(
        "autoscaling.signals[0]=runningRequests", "autoscaling.signalSettings.runningRequests.target=1"
    ):
        shape = ConstantRate(rate=round(capacity * 0.5, 1), duration_s=120)
        report = _verify(tmp_path / "low-target", capacity, shape, skip_scale_down=True)
    failed = _failed(report)
    assert "gpu_hours_vs_oracle" in failed, failed
    assert report.overprovision_ratio is not None
    assert report.overprovision_ratio > 1.5
    assert report.peak_replicas == 4


def test_no_scale_down_stabilisation_flaps_under_on_off_load(capacity: float, tmp_path: Path) -> None:
    """scaleDown window 0 and 100 %/15 s: every off phase drops replicas, every burst adds them back."""
    with _cluster(
        "autoscaling.signals[0]=runningRequests",
        "autoscaling.signalSettings.runningRequests.target=32",
        "autoscaling.behavior.scaleDown.stabilizationWindowSeconds=0",
        "autoscaling.behavior.scaleDown.policies[0].type=Percent",
        "autoscaling.behavior.scaleDown.policies[0].value=100",
        "autoscaling.behavior.scaleDown.policies[0].periodSeconds=15",
    ):
        shape = BurstsRate(
            peak_rate=round(capacity * 1.5, 1), base_rate=0.5, on_s=45, off_s=45, duration_s=270
        )
        report = _verify(
            tmp_path / "flapping", capacity, shape, skip_scale_down=True, skip_overprovision=True
        )
    failed = _failed(report)
    assert "no_flapping" in failed, failed
    assert report.reversals is not None
    assert report.reversals > 2
