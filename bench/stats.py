"""Percentiles and latency summaries of measured samples (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation between closest ranks,
    as numpy's default; ``ValueError`` on no values or ``q`` out of range."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class Latency:
    """p50, p99 and mean of one set of latencies, in milliseconds."""

    count: int
    p50_ms: float
    p99_ms: float
    mean_ms: float

    @classmethod
    def of_seconds(cls, samples: Sequence[float]) -> Latency:
        millis = [s * 1000 for s in samples]
        return cls(
            count=len(millis),
            p50_ms=percentile(millis, 50),
            p99_ms=percentile(millis, 99),
            mean_ms=sum(millis) / len(millis),
        )
