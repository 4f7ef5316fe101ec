"""The inference API of vLLM's OpenAI-compatible server: request parsing and response payloads.

Pure functions, no I/O. The simulator has no tokenizer and no model, so:

* prompt tokens are counted deterministically from the text: ceil(UTF-8 bytes / 4) per text
  (about four bytes per token for English BPE vocabularies); token-id prompts count their ids;
  a chat request adds 4 tokens per message and 3 for the reply, as chat templates do;
* parsing gives each sequence its token budget: max_tokens (or max_completion_tokens for
  chat); /v1/completions defaults to 16 like vLLM; chat defaults to what the caller passes
  (classic: DEFAULT_CHAT_MAX_TOKENS; llm: what the context leaves, as vLLM does). How many of
  those tokens a reply really has is decided by `with_lengths` (see gpusim/lengths.py);
* the generated text is made of deterministic filler words, one word per token;
* ``stream: true`` is answered with server-sent events like vLLM's: one ``data: {json}`` chunk
  per token (object ``text_completion`` / ``chat.completion.chunk``), the finish_reason on each
  choice's last chunk, a usage chunk when ``stream_options.include_usage`` is true, then
  ``data: [DONE]``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from gpu_inference.gpusim.params import load_catalog

#: Completion budget for /v1/completions when max_tokens is absent (vLLM's default).
DEFAULT_COMPLETION_MAX_TOKENS = 16
#: Completion budget for /v1/chat/completions when neither max_tokens nor
#: max_completion_tokens is given (vLLM would generate until end-of-sequence).
DEFAULT_CHAT_MAX_TOKENS = 128
#: Most sequences one request may ask for (n x prompts).
_API = load_catalog().api
#: Figures of the token-counting rule, from the data file (assumptions, see data/profiles.yaml).
BYTES_PER_TOKEN = int(_API["bytes_per_token"].value)
MAX_SEQUENCES_PER_REQUEST = int(_API["max_sequences_per_request"].value)
CHAT_TOKENS_PER_MESSAGE = int(_API["chat_tokens_per_message"].value)
CHAT_TOKENS_FOR_REPLY = int(_API["chat_tokens_for_reply"].value)

_FILLER = (
    "simulated",
    "tokens",
    "from",
    "the",
    "gpu",
    "inference",
    "simulator",
    "model",
    "reply",
    "text",
    "with",
    "no",
    "meaning",
)


class ApiError(Exception):
    """A request the server refuses, rendered as an OpenAI error payload."""

    def __init__(
        self, status: int, message: str, err_type: str = "BadRequestError", param: str | None = None
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.err_type = err_type
        self.param = param

    def payload(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.err_type,
                "param": self.param,
                "code": self.status,
            }
        }


@dataclass(frozen=True)
class Sequence:
    """One generated sequence: its prompt (index into the request's prompts) and token counts."""

    prompt_index: int
    choice_index: int
    prompt_tokens: int
    completion_tokens: int
    seed: str
    finish_reason: str = "length"


@dataclass(frozen=True)
class InferenceRequest:
    kind: Literal["completion", "chat"]
    model: str
    prompt_tokens: tuple[int, ...]  # one entry per prompt
    sequences: tuple[Sequence, ...]
    stream: bool = False
    include_usage: bool = False
    ignore_eos: bool = False
    #: the request's integer `seed` (reply lengths drawn from it are reproducible)
    seed: int | None = None

    @property
    def total_prompt_tokens(self) -> int:
        return sum(self.prompt_tokens)

    @property
    def total_completion_tokens(self) -> int:
        return sum(s.completion_tokens for s in self.sequences)


def count_text_tokens(text: str) -> int:
    """Deterministic token count of a text: ceil(UTF-8 bytes / BYTES_PER_TOKEN (4))."""
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


def _int_param(body: dict[str, Any], name: str, default: int | None, minimum: int) -> int | None:
    value = body.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{name} must be an integer, got {value!r}", param=name)
    if value < minimum:
        raise ApiError(400, f"{name} must be at least {minimum}, got {value}", param=name)
    return value


def _common(body: Any, served_model: str) -> tuple[dict[str, Any], str, int]:
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    for flag in ("stream", "ignore_eos"):
        if flag in body and body[flag] is not None and not isinstance(body[flag], bool):
            raise ApiError(400, f"{flag} must be a boolean", param=flag)
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise ApiError(400, "stream_options must be an object", param="stream_options")
    model = body.get("model", served_model)
    if model is None:
        model = served_model
    if model != served_model:
        raise ApiError(404, f"The model `{model}` does not exist.", err_type="NotFoundError", param="model")
    n = _int_param(body, "n", 1, 1)
    assert n is not None
    return body, served_model, n


def _completion_prompts(prompt: Any) -> list[tuple[int, str]]:
    """(token count, seed text) per prompt of a /v1/completions request."""
    if isinstance(prompt, str):
        return [(count_text_tokens(prompt), prompt)]
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, str) for p in prompt):
            return [(count_text_tokens(p), p) for p in prompt]
        if all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            return [(len(prompt), " ".join(map(str, prompt)))]
        if all(isinstance(p, list) and all(isinstance(t, int) for t in p) for p in prompt):
            return [(len(p), " ".join(map(str, p))) for p in prompt]
    raise ApiError(
        400, "prompt must be a string, a list of strings, or a list of token ids (lists)", param="prompt"
    )


