"""Locust users for an OpenAI-compatible API (vLLM's OpenAI server: the chart's default preset).

Routes: GET /v1/models (once per user, to learn the model id unless --model is given),
POST /v1/completions and POST /v1/chat/completions. Every response is checked against the
protocol (status, envelope, choices, usage arithmetic); token counts come from `usage`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from locust import HttpUser, between, task

from gpu_inference.adapters.locust_support import (
    InvalidResponse,
    Usage,
    check_chat,
    check_completion,
    check_models,
    install_locust_hooks,
    judge,
    pick_prompt,
)

install_locust_hooks()


class _OpenAIUser(HttpUser):
    abstract = True
    wait_time = between(0.05, 0.5)

    def on_start(self) -> None:
        self.model: str = self.environment.parsed_options.model or ""
        self.max_tokens: int = self.environment.parsed_options.max_tokens

    def _discover_model(self) -> None:
        with self.client.get("/v1/models", name="/v1/models", catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {resp.text[:200]}")
                return
            try:
                self.model = check_models(resp.json())
            except (ValueError, InvalidResponse) as exc:
                resp.failure(str(exc))

    def post_checked(self, path: str, payload: dict[str, Any], check: Callable[[Any], Usage]) -> None:
        if not self.model:
            self._discover_model()
            if not self.model:
                return
        with self.client.post(
            path, json={"model": self.model, **payload}, name=path, catch_response=True
        ) as resp:
            judge(resp, check)


class CompletionsUser(_OpenAIUser):
    """POST /v1/completions."""

    @task
    def complete(self) -> None:
        payload = {"prompt": pick_prompt(), "max_tokens": self.max_tokens, "temperature": 0.7}
        self.post_checked("/v1/completions", payload, check_completion)


class ChatUser(_OpenAIUser):
    """POST /v1/chat/completions."""

    @task
    def chat(self) -> None:
        messages = [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": pick_prompt()},
        ]
        payload = {"messages": messages, "max_tokens": self.max_tokens, "temperature": 0.7}
        self.post_checked("/v1/chat/completions", payload, check_chat)
