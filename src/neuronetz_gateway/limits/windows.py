"""Sliding windows as plain data structures: the in-process arithmetic of RPM and TPM.

``admit.lua`` implements the same rules in Redis; the contract suite checks that both
agree. Times are epoch seconds (floats); no clock is read here.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from .base import TPM_BUCKET_LIFETIME_S, WINDOW_S, ZERO_LIMIT_RETRY_AFTER_S


class SlidingLog:
    """An exact sliding window of events: each counts for ``WINDOW_S`` seconds.

    Holds at most ``limit`` timestamps per window, so memory is bounded by the limit.
    """

    __slots__ = ("_times",)

    def __init__(self) -> None:
        self._times: deque[float] = deque()

    def __len__(self) -> int:
        return len(self._times)

    def trim(self, now: float) -> None:
        times = self._times
        while times and times[0] + WINDOW_S <= now:
            times.popleft()

    def wait_for_room(self, limit: int, now: float) -> float | None:
        """Seconds until one more event fits under ``limit``; ``None`` if it fits now.

        Call :meth:`trim` first.
        """
        count = len(self._times)
        if count < limit:
            return None
        if limit <= 0:
            return ZERO_LIMIT_RETRY_AFTER_S
        # The event that has to leave is the (count - limit + 1)-th oldest.
        return self._times[count - limit] + WINDOW_S - now

    def add(self, now: float) -> None:
        self._times.append(now)


class TokenBuckets:
    """A sliding token window of 1-second buckets (second → amount).

    Amounts added during second ``s`` count while ``now < s + TPM_BUCKET_LIFETIME_S``:
    at most one second longer than the window, never shorter, so no 60-second interval
    holds more than the limit. At most ``TPM_BUCKET_LIFETIME_S`` buckets are kept.
    """

    __slots__ = ("_buckets", "total")

    def __init__(self, buckets: Iterable[tuple[int, int]] = ()) -> None:
        self._buckets: deque[list[int]] = deque([s, v] for s, v in sorted(buckets))
        self.total = sum(v for _, v in self._buckets)

    def trim(self, now: float) -> None:
        buckets = self._buckets
        while buckets and buckets[0][0] + TPM_BUCKET_LIFETIME_S <= now:
            self.total -= buckets.popleft()[1]

    def wait_for(self, amount: int, limit: int, now: float) -> float | None:
        """Seconds until ``amount`` more fits under ``limit``; ``None`` if it fits now.

        Call :meth:`trim` first. An amount larger than the limit never fits.
        """
        excess = self.total + amount - limit
        if excess <= 0:
            return None
        if amount > limit:
            return ZERO_LIMIT_RETRY_AFTER_S
        freed = 0
        for second, value in self._buckets:
            freed += value
            if freed >= excess:
                return second + TPM_BUCKET_LIFETIME_S - now
        return ZERO_LIMIT_RETRY_AFTER_S  # unreachable while the total is consistent

    def add(self, now: float, amount: int) -> int:
        """Count ``amount`` in the bucket of ``now``; returns that bucket's second."""
        second = math.floor(now)
        buckets = self._buckets
        if buckets and buckets[-1][0] == second:
            buckets[-1][1] += amount
        else:
            buckets.append([second, amount])
        self.total += amount
        return second

    def adjust(self, second: int, delta: int) -> None:
        """Change the bucket of ``second`` by ``delta`` (not below zero) if still held."""
        for bucket in reversed(self._buckets):
            if bucket[0] == second:
                new = max(0, bucket[1] + delta)
                self.total += new - bucket[1]
                bucket[1] = new
                return
            if bucket[0] < second:
                return
