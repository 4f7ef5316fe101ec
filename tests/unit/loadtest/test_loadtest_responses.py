"""Response checks of the locust users, and the readers of what locust writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gpu_inference.adapters.locust import StatsHistoryReader, TokensReader, at_or_before
from gpu_inference.adapters.locust_support import (
    InvalidResponse,
    ShapeParams,
    TokenCounter,
    Usage,
    check_chat,
    check_completion,
    check_models,
    check_tgi_generate,
    check_triton_generate,
)
from gpu_inference.gpusim import openai_api

pytestmark = pytest.mark.unit

MODEL = "Qwen/Qwen2.5-1.5B-Instruct"


def test_the_gpu_simulators_answers_pass_and_their_tokens_are_counted() -> None:
    req = openai_api.parse_completion({"model": MODEL, "prompt": "hello there", "max_tokens": 7}, MODEL, 4096)
    body = openai_api.completion_response(req, "1", 1)
    assert check_completion(body) == Usage(req.total_prompt_tokens, 7)
    chat = openai_api.parse_chat(
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}, MODEL, 4096
    )
    assert check_chat(openai_api.chat_response(chat, "2", 1)) == Usage(chat.total_prompt_tokens, 5)
    assert check_models(openai_api.models_response(MODEL, 1, 4096)) == MODEL


def completion(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "text": "hi", "finish_reason": "length"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    body.update(over)
    return body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "body is not a JSON object"),
        ({k: v for k, v in completion().items() if k != "model"}, "field 'model' missing"),
        (completion(object="chat.completion"), "expected 'text_completion'"),
        (completion(choices=[]), "choices is empty"),
        (completion(choices=[{"index": 0, "text": None}]), "choices[].text is not a string"),
        (
            completion(usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 9}),
            "total_tokens 9 !=",
        ),
        (
            completion(usage={"prompt_tokens": -1, "completion_tokens": 4}),
            "usage.prompt_tokens is not a non-negative",
        ),
        (completion(usage="lots"), "usage is not an object"),
    ],
)
def test_malformed_completions_are_failures(body: Any, message: str) -> None:
    with pytest.raises(InvalidResponse) as exc:
        check_completion(body)
    assert message in str(exc.value)


def test_completion_without_usage_counts_no_tokens() -> None:
    assert check_completion({k: v for k, v in completion().items() if k != "usage"}) == Usage(0, 0)


def test_chat_needs_an_assistant_message() -> None:
    body = completion(
        object="chat.completion", choices=[{"index": 0, "message": {"role": "user", "content": "x"}}]
    )
    with pytest.raises(InvalidResponse, match="not an assistant message"):
        check_chat(body)
    body["choices"][0]["message"] = {"role": "assistant", "content": None}
    with pytest.raises(InvalidResponse, match=r"message\.content is not a string"):
        check_chat(body)


def test_models_needs_a_model_id() -> None:
    with pytest.raises(InvalidResponse, match="non-empty list"):
        check_models({"object": "list", "data": []})
    with pytest.raises(InvalidResponse, match=r"data\[0\]\.id is missing"):
        check_models({"data": [{"object": "model"}]})


def test_tgi_and_triton_answers() -> None:
    tgi = {"generated_text": "x", "details": {"generated_tokens": 9, "prefill": [{"id": 1}, {"id": 2}]}}
    assert check_tgi_generate(tgi) == Usage(2, 9)
    with pytest.raises(InvalidResponse, match="generated_text"):
        check_tgi_generate({"details": {}})
    assert check_triton_generate({"model_name": "m", "model_version": "1", "text_output": "x"}) == Usage()
    with pytest.raises(InvalidResponse, match="text_output"):
        check_triton_generate({"model_name": "m"})


def test_token_counter_appends_cumulative_lines(tmp_path: Path) -> None:
    counter = TokenCounter()
    counter.path = tmp_path / "tokens.jsonl"
    counter.add(Usage(3, 4))
    counter.flush()
    counter.add(Usage(5, 6))
    counter.flush()
    lines = [json.loads(x) for x in counter.path.read_text().splitlines()]
    assert [(x["responses"], x["prompt_tokens"], x["completion_tokens"]) for x in lines] == [
        (1, 3, 4),
        (2, 8, 10),
    ]


def test_shape_params_defaults_and_env() -> None:
    assert ShapeParams.from_env(env={}) == ShapeParams(
        peak_users=20, duration_s=300.0, spawn_rate=5.0, base_users=1
    )
    p = ShapeParams.from_env(env={"LOADTEST_PEAK_USERS": "3", "LOADTEST_DURATION_S": "12.5"})
    assert (p.peak_users, p.duration_s) == (3, 12.5)


HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,"
    "Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,"
    "Total Min Response Time,Total Max Response Time,Total Average Content Size\n"
)


def row(ts: int, users: int, name: str, rps: str, p50: str, p95: str, total: int, fails: int) -> str:
    kind = "" if name == "Aggregated" else "POST"
    return (
        f"{ts},{users},{kind},{name},{rps},0.000000,{p50},N/A,N/A,N/A,N/A,{p95},N/A,N/A,N/A,N/A,N/A,"
        f"{total},{fails},50,60.5,5,300,400.25\n"
    )


def test_stats_history_reader_takes_aggregated_rows_and_only_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "locust_stats_history.csv"
    reader = StatsHistoryReader(path)
    assert reader.read() == []
    path.write_text(HEADER + row(100, 0, "Aggregated", "0.000000", "N/A", "N/A", 0, 0))
    with path.open("a") as f:
        f.write(row(101, 4, "/v1/completions", "3.000000", "40", "90", 3, 0))
        f.write(row(101, 4, "Aggregated", "5.500000", "45", "120", 6, 1))
        f.write("102,4,,Aggre")  # a row locust is still writing
    points = reader.read()
    assert [
        (p.ts, p.users, p.rps, p.p50_ms, p.p95_ms, p.total_requests, p.total_failures) for p in points
    ] == [
        (100, 0, 0.0, None, None, 0, 0),
        (101, 4, 5.5, 45.0, 120.0, 6, 1),
    ]
    assert points[1].avg_content_bytes == 400.25
    with path.open("a") as f:
        f.write(
            "gated,4,0.000000,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n"
        )  # completes the partial line: malformed
        f.write(row(103, 4, "Aggregated", "6.000000", "44", "110", 12, 1))
    assert [p.ts for p in reader.read()] == [100, 101, 103]
    assert at_or_before(reader.points, 102.9) is points[1]
    assert at_or_before(reader.points, 99) is None


def test_tokens_reader(tmp_path: Path) -> None:
    path = tmp_path / "tokens.jsonl"
    reader = TokensReader(path)
    path.write_text('{"ts": 1, "responses": 2, "prompt_tokens": 3, "completion_tokens": 4}\n{"ts": 2, "resp')
    assert [(p.ts, p.prompt_tokens) for p in reader.read()] == [(1, 3)]
    with path.open("a") as f:
        f.write('onses": 5, "prompt_tokens": 6, "completion_tokens": 7}\n')
    assert [(p.ts, p.completion_tokens) for p in reader.read()] == [(1, 4), (2, 7)]
