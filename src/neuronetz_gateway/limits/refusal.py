"""Choosing among refusals: the limit that frees last is the one the client waits for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ..errors import RateLimited
from .base import Reason

MESSAGES: Final[dict[Reason, str]] = {
    "rpm": "request rate limit exceeded",
    "tpm": "token rate limit exceeded",
    "concurrency": "too many concurrent requests",
    "budget_day": "daily token budget exhausted",
    "budget_month": "monthly token budget exhausted",
    "budget_total": "token budget exhausted",
}


@dataclass(frozen=True, slots=True)
class Refusal:
    wait_s: float
    reason: Reason

    @classmethod
    def of(cls, wait_s: float | None, reason: Reason) -> Refusal | None:
        return None if wait_s is None else cls(wait_s, reason)

    def error(self) -> RateLimited:
        return RateLimited(MESSAGES[self.reason], retry_after_s=self.wait_s, reason=self.reason)


def refused(current: Refusal | None, candidate: Refusal | None) -> Refusal | None:
    """The binding refusal of two: the longer wait (the first one on a tie)."""
    if current is None:
        return candidate
    if candidate is None or candidate.wait_s <= current.wait_s:
        return current
    return candidate
