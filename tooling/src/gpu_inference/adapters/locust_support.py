"""What the locust users and shapes in loadtest/ share: response checks, token counts, shape knobs.

Imported inside the locust subprocess, so it imports locust and gevent only where needed and
nothing heavy from this package. The response checks are plain functions (no locust objects)
so they are tested directly.

Token accounting: every validated response adds its token counts to per-process counters;
a greenlet appends the cumulative totals to the JSON-lines file named by --tokens-file every
second and once more when the test stops. The parent process reads that file.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Environment variables the bundled shapes read (the CLI sets them from its options).
ENV_PEAK_USERS = "LOADTEST_PEAK_USERS"
ENV_DURATION_S = "LOADTEST_DURATION_S"
ENV_SPAWN_RATE = "LOADTEST_SPAWN_RATE"
ENV_BASE_USERS = "LOADTEST_BASE_USERS"


#: Prompts the users pick from: short, varied, answerable by any instruction-tuned model.
PROMPTS = (
    "Explain in two sentences why GPUs suit neural network inference.",
    "Write a haiku about autoscaling.",
    "List three ways to lower the cost of a Kubernetes cluster.",
    "Summarise what an HTTP load balancer does.",
    "What is the capital of France? Answer in one word.",
    "Translate 'the cluster scaled up under load' into French.",
)


def pick_prompt() -> str:
    return random.choice(PROMPTS)  # noqa: S311 - picks a prompt, not a secret


class InvalidResponse(ValueError):
    """The inference API answered, but not with what its protocol promises."""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


def _json_object(body: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidResponse(f"{what}: body is not a JSON object")
    return body


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidResponse(f"usage.{field} is not a non-negative integer: {value!r}")
    return value


def _optional_object(parent: Mapping[str, Any], key: str, name: str) -> Mapping[str, Any] | None:
    """parent[key] when it is an object, None when absent; InvalidResponse naming `name` otherwise."""
    value = parent.get(key)
    if value is not None and not isinstance(value, Mapping):
        raise InvalidResponse(f"{name} is not an object")
    return value


def openai_usage(body: Mapping[str, Any]) -> Usage:
    usage = _optional_object(body, "usage", "usage")
    if usage is None:
        return Usage()
    prompt = _count(usage.get("prompt_tokens", 0), "prompt_tokens")
    completion = _count(usage.get("completion_tokens", 0), "completion_tokens")
    total = usage.get("total_tokens")
    if total is not None and _count(total, "total_tokens") != prompt + completion:
        raise InvalidResponse(
            f"usage.total_tokens {total} != prompt_tokens {prompt} + completion_tokens {completion}"
        )
    return Usage(prompt, completion)


def check_models(body: Any) -> str:
    """GET /v1/models: return the first model id."""
    obj = _json_object(body, "/v1/models")
    data = obj.get("data")
    if not isinstance(data, list) or not data:
        raise InvalidResponse("/v1/models: 'data' is not a non-empty list")
    first = data[0]
    if not isinstance(first, Mapping) or not isinstance(first.get("id"), str) or not first["id"]:
        raise InvalidResponse("/v1/models: data[0].id is missing")
    return str(first["id"])


def _check_openai_envelope(obj: Mapping[str, Any], route: str, object_name: str) -> list[Mapping[str, Any]]:
    for field in ("id", "object", "created", "model", "choices"):
        if field not in obj:
            raise InvalidResponse(f"{route}: field '{field}' missing")
    if obj["object"] != object_name:
        raise InvalidResponse(f"{route}: object is {obj['object']!r}, expected {object_name!r}")
    choices = obj["choices"]
    if not isinstance(choices, list) or not choices:
        raise InvalidResponse(f"{route}: choices is empty")
    if not all(isinstance(c, Mapping) for c in choices):
        raise InvalidResponse(f"{route}: a choice is not an object")
    return choices


def check_completion(body: Any) -> Usage:
    """POST /v1/completions (OpenAI text completion)."""
    obj = _json_object(body, "/v1/completions")
    for c in _check_openai_envelope(obj, "/v1/completions", "text_completion"):
        if not isinstance(c.get("text"), str):
            raise InvalidResponse("/v1/completions: choices[].text is not a string")
    return openai_usage(obj)


def check_chat(body: Any) -> Usage:
    """POST /v1/chat/completions (OpenAI chat completion)."""
    obj = _json_object(body, "/v1/chat/completions")
    for c in _check_openai_envelope(obj, "/v1/chat/completions", "chat.completion"):
        msg = c.get("message")
        if not isinstance(msg, Mapping) or msg.get("role") != "assistant":
            raise InvalidResponse("/v1/chat/completions: choices[].message is not an assistant message")
        if not isinstance(msg.get("content"), str):
            raise InvalidResponse("/v1/chat/completions: choices[].message.content is not a string")
    return openai_usage(obj)


def check_tgi_generate(body: Any) -> Usage:
    """POST /generate (Hugging Face text-generation-inference) with parameters.details=true."""
    obj = _json_object(body, "/generate")
    if not isinstance(obj.get("generated_text"), str):
        raise InvalidResponse("/generate: generated_text is not a string")
    details = _optional_object(obj, "details", "/generate: details")
    if details is None:
        return Usage()
    completion = _count(details.get("generated_tokens", 0), "generated_tokens")
    prefill = details.get("prefill")
    prompt = len(prefill) if isinstance(prefill, list) else 0
    return Usage(prompt, completion)


def check_triton_generate(body: Any) -> Usage:
    """POST /v2/models/<model>/generate (Triton generate extension). It reports no token counts."""
    obj = _json_object(body, "/v2/models/<model>/generate")
    if not isinstance(obj.get("text_output"), str):
        raise InvalidResponse("triton generate: text_output is not a string")
    if not isinstance(obj.get("model_name"), str):
        raise InvalidResponse("triton generate: model_name is missing")
    return Usage()


# ---------------------------------------------------------------- token counters (locust side)


class TokenCounter:
    """Cumulative counts in one locust process, written as JSON lines."""

    def __init__(self) -> None:
        self.responses = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.path: Path | None = None

    def add(self, usage: Usage) -> None:
        self.responses += 1
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens

    def line(self) -> str:
        return json.dumps(
            {
                "ts": time.time(),
                "responses": self.responses,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
            }
        )

    def flush(self) -> None:
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(self.line() + "\n")


TOKENS = TokenCounter()


def judge(resp: Any, check: Callable[[Any], Usage]) -> None:
    """Mark a locust catch_response response: success only for HTTP 200 and a body `check` accepts."""
    if resp.status_code != 200:
        resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:200]}")
        return
    try:
        usage = check(resp.json())
    except (ValueError, InvalidResponse) as exc:
        resp.failure(str(exc))
        return
    TOKENS.add(usage)
    resp.success()


_hooks: dict[str, Any] = {}


def install_locust_hooks() -> None:
    """Register --tokens-file/--model/--max-tokens and the token writer. Safe to call repeatedly."""
    if _hooks:
        return
    import gevent  # type: ignore[import-untyped]
    import locust

    events: Any = locust.events

    _hooks["installed"] = True

    def add_arguments(parser: Any) -> None:
        parser.add_argument(
            "--tokens-file", default="", help="Append cumulative token counts here (JSON lines)"
        )
        parser.add_argument(
            "--model", default="", help="Model id to request (default: the first one the API lists)"
        )
        parser.add_argument(
            "--max-tokens", type=int, default=64, help="max_tokens / max_new_tokens per request"
        )

    def write_every_second() -> None:
        while True:
            gevent.sleep(1.0)
            TOKENS.flush()

    def on_start(environment: Any, **_: Any) -> None:
        options = environment.parsed_options
        path = getattr(options, "tokens_file", "") if options is not None else ""
        if path and "writer" not in _hooks:
            TOKENS.path = Path(path)
            _hooks["writer"] = gevent.spawn(write_every_second)

    def on_stop(**_: Any) -> None:
        writer = _hooks.pop("writer", None)
        if writer is not None:
            writer.kill()
        TOKENS.flush()

    events.init_command_line_parser.add_listener(add_arguments)
    events.test_start.add_listener(on_start)
    events.test_stop.add_listener(on_stop)


# ---------------------------------------------------------------- shape knobs


def env_number(
    name: str, default: float, env: Mapping[str, str] | None = None, *, minimum: float = 0.0
) -> float:
    """A numeric shape parameter from the environment, with a clear error on bad input."""
    raw = (env if env is not None else os.environ).get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number") from exc
    if value < minimum:
        raise ValueError(f"{name}={raw!r} must be >= {minimum:g}")
    return value


@dataclass(frozen=True)
class ShapeParams:
    """The knobs every bundled shape takes: peak users, total seconds, spawn rate, floor."""

    peak_users: int
    duration_s: float
    spawn_rate: float
    base_users: int

    @classmethod
    def from_env(
        cls,
        *,
        peak_users: int = 20,
        duration_s: float = 300.0,
        spawn_rate: float = 5.0,
        base_users: int = 1,
        env: Mapping[str, str] | None = None,
    ) -> ShapeParams:
        params = cls(
            peak_users=int(env_number(ENV_PEAK_USERS, peak_users, env, minimum=1)),
            duration_s=env_number(ENV_DURATION_S, duration_s, env, minimum=1),
            spawn_rate=env_number(ENV_SPAWN_RATE, spawn_rate, env, minimum=0.1),
            base_users=int(env_number(ENV_BASE_USERS, base_users, env, minimum=0)),
        )
        if params.base_users > params.peak_users:
            raise ValueError(
                f"{ENV_BASE_USERS}={params.base_users} is above {ENV_PEAK_USERS}={params.peak_users}"
            )
        return params
