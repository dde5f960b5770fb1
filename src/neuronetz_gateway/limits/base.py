"""The limit store contract: one atomic admission per request, settled when it ends.

Two backends implement :class:`LimitStore` — ``memory.MemoryLimitStore`` (embedded mode,
one process) and ``redis.RedisLimitStore`` (scale-out mode, any number of processes) —
and both pass one contract suite (``tests/integration/limits``).

Windows and budgets
    * RPM: an exact sliding 60-second log. A request counts until 60 s after its
      admission, so no 60-second interval ever holds more than ``rpm`` admissions
      (no fixed-window double burst).
    * TPM: a sliding window of 1-second buckets. Tokens admitted during second ``s``
      count until ``s + 61``, so any 60-second interval holds at most ``tpm`` reserved
      tokens; the price of the granularity is that tokens count up to one second longer
      than 60 s, never shorter.
    * Concurrency: one slot per admitted request, held until ``settle`` or until its
      lease (``lease_s``) expires, whichever comes first, so slots can never leak.
    * Budgets: UTC calendar day, UTC calendar month and all time. Every admission adds
      its reserved tokens to all three counters of every subject, limited or not, so a
      limit set later starts from the true spend.

Worst-case burst: ``rpm`` requests and ``tpm`` reserved tokens in any 60-second
interval, all of them possibly in one instant (a sliding window has no boundary burst:
a fixed window would allow ``2 × rpm`` across a minute boundary). A budget is never
exceeded by reservations; settling replaces a reservation by the real usage, which the
gateway caps at the reservation. RPM, TPM and concurrency are tracked only while a
subject has that limit, so a limit set live starts from an empty window. Exceptions
after a Redis counter loss are listed in ``redis``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, Protocol

SubjectKind = Literal["key", "tenant"]
Reason = Literal["rpm", "tpm", "concurrency", "budget_day", "budget_month", "budget_total"]
BudgetPeriod = Literal["day", "month", "total"]

WINDOW_S: Final = 60
"""Length of the RPM and TPM sliding windows."""
TPM_BUCKET_LIFETIME_S: Final = WINDOW_S + 1
"""A TPM bucket for second ``s`` counts while ``now < s + TPM_BUCKET_LIFETIME_S``."""
CONCURRENCY_RETRY_AFTER_S: Final = 1.0
ZERO_LIMIT_RETRY_AFTER_S: Final = float(WINDOW_S)
"""Retry-After when a window can never admit the request (limit 0, or tokens > tpm)."""
TOTAL_BUDGET_RETRY_AFTER_S: Final = 86_400.0
"""Retry-After for an exhausted all-time budget: it never frees by itself, so clients
are told to come back in a day (an operator has to raise the budget)."""
DEFAULT_LEASE_S: Final = 900.0


@dataclass(frozen=True, slots=True)
class Limits:
    """A subject's effective limits. ``None`` means unlimited; ``0`` allows nothing."""

    rpm: int | None = None
    tpm: int | None = None
    concurrent: int | None = None
    daily_budget: int | None = None
    monthly_budget: int | None = None
    total_budget: int | None = None


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a request is counted against: an API key or a tenant, with its limits."""

    kind: SubjectKind
    id: int
    limits: Limits


@dataclass(frozen=True, slots=True)
class QuotaSnapshot:
    """Quota left after this request was counted, for the response headers.

    Each pair comes from the binding subject (the one with the least remaining);
    ``None`` when no subject has that limit.
    """

    limit_requests: int | None
    remaining_requests: int | None
    limit_tokens: int | None
    remaining_tokens: int | None
    budget_period: BudgetPeriod | None
    """The binding (least remaining) budget over all subjects and periods."""
    budget_remaining: int | None


@dataclass(frozen=True, slots=True)
class Charge:
    """What admission counted for one subject, so that settle undoes exactly that."""

    tpm_second: int | None
    """The TPM bucket the tokens went to; ``None`` when the subject has no TPM limit."""
    slot: bool
    """Whether a concurrency slot was taken (only when the subject has a limit)."""
    generations: tuple[str, str, str] = ("", "", "")
    """Incarnations of the (day, month, total) budget counters (Redis only): a counter
    rebuilt after admission did not see this reservation and is settled differently."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """An admitted request's claim on the limits, to be settled exactly once."""

    request_id: str
    subjects: tuple[Subject, ...]
    tokens: int
    """The reserved worst case."""
    admitted_at: float
    """Epoch seconds."""
    quota: QuotaSnapshot
    day: str
    """The UTC day (``YYYYMMDD``) the tokens were counted in."""
    month: str
    """The UTC month (``YYYYMM``) the tokens were counted in."""
    charges: tuple[Charge, ...]
    """One per subject, in the order of ``subjects``."""


class UsageSource(Protocol):
    """Read access to the durable usage records (the SQL store), the source of truth."""

    async def spent_since(self, kind: SubjectKind, subject_id: int, since: datetime | None) -> int:
        """Tokens recorded for this subject since ``since`` (``None``: all time).

        Requests are attributed to the instant they were admitted, so a request
        admitted before midnight and finished after it belongs to the earlier day.
        """
        ...


