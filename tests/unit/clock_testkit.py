"""A clock the test moves by hand, for code that takes an injectable clock (and sleep)."""

from __future__ import annotations


class Clock:
    """Call it for the time; `advance` moves it on, and `sleep` does the same, so it stands in for
    time.sleep without waiting. It starts at `now` (1000 s by default: a monotonic clock is well past
    zero)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    sleep = advance
