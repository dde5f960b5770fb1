"""Sliding-window arithmetic, the binding refusal and the quota headers."""

from __future__ import annotations

import pytest

from neuronetz_gateway.limits.base import Counts, Limits, Subject, quota_after
from neuronetz_gateway.limits.refusal import Refusal, refused
from neuronetz_gateway.limits.windows import SlidingLog, TokenBuckets

T = 1_000_000.0


def test_sliding_log_waits_for_the_binding_event() -> None:
    log = SlidingLog()
    for offset in (0.0, 10.0, 20.0):
        log.add(T + offset)
    assert log.wait_for_room(4, T + 30) is None
    assert log.wait_for_room(3, T + 30) == pytest.approx(30.0)  # T+0 leaves at T+60
    assert log.wait_for_room(2, T + 30) == pytest.approx(40.0)  # T+10 has to leave too
    assert log.wait_for_room(0, T + 30) == 60.0
    log.trim(T + 60)
    assert len(log) == 2
    assert log.wait_for_room(3, T + 60) is None


def test_token_buckets_count_61_seconds_at_most() -> None:
    buckets = TokenBuckets()
    assert buckets.add(T + 0.9, 60) == int(T)
    buckets.add(T + 30.2, 40)
    assert buckets.total == 100
    assert buckets.wait_for(1, 100, T + 40) == pytest.approx(21.0)  # bucket T leaves at T+61
    assert buckets.wait_for(41, 100, T + 40) == pytest.approx(21.0)
    assert buckets.wait_for(61, 100, T + 40) == pytest.approx(51.0)  # both buckets
    assert buckets.wait_for(101, 100, T + 40) == 60.0  # never fits
    buckets.trim(T + 60.99)
    assert buckets.total == 100
    buckets.trim(T + 61)
    assert buckets.total == 40


def test_token_buckets_adjust_only_held_buckets() -> None:
    buckets = TokenBuckets([(int(T), 50), (int(T) + 5, 30)])
    buckets.adjust(int(T), -45)
    buckets.adjust(int(T) + 3, 10)  # no such bucket: nothing
    buckets.adjust(int(T) + 5, -100)  # never below zero
    assert buckets.total == 5


def test_the_longest_wait_binds() -> None:
    rpm = Refusal(12.0, "rpm")
    day = Refusal(3600.0, "budget_day")
    assert refused(None, rpm) is rpm
    assert refused(rpm, None) is rpm
    assert refused(rpm, day) is day
    assert refused(day, rpm) is day
    error = Refusal(0.2, "concurrency").error()
    assert error.retry_after_s == 1
    assert error.headers["Retry-After"] == "1"
    assert error.reason == "concurrency"


def test_quota_takes_the_least_remaining_of_each_limit() -> None:
    key = Subject("key", 1, Limits(rpm=10, tpm=1000, daily_budget=5000))
    tenant = Subject("tenant", 2, Limits(rpm=100, monthly_budget=800, total_budget=10_000))
    quota = quota_after(
        [key, tenant],
        [Counts(3, 400, 400, 400, 400), Counts(95, 900, 700, 700, 9000)],
    )
    assert (quota.limit_requests, quota.remaining_requests) == (100, 5)
    assert (quota.limit_tokens, quota.remaining_tokens) == (1000, 600)
    assert (quota.budget_period, quota.budget_remaining) == ("month", 100)


def test_quota_without_limits_is_empty() -> None:
    quota = quota_after([Subject("key", 1, Limits())], [Counts(1, 1, 1, 1, 1)])
    assert quota.limit_requests is None
    assert quota.remaining_tokens is None
    assert quota.budget_period is None
