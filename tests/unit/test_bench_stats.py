"""Percentiles and latency summaries of the benchmark harness."""

from __future__ import annotations

import pytest
from bench.stats import Latency, percentile


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 50, 5.0),
        ([5.0], 99, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([4.0, 1.0, 3.0, 2.0], 50, 2.5),  # order does not matter
        ([1.0, 2.0, 3.0, 4.0, 5.0], 50, 3.0),
        ([float(i) for i in range(1, 101)], 99, 99.01),  # numpy: 99.01
        ([0.0, 10.0], 25, 2.5),
    ],
)
def test_percentile_interpolates_between_closest_ranks(
    values: list[float], q: float, expected: float
) -> None:
    assert percentile(values, q) == pytest.approx(expected)


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], -1), ([1.0], 100.5)])
def test_percentile_refuses_no_values_and_bad_ranks(values: list[float], q: float) -> None:
    with pytest.raises(ValueError):
        percentile(values, q)


def test_latency_reports_milliseconds() -> None:
    latency = Latency.of_seconds([0.001, 0.002, 0.003])
    assert latency.count == 3
    assert latency.p50_ms == pytest.approx(2.0)
    assert latency.p99_ms == pytest.approx(2.98)
    assert latency.mean_ms == pytest.approx(2.0)
