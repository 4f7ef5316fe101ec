"""One record per request of an open-loop load run, and the figures computed from records.

A record holds what a client can measure of one streamed request: when it was due (the
Poisson schedule) and when it was sent, the time to the first token (TTFT), the gaps between
streamed chunks (inter-token latencies, ITL), the time per output token after the first
(TPOT), when it ended, the HTTP status, the token counts the server reported and, when it
failed, why. Times are seconds; `*_s` offsets count from the run's start (monotonic clock),
`sent_at` is the wall-clock (Unix) time the request was sent, to line it up with a timeline.

Everything here is pure: no I/O, no clock. The JSON-lines file the engine writes is one
`RequestRecord.model_dump_json()` per line, in the order requests finished.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: The record format's version, written in every line.
RECORD_VERSION = 1

#: How a request ended. Everything but "ok" is a miss for SLO attainment.
Outcome = Literal["ok", "http_error", "stream_error", "timeout", "connect_error", "cancelled", "dropped"]
OUTCOMES: tuple[Outcome, ...] = (
    "ok",
    "http_error",
    "stream_error",
    "timeout",
    "connect_error",
    "cancelled",
    "dropped",
)


class RequestRecord(BaseModel):
    """What one request of an open-loop run did, as the client measured it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: int = RECORD_VERSION
    #: Arrival number in schedule order (0, 1, ...).
    id: int = Field(ge=0)
    #: When the Poisson schedule wanted it sent (s from the run start).
    scheduled_s: float = Field(ge=0)
    #: The shape's rate (requests/s) at that moment.
    target_rate: float = Field(ge=0)
    #: When it was really sent (s from the run start); equals scheduled_s for a dropped request.
    start_s: float = Field(ge=0)
    #: Wall-clock (Unix seconds) at start_s.
    sent_at: float
    #: First content token, seconds after start_s; None if none arrived.
    ttft_s: float | None = None
    #: Gaps between successive content chunks (seconds); a chunk may carry several tokens.
    itl_s: list[float] = []
    #: (last token - first token) / (completion_tokens - 1); None with fewer than two tokens.
    tpot_s: float | None = None
    #: When the request ended (s from the run start); None for a dropped request.
    end_s: float | None = None
    #: HTTP status; None when no response head arrived.
    status: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    #: Where completion_tokens came from: the server's usage chunk, or a count of content chunks.
    tokens_source: Literal["usage", "chunks"] | None = None
    #: Bytes of the response body read (the event stream as it came over the wire).
    response_bytes: int = 0
    outcome: Outcome
    error: str | None = None
    #: The response said it came from the GPU simulator (X-GPU-Simulated: true).
    simulated: bool = False
    #: The simulator profile it named (X-GPU-Simulator), if any.
    simulator_profile: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def latency_s(self) -> float | None:
        """End-to-end latency (sent to last byte)."""
        return None if self.end_s is None else self.end_s - self.start_s


