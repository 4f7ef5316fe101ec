"""vLLM/OpenAI request parsing and response payloads (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from gpusim_testkit import usage

from gpu_inference.gpusim import openai_api as api

pytestmark = pytest.mark.unit

MODEL = "org/model-7b"


def test_token_counting_is_deterministic() -> None:
    assert api.count_text_tokens("") == 0
    assert api.count_text_tokens("abcd") == 1
    assert api.count_text_tokens("abcde") == 2
    assert api.count_text_tokens("é" * 4) == 2  # UTF-8 bytes, not characters
    req1 = api.parse_completion({"prompt": "hello world", "max_tokens": 5}, MODEL, 4096)
    req2 = api.parse_completion({"prompt": "hello world", "max_tokens": 5}, MODEL, 4096)
    assert req1 == req2
    a = api.completion_response(req1, "x", 1)["choices"][0]["text"]
    b = api.completion_response(req2, "x", 1)["choices"][0]["text"]
    assert a == b
    assert len(a.split()) == 5


def test_completion_payload_shape() -> None:
    req = api.parse_completion({"model": MODEL, "prompt": "x" * 40, "max_tokens": 7, "n": 2}, MODEL, 4096)
    body = api.completion_response(req, "abc", 1_700_000_000)
    assert body["id"] == "cmpl-abc"
    assert body["object"] == "text_completion"
    assert body["created"] == 1_700_000_000
    assert body["model"] == MODEL
    assert [c["index"] for c in body["choices"]] == [0, 1]
    for choice in body["choices"]:
        assert set(choice) >= {"index", "text", "logprobs", "finish_reason"}
        assert choice["finish_reason"] == "length"
        assert len(choice["text"].split()) == 7
    assert body["usage"]["prompt_tokens"] == 10  # 40 bytes / 4, counted once for n=2
    assert body["usage"]["completion_tokens"] == 14
    assert body["usage"]["total_tokens"] == 24


def test_completion_defaults_to_16_tokens_like_vllm() -> None:
    req = api.parse_completion({"prompt": "hi"}, MODEL, 4096)
    assert req.total_completion_tokens == api.DEFAULT_COMPLETION_MAX_TOKENS == 16


def test_completion_prompt_forms() -> None:
    batch = api.parse_completion({"prompt": ["abcd", "abcdabcd"], "max_tokens": 3}, MODEL, 4096)
    assert batch.prompt_tokens == (1, 2)
    assert [s.choice_index for s in batch.sequences] == [0, 1]
    ids = api.parse_completion({"prompt": [1, 2, 3, 4, 5], "max_tokens": 3}, MODEL, 4096)
    assert ids.prompt_tokens == (5,)
    id_batch = api.parse_completion({"prompt": [[1, 2], [3]], "max_tokens": 3}, MODEL, 4096)
    assert id_batch.prompt_tokens == (2, 1)


def test_chat_payload_shape() -> None:
    messages = [
        {"role": "system", "content": "abcd"},
        {"role": "user", "content": [{"type": "text", "text": "abcdabcd"}]},
    ]
    req = api.parse_chat({"model": MODEL, "messages": messages, "max_completion_tokens": 9}, MODEL, 4096)
    body = api.chat_response(req, "abc", 5)
    assert body["id"] == "chatcmpl-abc"
    assert body["object"] == "chat.completion"
    (choice,) = body["choices"]
    assert choice["message"]["role"] == "assistant"
    assert len(choice["message"]["content"].split()) == 9
    assert choice["finish_reason"] == "length"
    # 3 for the reply + (4 + 1) + (4 + 2) for the messages
    assert body["usage"] == usage(14, 9)


def test_chat_budget_falls_back_to_max_tokens_then_default() -> None:
    msgs = [{"role": "user", "content": "hi"}]
    assert api.parse_chat({"messages": msgs, "max_tokens": 11}, MODEL, 4096).total_completion_tokens == 11
    assert (
        api.parse_chat({"messages": msgs}, MODEL, 4096).total_completion_tokens == api.DEFAULT_CHAT_MAX_TOKENS
    )
    assert api.parse_chat({"messages": msgs}, MODEL, 20).total_completion_tokens == 20 - 8  # room left


def test_models_payload() -> None:
    body = api.models_response(MODEL, 3, 4096)
    assert body["object"] == "list"
    (card,) = body["data"]
    assert (card["id"], card["object"], card["owned_by"], card["max_model_len"]) == (
        MODEL,
        "model",
        "vllm",
        4096,
    )


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"prompt": "x", "model": "other"}, 404, "does not exist"),
        ({"prompt": "x", "stream": "yes"}, 400, "stream"),
        ({"prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
        ({"prompt": "x", "max_tokens": "5"}, 400, "max_tokens"),
        ({"prompt": "x", "n": 0}, 400, "n must"),
        ({"prompt": "x" * 400, "max_tokens": 10}, 400, "maximum context length is 100"),
        ({"prompt": {"a": 1}}, 400, "prompt must"),
        ({}, 400, "prompt is required"),
        (["not", "an", "object"], 400, "JSON object"),
        ({"prompt": ["a"], "n": 129}, 400, "at most"),
    ],
)
def test_completion_errors(body: Any, status: int, needle: str) -> None:
    with pytest.raises(api.ApiError) as err:
        api.parse_completion(body, MODEL, 100)
    assert err.value.status == status
    assert needle in err.value.message
    payload = err.value.payload()
    assert set(payload["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(
    "messages",
    [[], "hello", [{"content": "no role"}], [{"role": "user", "content": [{"type": "image_url"}]}]],
)
def test_chat_errors(messages: Any) -> None:
    with pytest.raises(api.ApiError) as err:
        api.parse_chat({"messages": messages}, MODEL, 4096)
    assert err.value.status == 400
    assert err.value.param == "messages"
