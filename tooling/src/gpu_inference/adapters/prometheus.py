"""Prometheus adapter: instant and range queries through prometheus-api-client.

Every request has an explicit timeout and at most one retry; failures become
PrometheusError naming the URL and the query, so a caller can record the gap in a
timeline instead of crashing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from pydantic import BaseModel, ConfigDict
from urllib3.util.retry import Retry

from gpu_inference.errors import ConfigError, GpuInferenceError

log = logging.getLogger(__name__)


class PrometheusError(GpuInferenceError):
    """Prometheus could not be reached or refused a query."""

    def __init__(self, url: str, query: str, problem: str) -> None:
        self.url = url
        self.query = query
        self.problem = problem
        super().__init__(f"Prometheus at {url}: {problem} (query: {query})")


class Sample(BaseModel):
    """One series of an instant vector: its labels and value (NaN dropped by the caller)."""

    model_config = ConfigDict(frozen=True)
    labels: dict[str, str]
    value: float
    timestamp: float


class RangeSeries(BaseModel):
    """One series of a range query: labels and (timestamp, value) points."""

    model_config = ConfigDict(frozen=True)
    labels: dict[str, str]
    points: tuple[tuple[float, float], ...]


def _parse_value(raw: Any, where: str) -> tuple[float, float]:
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        raise ValueError(f"{where}: expected [timestamp, value], got {raw!r}")
    return float(raw[0]), float(raw[1])


class Prometheus:
    """A Prometheus HTTP API client bound to one URL."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                "--prometheus-url", f"'{url}' is not an http(s) URL", "pass e.g. http://127.0.0.1:9090"
            )
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._client = PrometheusConnect(
            url=self.url,
            timeout=timeout_s,  # type: ignore[arg-type,unused-ignore]  # annotated int; requests takes float
            retry=Retry(total=1, backoff_factor=0.2, status=0, status_forcelist=()),
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _errors(self, query: str) -> Iterator[None]:
        try:
            yield
        except PrometheusApiClientException as exc:
            raise PrometheusError(self.url, query, f"answered with an error: {exc}") from exc
        except requests.RequestException as exc:
            raise PrometheusError(self.url, query, f"not reachable ({type(exc).__name__})") from exc
        except (KeyError, ValueError, TypeError) as exc:
            raise PrometheusError(
                self.url, query, f"answered something that is not a Prometheus result: {exc}"
            ) from exc

    def check(self) -> None:
        """Raise PrometheusError unless the query API answers."""
        self.query("vector(1)")

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        """Instant query. Series whose value is NaN or infinite are left out."""
        params: dict[str, str] = {"time": f"{at:.3f}"} if at is not None else {}
        out: list[Sample] = []
        with self._errors(promql):
            for item in self._client.custom_query(promql, params=params):
                ts, value = _parse_value(item["value"], "value")
                if math.isfinite(value):
                    out.append(Sample(labels=dict(item.get("metric", {})), value=value, timestamp=ts))
        return out

    def query_range(self, promql: str, start: float, end: float, step_s: float) -> list[RangeSeries]:
        """Range query from start to end (unix seconds) at step_s resolution; NaN points dropped."""
        if end <= start:
            raise ConfigError("time window", f"end {end} is not after start {start}", "give a later end time")
        out: list[RangeSeries] = []
        with self._errors(promql):
            raw = self._client.custom_query_range(
                promql,
                start_time=datetime.fromtimestamp(start, tz=UTC),
                end_time=datetime.fromtimestamp(end, tz=UTC),
                step=f"{step_s:g}s",
            )
            for item in raw:
                points = [_parse_value(pair, "values") for pair in item["values"]]
                out.append(
                    RangeSeries(
                        labels=dict(item.get("metric", {})),
                        points=tuple(p for p in points if math.isfinite(p[1])),
                    )
                )
        return out
