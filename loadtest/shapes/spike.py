"""Spike load: a low base, a sudden jump to the peak (all users at once), then back to the base.

Environment knobs: LOADTEST_PEAK_USERS (20), LOADTEST_BASE_USERS (1), LOADTEST_DURATION_S (300),
LOADTEST_SPIKE_START (0.2) and LOADTEST_SPIKE_END (0.7) as fractions of the duration.
The spike spawns at the peak's rate (every user within a second); LOADTEST_SPAWN_RATE is not used.
"""

from __future__ import annotations

from locust import LoadTestShape

from gpu_inference.adapters.locust_support import ShapeParams, env_number


class SpikeShape(LoadTestShape):
    def __init__(self) -> None:
        super().__init__()
        self.params = ShapeParams.from_env()
        start = env_number("LOADTEST_SPIKE_START", 0.2)
        end = env_number("LOADTEST_SPIKE_END", 0.7)
        if not 0 <= start < end <= 1:
            raise ValueError(
                f"need 0 <= LOADTEST_SPIKE_START < LOADTEST_SPIKE_END <= 1, got {start} and {end}"
            )
        self.start_s = start * self.params.duration_s
        self.end_s = end * self.params.duration_s

    def users_at(self, t: float) -> int:
        return self.params.peak_users if self.start_s <= t < self.end_s else self.params.base_users

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        if t >= self.params.duration_s:
            return None
        return self.users_at(t), float(self.params.peak_users)