def _message_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                raise ApiError(
                    400, "only text content parts are supported by the simulator", param="messages"
                )
        return "".join(parts)
    raise ApiError(400, "message content must be a string or a list of text parts", param="messages")


def _chat_prompt(messages: Any) -> tuple[int, str]:
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages must be a non-empty list", param="messages")
    tokens = CHAT_TOKENS_FOR_REPLY
    texts: list[str] = []
    for msg in messages:
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise ApiError(400, "each message needs a string 'role'", param="messages")
        text = _message_text(msg.get("content"))
        texts.append(f"{msg['role']}:{text}")
        tokens += CHAT_TOKENS_PER_MESSAGE + count_text_tokens(text)
    return tokens, "\n".join(texts)


def _sequences(
    prompts: list[tuple[int, str]], n: int, max_tokens: int | None, default_tokens: int, max_model_len: int
) -> tuple[Sequence, ...]:
    if len(prompts) * n > MAX_SEQUENCES_PER_REQUEST:
        raise ApiError(
            400, f"at most {MAX_SEQUENCES_PER_REQUEST} sequences (prompts x n) per request", param="n"
        )
    seqs: list[Sequence] = []
    for pi, (ptoks, seed) in enumerate(prompts):
        if max_tokens is None:
            budget = min(default_tokens, max_model_len - ptoks)
            if budget < 1:
                raise ApiError(
                    400,
                    f"This model's maximum context length is {max_model_len} tokens. However, your "
                    f"prompt has {ptoks} tokens, leaving no room for a completion. Please reduce the "
                    "length of the prompt.",
                )
        else:
            budget = max_tokens
            if ptoks + budget > max_model_len:
                raise ApiError(
                    400,
                    f"This model's maximum context length is {max_model_len} tokens. However, you "
                    f"requested {ptoks + budget} tokens ({ptoks} in the prompt, {budget} in the "
                    "completion). Please reduce the length of the prompt or completion.",
                )
        for ci in range(n):
            seqs.append(
                Sequence(
                    prompt_index=pi,
                    choice_index=pi * n + ci,
                    prompt_tokens=ptoks,
                    completion_tokens=budget,
                    seed=f"{seed}\x00{ci}",
                )
            )
    return tuple(seqs)


def _flags(body: dict[str, Any]) -> dict[str, Any]:
    options = body.get("stream_options") or {}
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ApiError(400, f"seed must be an integer, got {seed!r}", param="seed")
    return {
        "stream": bool(body.get("stream")),
        "include_usage": bool(options.get("include_usage")),
        "ignore_eos": bool(body.get("ignore_eos")),
        "seed": seed,
    }