class Slo(BaseModel):
    """A per-request service level objective: TTFT and TPOT bounds (seconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft_s: float = Field(gt=0)
    tpot_s: float = Field(gt=0)


def meets_slo(record: RequestRecord, slo: Slo) -> bool:
    """True if the request succeeded with TTFT <= slo.ttft_s and TPOT <= slo.tpot_s.

    A failed request (any outcome but ok) is a miss. A reply of a single token has no TPOT;
    it is judged on TTFT alone.
    """
    if not record.ok or record.ttft_s is None:
        return False
    if record.ttft_s > slo.ttft_s:
        return False
    return record.tpot_s is None or record.tpot_s <= slo.tpot_s


class Attainment(BaseModel):
    """Share of requests that met the SLO."""

    model_config = ConfigDict(frozen=True)

    slo: Slo
    total: int
    met: int
    #: Misses by cause: "error" (any failed outcome), "ttft", "tpot" (ttft wins when both).
    missed_error: int
    missed_ttft: int
    missed_tpot: int

    @property
    def fraction(self) -> float | None:
        """met / total; None when there were no requests."""
        return self.met / self.total if self.total else None


def slo_attainment(records: Iterable[RequestRecord], slo: Slo) -> Attainment:
    """Fraction of requests with TTFT <= x and TPOT <= y; failed requests count as misses."""
    total = met = err = ttft = tpot = 0
    for r in records:
        total += 1
        if not r.ok or r.ttft_s is None:
            err += 1
        elif r.ttft_s > slo.ttft_s:
            ttft += 1
        elif r.tpot_s is not None and r.tpot_s > slo.tpot_s:
            tpot += 1
        else:
            met += 1
    return Attainment(slo=slo, total=total, met=met, missed_error=err, missed_ttft=ttft, missed_tpot=tpot)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between order statistics.

    Same definition as numpy's default ("linear"); None for no values.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q={q} is outside 0..100")
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


class Percentiles(BaseModel):
    """p50/p90/p99/max and the mean of one latency (seconds); None when nothing was measured."""

    model_config = ConfigDict(frozen=True)

    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None


def percentiles(values: Sequence[float]) -> Percentiles:
    """Summary percentiles of a list of latencies."""
    return Percentiles(
        count=len(values),
        mean=sum(values) / len(values) if values else None,
        p50=percentile(values, 50),
        p90=percentile(values, 90),
        p99=percentile(values, 99),
        max=max(values) if values else None,
    )


def ttft_percentiles(records: Iterable[RequestRecord]) -> Percentiles:
    """TTFT percentiles over successful requests."""
    return percentiles([r.ttft_s for r in records if r.ok and r.ttft_s is not None])


def tpot_percentiles(records: Iterable[RequestRecord]) -> Percentiles:
    """TPOT percentiles over successful requests with at least two tokens."""
    return percentiles([r.tpot_s for r in records if r.ok and r.tpot_s is not None])


def itl_percentiles(records: Iterable[RequestRecord]) -> Percentiles:
    """Inter-chunk gap percentiles over every gap of every successful request."""
    return percentiles([g for r in records if r.ok for g in r.itl_s])


class Window(BaseModel):
    """Rates in one time window [start_s, end_s) of a run (requests/s)."""

    model_config = ConfigDict(frozen=True)

    start_s: float
    end_s: float
    #: Arrivals the schedule asked for in the window, per second (the offered load).
    offered_rps: float
    #: Requests sent in the window, per second (offered minus those dropped at the client's cap).
    sent_rps: float
    #: Successful requests that ended in the window, per second (throughput).
    completed_rps: float
    #: Failed requests that ended in the window, per second (a dropped one at its due time).
    failed_rps: float
    #: Successful requests ending in the window that met the SLO, per second; None without an SLO.
    goodput_rps: float | None = None
    #: Completion tokens of successful requests ending in the window, per second.
    completion_tokens_per_s: float


def window_rates(
    records: Sequence[RequestRecord], window_s: float, *, slo: Slo | None = None, until_s: float | None = None
) -> list[Window]:
    """Per-window offered, sent, completed, failed (and SLO-meeting) rates.

    Windows start at 0 and cover up to `until_s` (default: the last start or end in the records).
    Arrivals count by their scheduled time, sends by their start, completions by their end.
    """
    if window_s <= 0:
        raise ValueError(f"window_s must be > 0, got {window_s}")
    horizon = until_s
    if horizon is None:
        horizon = max(
            [r.scheduled_s for r in records] + [r.end_s for r in records if r.end_s is not None], default=0.0
        )
    n = max(1, math.ceil(horizon / window_s - 1e-9)) if horizon > 0 else 1
    offered = [0] * n
    sent = [0] * n
    completed = [0] * n
    failed = [0] * n
    good = [0] * n
    tokens = [0] * n

    def slot(t: float) -> int | None:
        i = int(t // window_s)
        return i if 0 <= i < n else None

    for r in records:
        if (i := slot(r.scheduled_s)) is not None:
            offered[i] += 1
        if r.outcome != "dropped" and (i := slot(r.start_s)) is not None:
            sent[i] += 1
        end = r.end_s if r.end_s is not None else r.scheduled_s
        if (i := slot(end)) is None:
            continue
        if r.ok:
            completed[i] += 1
            tokens[i] += r.completion_tokens or 0
            if slo is not None and meets_slo(r, slo):
                good[i] += 1
        else:
            failed[i] += 1
    return [
        Window(
            start_s=i * window_s,
            end_s=(i + 1) * window_s,
            offered_rps=offered[i] / window_s,
            sent_rps=sent[i] / window_s,
            completed_rps=completed[i] / window_s,
            failed_rps=failed[i] / window_s,
            goodput_rps=good[i] / window_s if slo is not None else None,
            completion_tokens_per_s=tokens[i] / window_s,
        )
        for i in range(n)
    ]


class RecordStats(BaseModel):
    """Figures over a run's records: counts by outcome, latencies, tokens, SLO attainment."""

    model_config = ConfigDict(frozen=True)

    requests: int
    outcomes: dict[str, int]
    ok: int
    failed: int
    #: Sent requests / the span from the first due time to the last end (requests/s).
    achieved_rps: float | None
    ttft: Percentiles
    tpot: Percentiles
    itl: Percentiles
    latency: Percentiles
    prompt_tokens: int
    completion_tokens: int
    #: Requests whose response named the GPU simulator (X-GPU-Simulated: true).
    simulated_responses: int
    attainment: Attainment | None = None
    #: Largest delay between a request's due time and its send (how well the schedule was kept).
    max_send_lag_s: float | None


def record_stats(records: Sequence[RequestRecord], slo: Slo | None = None) -> RecordStats:
    """Summarise a run's records (attainment only when an SLO is given)."""
    outcomes = {o: 0 for o in OUTCOMES}
    for r in records:
        outcomes[r.outcome] += 1
    ok_records = [r for r in records if r.ok]
    sent = [r for r in records if r.outcome != "dropped"]
    ends = [r.end_s for r in records if r.end_s is not None]
    span = (max(ends) - min(r.scheduled_s for r in records)) if ends else 0.0
    return RecordStats(
        requests=len(records),
        outcomes=outcomes,
        ok=len(ok_records),
        failed=len(records) - len(ok_records),
        achieved_rps=len(sent) / span if span > 0 else None,
        ttft=ttft_percentiles(records),
        tpot=tpot_percentiles(records),
        itl=itl_percentiles(records),
        latency=percentiles([r.latency_s for r in ok_records if r.latency_s is not None]),
        prompt_tokens=sum(r.prompt_tokens or 0 for r in ok_records),
        completion_tokens=sum(r.completion_tokens or 0 for r in ok_records),
        simulated_responses=sum(1 for r in records if r.simulated),
        attainment=slo_attainment(records, slo) if slo is not None else None,
        max_send_lag_s=max((r.start_s - r.scheduled_s for r in sent), default=None),
    )
