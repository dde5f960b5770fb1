"""The circuit breaker's states: closed → open → half-open (one probe) → closed or open."""

from __future__ import annotations

import pytest

from neuronetz_gateway.upstream import breaker as breaker_module
from neuronetz_gateway.upstream.breaker import CircuitBreaker


class FakeTime:
    def __init__(self) -> None:
        self.now = 500.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(breaker_module, "time", fake)
    return fake


def test_opens_after_consecutive_failures_only(clock: FakeTime) -> None:
    b = CircuitBreaker(failure_threshold=3, cooldown_s=10)
    b.record_failure()
    b.record_failure()
    b.record_success()  # resets the count
    b.record_failure()
    b.record_failure()
    assert b.state == "closed"
    assert b.allow()
    b.record_failure()
    assert b.state == "open"
    assert not b.allow()


def test_half_open_lets_one_probe_through(clock: FakeTime) -> None:
    b = CircuitBreaker(failure_threshold=1, cooldown_s=10)
    b.record_failure()
    clock.now += 9.9
    assert b.state == "open"
    assert not b.allow()
    assert b.retry_after_s() == pytest.approx(1.0)
    clock.now += 0.1
    assert b.state == "half_open"
    assert b.allow()
    assert not b.allow()  # a second request while the probe runs


def test_probe_success_closes(clock: FakeTime) -> None:
    b = CircuitBreaker(failure_threshold=1, cooldown_s=10)
    b.record_failure()
    clock.now += 10
    assert b.allow()
    b.record_success()
    assert b.state == "closed"
    assert b.allow()
    assert b.allow()


def test_probe_failure_reopens_for_a_full_cooldown(clock: FakeTime) -> None:
    b = CircuitBreaker(failure_threshold=5, cooldown_s=10)
    for _ in range(5):
        b.record_failure()
    clock.now += 10
    assert b.allow()
    b.record_failure()  # one failed probe is enough, whatever the threshold
    assert b.state == "open"
    assert b.retry_after_s() == pytest.approx(10)
    clock.now += 10
    assert b.state == "half_open"


def test_released_probe_frees_the_slot(clock: FakeTime) -> None:
    b = CircuitBreaker(failure_threshold=1, cooldown_s=1)
    b.record_failure()
    clock.now += 1
    assert b.allow()
    assert not b.allow()
    b.release_probe()  # e.g. the client left during the probe
    assert b.state == "half_open"
    assert b.allow()


def test_retry_after_when_closed_is_one_second(clock: FakeTime) -> None:
    assert CircuitBreaker().retry_after_s() == 1.0