class LimitStore(Protocol):
    """Counts requests and tokens against limits; shared by all gateway processes.

    Guarantees:
      * ``admit`` is one atomic step over all its subjects: it counts everywhere or
        nowhere. Concurrent admissions never overshoot a limit.
      * Counters that went missing (process restart, Redis restart, flush, eviction)
        are rebuilt from ``UsageSource`` before an admission that needs them, so a
        budget never resets by accident.
      * Fail closed: when the store cannot decide, it raises ``ServiceUnavailable``;
        it never admits unchecked, and recovers by itself when the backend returns.
    """

    in_process: bool
    """True when ``settle`` never suspends (the counters live in this process): a
    cancellation cannot interrupt it, so callers need not shield it."""

    async def admit(
        self,
        request_id: str,
        subjects: Sequence[Subject],
        tokens: int,
        *,
        now: float | None = None,
    ) -> Reservation:
        """Admit one request reserving ``tokens`` (its worst case) for every subject.

        Counts, for every subject: one request in its RPM window, ``tokens`` in its TPM
        window and in its day, month and total budget counters, and one concurrency slot.
        Or refuses with ``RateLimited(retry_after_s=..., reason=...)`` and changes
        nothing: a request refused for one reason consumes nothing from the others.
        When several limits refuse, the reason is the one that frees last, and
        Retry-After is the time until it frees: rpm, until enough counted requests leave
        the 60-s window; tpm, until enough tokens leave it; concurrency, 1 s; day, until
        the next UTC midnight; month, until the first of the next UTC month; total,
        ``TOTAL_BUDGET_RETRY_AFTER_S``. ``request_id`` must be unique per admission.
        ``now`` (epoch seconds) defaults to the wall clock; tests use it to move time.

        Raises ``ServiceUnavailable`` when the store or the ``UsageSource`` is down.
        """
        ...

    async def settle(self, reservation: Reservation, used_tokens: int) -> None:
        """Replace the reservation's tokens by ``used_tokens`` and free its slot.

        Adjusts the TPM bucket and the budget counters of the periods the request was
        admitted in (settling after midnight still corrects the earlier day). RPM is
        untouched: a request was made. ``used_tokens=0`` is the release path. Idempotent
        per ``request_id``: a second settle is a no-op. A reservation not settled within
        the lease is abandoned: its slot is freed, its tokens stay counted at the
        reserved worst case, and a late settle may be a no-op.
        """
        ...

    async def check_auth_throttle(
        self, client_ip: str, limit_per_min: int, *, now: float | None = None
    ) -> float | None:
        """Seconds to wait if ``client_ip`` had ``limit_per_min`` or more auth failures in
        the last 60 s (1-second granularity), else ``None``."""
        ...

    async def record_auth_failure(self, client_ip: str, *, now: float | None = None) -> None:
        """Count one authentication failure for ``client_ip``."""
        ...

    async def ping(self) -> bool:
        """Whether the store can answer now (for readiness probes); never raises."""
        ...

    async def aclose(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...


def check_admission(subjects: Sequence[Subject], tokens: int) -> None:
    """Reject arguments no pipeline should produce (a programming error, not a 4xx)."""
    if not subjects:
        raise ValueError("an admission needs at least one subject")
    if tokens < 0:
        raise ValueError("tokens must not be negative")


@dataclass(frozen=True, slots=True)
class Counts:
    """A subject's counters right after admission, as input to :func:`quota_after`."""

    requests: int
    tokens: int
    day: int
    month: int
    total: int


def quota_after(subjects: Sequence[Subject], counts: Sequence[Counts]) -> QuotaSnapshot:
    """The quota headers: for each limit, the subject with the least remaining binds."""
    requests: tuple[int, int] | None = None
    tokens: tuple[int, int] | None = None
    budget: tuple[int, BudgetPeriod] | None = None
    for subject, count in zip(subjects, counts, strict=True):
        limits = subject.limits
        limit = limits.rpm
        if limit is not None:
            left = max(0, limit - count.requests)
            if requests is None or left < requests[1]:
                requests = (limit, left)
        limit = limits.tpm
        if limit is not None:
            left = max(0, limit - count.tokens)
            if tokens is None or left < tokens[1]:
                tokens = (limit, left)
        # Day, month, total: on a tie the earlier period is named (the one that resets first).
        limit = limits.daily_budget
        if limit is not None:
            left = max(0, limit - count.day)
            if budget is None or left < budget[0]:
                budget = (left, "day")
        limit = limits.monthly_budget
        if limit is not None:
            left = max(0, limit - count.month)
            if budget is None or left < budget[0]:
                budget = (left, "month")
        limit = limits.total_budget
        if limit is not None:
            left = max(0, limit - count.total)
            if budget is None or left < budget[0]:
                budget = (left, "total")
    return QuotaSnapshot(
        limit_requests=requests[0] if requests else None,
        remaining_requests=requests[1] if requests else None,
        limit_tokens=tokens[0] if tokens else None,
        remaining_tokens=tokens[1] if tokens else None,
        budget_period=budget[1] if budget else None,
        budget_remaining=budget[0] if budget else None,
    )
