"""A circuit breaker per backend: closed → open after consecutive failures → half-open
after a cool-down (one probe request) → closed on success, open again on failure."""

from __future__ import annotations

import time
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(self, *, failure_threshold: int = 5, cooldown_s: float = 10.0) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if time.monotonic() - self._opened_at >= self.cooldown_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """May a request go to this backend now? In half-open, only one probe at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probing:
            self._probing = True
            return True
        return False

    def retry_after_s(self) -> float:
        if self._opened_at is None:
            return 1.0
        return max(1.0, self.cooldown_s - (time.monotonic() - self._opened_at))

    def record_success(self) -> None:
        self.failures = 0
        self._opened_at = None
        self._probing = False

    def record_failure(self) -> None:
        self.failures += 1
        if self._probing or self.failures >= self.failure_threshold:
            self._opened_at = time.monotonic()
        self._probing = False

    def release_probe(self) -> None:
        """A probe that ended without a verdict (e.g. the client left) frees the slot."""
        self._probing = False
