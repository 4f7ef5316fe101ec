"""Per-request records and the figures computed from them, on hand-made records."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gpu_inference.domain.requests import (
    RequestRecord,
    Slo,
    meets_slo,
    percentile,
    percentiles,
    record_stats,
    slo_attainment,
    tpot_percentiles,
    ttft_percentiles,
    window_rates,
)

pytestmark = pytest.mark.unit

SLO = Slo(ttft_s=0.5, tpot_s=0.05)


def rec(
    i: int, *, at: float = 0.0, ttft: float | None = 0.1, tpot: float | None = 0.02, **kw: Any
) -> RequestRecord:
    end = kw.pop("end", at + 1.0)
    fields: dict[str, Any] = {
        "id": i,
        "scheduled_s": at,
        "target_rate": 1.0,
        "start_s": at,
        "sent_at": 1_700_000_000 + at,
        "ttft_s": ttft,
        "tpot_s": tpot,
        "end_s": end,
        "status": 200,
        "prompt_tokens": 10,
        "completion_tokens": 8,
        "outcome": "ok",
    }
    fields.update(kw)
    return RequestRecord(**fields)


def test_percentile_is_linear_between_order_statistics() -> None:
    values = [float(v) for v in range(1, 11)]  # 1..10
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 90) == pytest.approx(9.1)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 10.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # unsorted input
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="outside"):
        percentile(values, 101)


def test_ttft_and_tpot_percentiles_use_successful_requests_only() -> None:
    records = [
        rec(0, ttft=0.1, tpot=0.01),
        rec(1, ttft=0.2, tpot=0.02),
        rec(2, ttft=0.3, tpot=None),  # one token: no TPOT
        rec(3, ttft=9.0, tpot=9.0, outcome="stream_error", error="broken"),
    ]
    ttft = ttft_percentiles(records)
    assert ttft.count == 3
    assert ttft.p50 == pytest.approx(0.2)
    assert ttft.max == pytest.approx(0.3)
    tpot = tpot_percentiles(records)
    assert tpot.count == 2
    assert tpot.p50 == pytest.approx(0.015)
    assert percentiles([]).p99 is None


def test_attainment_counts_errors_and_each_bound_as_misses() -> None:
    records = [
        rec(0),  # met
        rec(1, ttft=0.5, tpot=0.05),  # exactly at both bounds: met
        rec(2, ttft=0.6),  # TTFT miss
        rec(3, tpot=0.06),  # TPOT miss
        rec(4, ttft=0.9, tpot=0.9),  # both: counted as a TTFT miss
        rec(5, outcome="http_error", status=503, ttft=None, tpot=None, error="HTTP 503"),
        rec(6, outcome="timeout", ttft=None, tpot=None, error="slow"),
        rec(7, outcome="dropped", ttft=None, tpot=None, end=None, status=None),
        rec(8, tpot=None),  # single token: judged on TTFT only, met
        rec(9, outcome="cancelled", ttft=0.1, tpot=None, error="deadline"),  # a fast start does not save it
    ]
    att = slo_attainment(records, SLO)
    assert att.total == 10
    assert att.met == 3
    assert att.missed_ttft == 2
    assert att.missed_tpot == 1
    assert att.missed_error == 4
    assert att.fraction == pytest.approx(0.3)
    assert [meets_slo(r, SLO) for r in records] == [
        True,
        True,
        False,
        False,
        False,
        False,
        False,
        False,
        True,
        False,
    ]


def test_attainment_fails_a_99_percent_target_with_one_miss_in_fifty() -> None:
    records = [rec(i) for i in range(49)] + [rec(49, ttft=0.51)]
    att = slo_attainment(records, SLO)
    assert att.fraction == pytest.approx(0.98)
    assert att.fraction is not None
    assert att.fraction < 0.99
    assert slo_attainment(records[:49], SLO).fraction == 1.0
    assert slo_attainment([], SLO).fraction is None


def test_window_rates() -> None:
    records = [
        rec(0, at=0.2, end=0.9),  # offered, sent, completed in window 0
        rec(1, at=0.5, end=1.5),  # offered w0, completed w1
        rec(2, at=1.1, end=1.2, ttft=2.0),  # completed w1, misses the SLO
        rec(3, at=1.4, outcome="dropped", end=None, ttft=None, tpot=None),  # offered w1, not sent, failed w1
        rec(4, at=2.5, end=3.5, outcome="timeout", ttft=None, tpot=None),  # failed w3
    ]
    windows = window_rates(records, 1.0, slo=SLO)
    assert [w.start_s for w in windows] == [0.0, 1.0, 2.0, 3.0]
    assert [w.offered_rps for w in windows] == [2, 2, 1, 0]
    assert [w.sent_rps for w in windows] == [2, 1, 1, 0]
    assert [w.completed_rps for w in windows] == [1, 2, 0, 0]
    assert [w.failed_rps for w in windows] == [0, 1, 0, 1]
    assert [w.goodput_rps for w in windows] == [1, 1, 0, 0]
    assert windows[0].completion_tokens_per_s == 8
    half = window_rates(records, 2.0)
    assert [w.offered_rps for w in half] == [2.0, 0.5]
    assert half[0].goodput_rps is None
    with pytest.raises(ValueError, match="window_s"):
        window_rates(records, 0)


def test_record_stats() -> None:
    records = [
        rec(0, at=0.0, end=1.0),
        rec(1, at=0.5, end=2.0, simulated=True, start_s=0.6),
        rec(2, at=1.0, outcome="http_error", ttft=None, tpot=None, end=1.1, status=500),
        rec(3, at=1.5, outcome="dropped", ttft=None, tpot=None, end=None, status=None),
    ]
    stats = record_stats(records, SLO)
    assert stats.requests == 4
    assert stats.ok == 2
    assert stats.failed == 2
    assert stats.outcomes["dropped"] == 1
    assert stats.outcomes["http_error"] == 1
    assert stats.completion_tokens == 16  # failed requests' tokens are not counted
    assert stats.achieved_rps == pytest.approx(3 / 2.0)  # 3 sent over [0, 2]
    assert stats.max_send_lag_s == pytest.approx(0.1)
    assert stats.simulated_responses == 1
    assert stats.attainment is not None
    assert stats.attainment.fraction == pytest.approx(0.5)
    assert stats.latency.max == pytest.approx(1.4)
    assert record_stats([], None).attainment is None


def test_record_round_trips_as_json_and_rejects_unknown_fields() -> None:
    r = rec(0, itl_s=[0.01, 0.02], simulated=True, simulator_profile="llm")
    assert RequestRecord.model_validate_json(r.model_dump_json()) == r
    with pytest.raises(ValidationError):
        RequestRecord.model_validate({**r.model_dump(), "surprise": 1})
    with pytest.raises(ValidationError):
        RequestRecord.model_validate({**r.model_dump(), "outcome": "fine"})
    with pytest.raises(ValidationError):
        Slo(ttft_s=0, tpot_s=1)
