"""Option parsing of `loadtest` and `verify-scaleup`."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from gpu_inference.cli.loadtest import parse_duration, parse_env, resolve_target
from gpu_inference.errors import ConfigError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "seconds"), [("300", 300), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("2.5m", 150)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m", "0", "-3"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_duration(text)


def test_shape_env_pairs() -> None:
    assert parse_env(["LOADTEST_STEPS=6", "A_B=x=y"]) == {"LOADTEST_STEPS": "6", "A_B": "x=y"}
    with pytest.raises(typer.BadParameter, match="KEY=VALUE"):
        parse_env(["9LIVES=1"])


def kw(**over: object) -> dict[str, object]:
    base: dict[str, object] = dict(
        target=None,
        local=False,
        name="gpu-inference",
        prometheus_url=None,
        kubeconfig=None,
        kube_context=None,
        namespace="gpu-inference",
        hpa=None,
        api="openai",
        simulated=False,
    )
    return {**base, **over}


def test_explicit_target() -> None:
    t = resolve_target(
        **kw(
            target="http://127.0.0.1:8000/",
            prometheus_url="http://127.0.0.1:9090",  # type: ignore[arg-type]
            kubeconfig=Path("/k"),
            hpa="gpu-inference",
            simulated=True,
        )
    )
    assert (t.url, t.prometheus_url, t.simulated, t.watches_cluster) == (
        "http://127.0.0.1:8000",
        "http://127.0.0.1:9090",
        True,
        True,
    )


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({}, "--target: no target"),
        ({"target": "127.0.0.1:8000"}, "is not an http(s) URL"),
        ({"target": "http://x", "namespace": "Bad_NS"}, "not a valid namespace name"),
        ({"target": "http://x", "api": "grpc"}, "unknown API 'grpc'"),
        ({"target": "http://x", "local": True}, "--local/--target: both given"),
    ],
)
def test_target_errors_name_the_option(over: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        resolve_target(**kw(**over))  # type: ignore[arg-type]
    assert message in str(exc.value)
