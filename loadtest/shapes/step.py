"""Step load: users climb to the peak in equal steps over the rise, then hold the peak to the end.

Environment knobs: LOADTEST_PEAK_USERS (20), LOADTEST_DURATION_S (300), LOADTEST_SPAWN_RATE (5),
LOADTEST_STEPS (4 steps in the rise), LOADTEST_RISE_FRACTION (0.5 of the duration).
The long plateau at the peak leaves the HPA time to add replicas and the new size time to settle.
"""

from __future__ import annotations

import math

from locust import LoadTestShape

from gpu_inference.adapters.locust_support import ShapeParams, env_number


class StepShape(LoadTestShape):
    def __init__(self) -> None:
        super().__init__()
        self.params = ShapeParams.from_env()
        self.steps = int(env_number("LOADTEST_STEPS", 4, minimum=1))
        self.rise_s = self.params.duration_s * min(
            1.0, env_number("LOADTEST_RISE_FRACTION", 0.5, minimum=0.01)
        )

    def users_at(self, t: float) -> int:
        step = min(int(t / (self.rise_s / self.steps)), self.steps - 1)
        return math.ceil(self.params.peak_users * (step + 1) / self.steps)

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        if t >= self.params.duration_s:
            return None
        return self.users_at(t), self.params.spawn_rate
