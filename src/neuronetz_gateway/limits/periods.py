"""UTC calendar periods for the token budgets: pure arithmetic, no clock reads.

A budget period is named by a compact label that goes into counter key names
(``20250131`` for a day, ``202501`` for a month); the all-time period has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, slots=True)
class Periods:
    """The budget periods an instant falls in, with their bounds."""

    day: str
    month: str
    day_start: datetime
    month_start: datetime
    next_day_start: datetime
    next_month_start: datetime
    day_start_s: float
    """``day_start`` as epoch seconds (and so on): the hot path compares floats."""
    month_start_s: float
    next_day_start_s: float
    next_month_start_s: float


def periods_at(now: float) -> Periods:
    """The UTC day and month containing the epoch instant ``now``."""
    moment = datetime.fromtimestamp(now, UTC)
    day_start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    if month_start.month == 12:
        next_month_start = month_start.replace(year=month_start.year + 1, month=1)
    else:
        next_month_start = month_start.replace(month=month_start.month + 1)
    next_day_start = day_start + timedelta(days=1)
    return Periods(
        day=f"{day_start:%Y%m%d}",
        month=f"{month_start:%Y%m}",
        day_start=day_start,
        month_start=month_start,
        next_day_start=next_day_start,
        next_month_start=next_month_start,
        day_start_s=day_start.timestamp(),
        month_start_s=month_start.timestamp(),
        next_day_start_s=next_day_start.timestamp(),
        next_month_start_s=next_month_start.timestamp(),
    )


def seconds_until(boundary: float, now: float) -> float:
    """Seconds from ``now`` to the epoch instant ``boundary`` (never negative)."""
    return max(0.0, boundary - now)


class PeriodCache:
    """``periods_at`` memoised for the current day: admissions mostly share one."""

    __slots__ = ("_from", "_periods", "_until")

    def __init__(self) -> None:
        self._from = 0.0
        self._until = 0.0
        self._periods: Periods | None = None

    def at(self, now: float) -> Periods:
        periods = self._periods
        if periods is None or not self._from <= now < self._until:
            periods = self._periods = periods_at(now)
            self._from = periods.day_start_s
            self._until = periods.next_day_start_s
        return periods
