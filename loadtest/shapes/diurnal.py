"""Diurnal load: one day compressed into the duration, a smooth rise from the base to the peak at
mid-run and back down (a raised cosine), as traffic follows people's waking hours.

Environment knobs: LOADTEST_PEAK_USERS (20), LOADTEST_BASE_USERS (1), LOADTEST_DURATION_S (600),
LOADTEST_SPAWN_RATE (5).
"""

from __future__ import annotations

import math

from locust import LoadTestShape

from gpu_inference.adapters.locust_support import ShapeParams


class DiurnalShape(LoadTestShape):
    def __init__(self) -> None:
        super().__init__()
        self.params = ShapeParams.from_env(duration_s=600.0)

    def users_at(self, t: float) -> int:
        p = self.params
        phase = (1 - math.cos(2 * math.pi * t / p.duration_s)) / 2
        return round(p.base_users + (p.peak_users - p.base_users) * phase)

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        if t >= self.params.duration_s:
            return None
        return self.users_at(t), self.params.spawn_rate
