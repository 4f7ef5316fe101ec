"""Waiting for the cluster and AWS to reach a state: a probe says (done, what it saw) until done."""

from __future__ import annotations

import time
from collections.abc import Callable

from gpu_inference.adapters.kube import NotYet, wait_until

#: (done, what it saw): the last "what it saw" names the state a timeout reports.
Probe = Callable[[], tuple[bool, str]]


def never(_: Exception) -> str | None:
    """Tolerate no error: every error a probe raises ends the wait."""
    return None


def poll(
    what: str,
    timeout_s: float,
    probe: Probe,
    fix: str,
    *,
    interval_s: float,
    sleep: Callable[[float], None] = time.sleep,
    tolerate: Callable[[Exception], str | None] = never,
) -> str:
    """Call `probe` every `interval_s` until it is done; return what it saw last.

    An error for which `tolerate` returns a state counts as not done (that state is what it saw);
    any other error ends the wait at once. After `timeout_s`: WaitTimeoutError naming `what`, the
    last state and `fix`.
    """

    def check() -> str:
        try:
            done, seen = probe()
        except Exception as exc:
            said = tolerate(exc)
            if said is None:
                raise
            raise NotYet(said) from exc
        if not done:
            raise NotYet(seen)
        return seen

    return wait_until(
        check, timeout_s=timeout_s, what=what, fix=fix, interval_s=interval_s, sleep=sleep, tolerate=()
    )
