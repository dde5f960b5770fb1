"""UTC period boundaries of the token budgets."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from neuronetz_gateway.limits.periods import PeriodCache, periods_at, seconds_until


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("moment", "day", "month", "next_day", "next_month"),
    [
        ("2025-03-15T12:34:56", "20250315", "202503", "2025-03-16", "2025-04-01"),
        ("2025-03-15T00:00:00", "20250315", "202503", "2025-03-16", "2025-04-01"),
        ("2025-03-15T23:59:59.999999", "20250315", "202503", "2025-03-16", "2025-04-01"),
        ("2025-03-31T23:59:59", "20250331", "202503", "2025-04-01", "2025-04-01"),
        ("2025-12-31T23:00:00", "20251231", "202512", "2026-01-01", "2026-01-01"),
        ("2026-01-01T00:00:00", "20260101", "202601", "2026-01-02", "2026-02-01"),
        ("2024-02-28T10:00:00", "20240228", "202402", "2024-02-29", "2024-03-01"),
        ("2024-02-29T10:00:00", "20240229", "202402", "2024-03-01", "2024-03-01"),
        ("2025-02-28T10:00:00", "20250228", "202502", "2025-03-01", "2025-03-01"),
    ],
)
def test_periods_at(moment: str, day: str, month: str, next_day: str, next_month: str) -> None:
    periods = periods_at(ts(moment))
    assert periods.day == day
    assert periods.month == month
    assert periods.day_start.timestamp() == ts(f"{day[:4]}-{day[4:6]}-{day[6:]}T00:00:00")
    assert periods.month_start.timestamp() == ts(f"{month[:4]}-{month[4:]}-01T00:00:00")
    assert periods.next_day_start.timestamp() == ts(f"{next_day}T00:00:00")
    assert periods.next_month_start.timestamp() == ts(f"{next_month}T00:00:00")
    assert periods.day_start_s == periods.day_start.timestamp()
    assert periods.month_start_s == periods.month_start.timestamp()
    assert periods.next_day_start_s == periods.next_day_start.timestamp()
    assert periods.next_month_start_s == periods.next_month_start.timestamp()


def test_periods_are_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "XST-14")  # UTC+14: already the next calendar day
    time.tzset()
    try:
        periods = periods_at(ts("2025-03-15T20:00:00"))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert periods.day == "20250315"


@pytest.mark.parametrize(
    ("moment", "boundary", "expected"),
    [
        ("2025-03-15T23:59:30", "2025-03-16T00:00:00", 30.0),
        ("2025-03-16T00:00:00", "2025-03-16T00:00:00", 0.0),
        ("2025-03-16T00:00:01", "2025-03-16T00:00:00", 0.0),
        ("2025-03-31T00:00:00", "2025-04-01T00:00:00", 86_400.0),
    ],
)
def test_seconds_until(moment: str, boundary: str, expected: float) -> None:
    assert seconds_until(ts(boundary), ts(moment)) == expected


def test_period_cache_follows_the_day() -> None:
    cache = PeriodCache()
    assert cache.at(ts("2025-03-31T23:59:59")).day == "20250331"
    assert cache.at(ts("2025-03-31T00:00:00")).day == "20250331"
    assert cache.at(ts("2025-04-01T00:00:00")).month == "202504"
    assert cache.at(ts("2025-03-31T12:00:00")).month == "202503"
