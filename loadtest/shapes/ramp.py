"""Ramp load: users grow linearly from the base to the peak over the rise, then hold the peak.

Environment knobs: LOADTEST_PEAK_USERS (20), LOADTEST_BASE_USERS (1), LOADTEST_DURATION_S (300),
LOADTEST_SPAWN_RATE (5), LOADTEST_RISE_FRACTION (0.5 of the duration).
"""

from __future__ import annotations

from locust import LoadTestShape

from gpu_inference.adapters.locust_support import ShapeParams, env_number


class RampShape(LoadTestShape):
    def __init__(self) -> None:
        super().__init__()
        self.params = ShapeParams.from_env()
        self.rise_s = self.params.duration_s * min(
            1.0, env_number("LOADTEST_RISE_FRACTION", 0.5, minimum=0.01)
        )

    def users_at(self, t: float) -> int:
        p = self.params
        return round(p.base_users + (p.peak_users - p.base_users) * min(1.0, t / self.rise_s))

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        if t >= self.params.duration_s:
            return None
        return self.users_at(t), self.params.spawn_rate
