"""Locust user for Hugging Face text-generation-inference (TGI).

Route: POST /generate with parameters.details (and decoder_input_details) so the answer
carries generated_tokens and the prefill tokens; each response is checked.
"""

from __future__ import annotations

from locust import HttpUser, between, task

from gpu_inference.adapters.locust_support import check_tgi_generate, install_locust_hooks, judge, pick_prompt

install_locust_hooks()


class TgiGenerateUser(HttpUser):
    """POST /generate."""

    wait_time = between(0.05, 0.5)

    @task
    def generate(self) -> None:
        parameters = {
            "max_new_tokens": self.environment.parsed_options.max_tokens,
            "details": True,
            "decoder_input_details": True,
        }
        payload = {"inputs": pick_prompt(), "parameters": parameters}
        with self.client.post("/generate", json=payload, name="/generate", catch_response=True) as resp:
            judge(resp, check_tgi_generate)