def parse_completion(
    body: Any,
    served_model: str,
    max_model_len: int,
    default_max_tokens: int = DEFAULT_COMPLETION_MAX_TOKENS,
) -> InferenceRequest:
    """Validate a POST /v1/completions body."""
    body, model, n = _common(body, served_model)
    if "prompt" not in body:
        raise ApiError(400, "prompt is required", param="prompt")
    prompts = _completion_prompts(body["prompt"])
    max_tokens = _int_param(body, "max_tokens", default_max_tokens, 1)
    seqs = _sequences(prompts, n, max_tokens, default_max_tokens, max_model_len)
    return InferenceRequest("completion", model, tuple(p for p, _ in prompts), seqs, **_flags(body))


def parse_chat(
    body: Any,
    served_model: str,
    max_model_len: int,
    default_max_tokens: int = DEFAULT_CHAT_MAX_TOKENS,
) -> InferenceRequest:
    """Validate a POST /v1/chat/completions body (budget: max_completion_tokens, max_tokens,
    else `default_max_tokens` capped by what the context leaves)."""
    body, model, n = _common(body, served_model)
    prompt = _chat_prompt(body.get("messages"))
    max_tokens = _int_param(body, "max_completion_tokens", None, 1)
    if max_tokens is None:
        max_tokens = _int_param(body, "max_tokens", None, 1)
    seqs = _sequences([prompt], n, max_tokens, default_max_tokens, max_model_len)
    return InferenceRequest("chat", model, (prompt[0],), seqs, **_flags(body))


def with_lengths(
    req: InferenceRequest, length: Callable[[int, bool, int | None, int], tuple[int, str]]
) -> InferenceRequest:
    """The request with each sequence's real length and finish_reason.

    `length(budget, ignore_eos, request_seed, choice_index)` is `OutputLengths.length`.
    """
    seqs = []
    for s in req.sequences:
        tokens, reason = length(s.completion_tokens, req.ignore_eos, req.seed, s.choice_index)
        seqs.append(replace(s, completion_tokens=tokens, finish_reason=reason))
    return replace(req, sequences=tuple(seqs))


def _start(seed: str) -> int:
    return int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest()[:4], "big")


def generate_text(seed: str, tokens: int) -> str:
    """Deterministic filler text of exactly `tokens` words for a given seed."""
    start = _start(seed)
    return " ".join(_FILLER[(start + i) % len(_FILLER)] for i in range(tokens))


def token_pieces(seed: str, first: int, last: int, leading_space: bool) -> str:
    """Text of tokens [first, last) of `generate_text(seed, ...)` as streamed deltas joined.

    Token 0 has a leading space only when `leading_space` (completions); every later token
    has one, so the pieces of all tokens concatenate to the whole text.
    """
    start = _start(seed)
    parts = []
    for i in range(first, last):
        word = _FILLER[(start + i) % len(_FILLER)]
        parts.append(word if i == 0 and not leading_space else " " + word)
    return "".join(parts)


def _usage(req: InferenceRequest) -> dict[str, Any]:
    prompt = req.total_prompt_tokens
    completion = req.total_completion_tokens
    return {
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
        "completion_tokens": completion,
        "prompt_tokens_details": None,
    }


def _envelope(req: InferenceRequest, request_id: str, created: int, obj: str, **rest: Any) -> dict[str, Any]:
    """The fields every response body and chunk starts with (the id's prefix follows `obj`), then `rest`."""
    prefix = "cmpl" if obj == "text_completion" else "chatcmpl"
    return {"id": f"{prefix}-{request_id}", "object": obj, "created": created, "model": req.model, **rest}


