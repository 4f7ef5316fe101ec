"""Locust user for NVIDIA Triton's generate extension (KServe v2 protocol servers).

Route: POST /v2/models/<model>/generate with text_input; the model comes from --model or,
once per user, from POST /v2/repository/index (the first READY model). Triton reports no
token counts, so this user counts requests only.
"""

from __future__ import annotations

from locust import HttpUser, between, task

from gpu_inference.adapters.locust_support import (
    check_triton_generate,
    install_locust_hooks,
    judge,
    pick_prompt,
)

install_locust_hooks()


class TritonGenerateUser(HttpUser):
    """POST /v2/models/<model>/generate."""

    wait_time = between(0.05, 0.5)

    def on_start(self) -> None:
        self.model: str = self.environment.parsed_options.model or ""

    def _discover_model(self) -> None:
        with self.client.post(
            "/v2/repository/index", json={}, name="/v2/repository/index", catch_response=True
        ) as r:
            try:
                ready = [m["name"] for m in r.json() if m.get("state") == "READY"]
            except (ValueError, TypeError, KeyError, AttributeError):
                ready = []
            if r.status_code != 200 or not ready:
                r.failure(f"HTTP {r.status_code}: no READY model in the repository index")
                return
            self.model = ready[0]

    @task
    def generate(self) -> None:
        if not self.model:
            self._discover_model()
            if not self.model:
                return
        payload = {
            "text_input": pick_prompt(),
            "parameters": {"max_tokens": self.environment.parsed_options.max_tokens},
        }
        path = f"/v2/models/{self.model}/generate"
        with self.client.post(
            path, json=payload, name="/v2/models/[model]/generate", catch_response=True
        ) as resp:
            judge(resp, check_triton_generate)
