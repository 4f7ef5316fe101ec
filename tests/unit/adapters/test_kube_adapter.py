"""The Kubernetes adapter's client factory and its one wait_until."""

from __future__ import annotations

from pathlib import Path

import pytest
from clock_testkit import Clock

from gpu_inference.adapters.kube import NotYet, api_client, wait_until
from gpu_inference.errors import ConfigError, GpuInferenceError, WaitTimeoutError

pytestmark = pytest.mark.unit


def test_wait_until_returns_the_first_real_value() -> None:
    clock = Clock(now=0.0)
    answers = iter([None, False, {"pod-0": 3.0}])
    got = wait_until(lambda: next(answers), timeout_s=10, what="x", fix="y", clock=clock, sleep=clock.sleep)
    assert got == {"pod-0": 3.0}
    assert clock.now == 4.0


def test_wait_until_times_out_naming_what_the_last_state_and_the_fix() -> None:
    clock = Clock(now=0.0)

    def failing() -> None:
        raise GpuInferenceError("custom metrics API: 404 Not Found")

    with pytest.raises(WaitTimeoutError, match=r"metric X.*404 Not Found.*Fix: read the adapter log"):
        wait_until(
            failing, timeout_s=6, what="metric X", fix="read the adapter log", clock=clock, sleep=clock.sleep
        )
    assert clock.now == 6.0


def test_wait_until_does_not_hide_unexpected_errors() -> None:
    def broken() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        wait_until(broken, timeout_s=5, what="x", fix="y", sleep=lambda _s: None)


def test_api_client_names_a_missing_or_bad_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--kubeconfig.*not found"):
        api_client(tmp_path / "nope")
    bad = tmp_path / "kubeconfig"
    bad.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    with pytest.raises(ConfigError, match="--kubeconfig"):
        api_client(bad)


def test_wait_until_reports_what_a_check_saw_and_stops_at_an_error_it_must_not_tolerate() -> None:
    clock = Clock(now=0.0)

    def pending() -> None:
        raise NotYet("2 of 3 replicas Ready")

    with pytest.raises(WaitTimeoutError, match=r"last seen: 2 of 3 replicas Ready"):
        wait_until(pending, timeout_s=4, what="x", fix="y", clock=clock, sleep=clock.sleep, tolerate=())
    calls: list[int] = []

    def died() -> None:
        calls.append(1)
        raise GpuInferenceError("keda-operator exited")

    # tolerate=() ends the wait at the first error, with the error itself: no waiting for nothing
    with pytest.raises(GpuInferenceError, match="keda-operator exited"):
        wait_until(died, timeout_s=60, what="x", fix="y", clock=clock, sleep=clock.sleep, tolerate=())
    assert len(calls) == 1