def completion_response(req: InferenceRequest, request_id: str, created: int) -> dict[str, Any]:
    """The /v1/completions response body (object "text_completion")."""
    choices = [
        {
            "index": s.choice_index,
            "text": " " + generate_text(s.seed, s.completion_tokens),
            "logprobs": None,
            "finish_reason": s.finish_reason,
            "stop_reason": None,
            "prompt_logprobs": None,
        }
        for s in req.sequences
    ]
    return _envelope(req, request_id, created, "text_completion", choices=choices, usage=_usage(req))


def chat_response(req: InferenceRequest, request_id: str, created: int) -> dict[str, Any]:
    """The /v1/chat/completions response body (object "chat.completion")."""
    choices = [
        {
            "index": s.choice_index,
            "message": {
                "role": "assistant",
                "content": generate_text(s.seed, s.completion_tokens),
                "tool_calls": [],
            },
            "logprobs": None,
            "finish_reason": s.finish_reason,
            "stop_reason": None,
        }
        for s in req.sequences
    ]
    usage = _usage(req)
    return _envelope(
        req, request_id, created, "chat.completion", choices=choices, usage=usage, prompt_logprobs=None
    )


def models_response(model: str, created: int, max_model_len: int) -> dict[str, Any]:
    """The GET /v1/models response body."""
    return {
        "object": "list",
        "data": [
            {
                "id": model,
                "object": "model",
                "created": created,
                "owned_by": "vllm",
                "root": model,
                "parent": None,
                "max_model_len": max_model_len,
                "permission": [],
            }
        ],
    }


# --------------------------------------------------------------------------------------------
# Streaming (server-sent events)
# --------------------------------------------------------------------------------------------

SSE_DONE = b"data: [DONE]\n\n"


def sse(payload: dict[str, Any]) -> bytes:
    """One server-sent event carrying a JSON payload."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode("utf-8") + b"\n\n"


def stream_chunk(
    req: InferenceRequest,
    request_id: str,
    created: int,
    *,
    seq: Sequence,
    first: int,
    last: int,
    finished: bool,
) -> dict[str, Any]:
    """The chunk carrying tokens [first, last) of one sequence; finish_reason on its last one."""
    reason = seq.finish_reason if finished else None
    completion = req.kind == "completion"
    pieces = token_pieces(seq.seed, first, last, leading_space=completion)
    content: dict[str, Any] = {"text": pieces} if completion else {"delta": {"content": pieces}}
    choice = {"index": seq.choice_index, **content, "logprobs": None}
    choice.update(finish_reason=reason, stop_reason=None)
    obj = "text_completion" if completion else "chat.completion.chunk"
    return _envelope(req, request_id, created, obj, choices=[choice])


def chat_role_chunk(req: InferenceRequest, request_id: str, created: int, seq: Sequence) -> dict[str, Any]:
    """The first chunk of a streamed chat choice: the assistant role, no content yet."""
    choice = {
        "index": seq.choice_index,
        "delta": {"role": "assistant", "content": ""},
        "logprobs": None,
        "finish_reason": None,
    }
    return _envelope(req, request_id, created, "chat.completion.chunk", choices=[choice])


def usage_chunk(req: InferenceRequest, request_id: str, created: int) -> dict[str, Any]:
    """The final chunk of a stream with stream_options.include_usage: no choices, the usage."""
    obj = "text_completion" if req.kind == "completion" else "chat.completion.chunk"
    return _envelope(req, request_id, created, obj, choices=[], usage=_usage(req))


def parse_sse(body: bytes) -> tuple[list[dict[str, Any]], bool]:
    """Split an event stream into its JSON payloads and whether it ended with [DONE]."""
    payloads: list[dict[str, Any]] = []
    done = False
    for raw in body.decode("utf-8").split("\n\n"):
        event = raw.strip()
        if not event:
            continue
        if not event.startswith("data: "):
            raise ValueError(f"not a data event: {event[:40]!r}")
        data = event[len("data: ") :]
        if data == "[DONE]":
            done = True
            continue
        if done:
            raise ValueError("data after [DONE]")
        payloads.append(json.loads(data))
    return payloads, done
