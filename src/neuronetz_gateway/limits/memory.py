"""In-process limit store for embedded mode (one gateway process, one event loop).

Same contract as the Redis store (see ``base`` for the windows and their worst-case
burst): RPM is an exact sliding log, TPM and the auth-failure throttle are 1-second
buckets over 61 s, budgets are UTC day/month/all-time counters seeded from the
``UsageSource`` the first time a subject/period is seen (the SQL store is the truth
after a restart). Admission proper runs without an ``await``, so the event loop makes
it atomic; the only awaits are the seeding reads, done before it.

Cost per admission: O(1) amortised (windows are trimmed from their old end, leases
expire in admission order), memory bounded by the limits and the in-flight requests.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import GatewayError, ServiceUnavailable
from .base import (
    CONCURRENCY_RETRY_AFTER_S,
    DEFAULT_LEASE_S,
    TOTAL_BUDGET_RETRY_AFTER_S,
    BudgetPeriod,
    Charge,
    Counts,
    Reservation,
    Subject,
    SubjectKind,
    UsageSource,
    check_admission,
    quota_after,
)
from .periods import PeriodCache, Periods, seconds_until
from .rebuild import Rebuilds
from .refusal import Refusal, refused
from .windows import SlidingLog, TokenBuckets

_SubjectKey = tuple[SubjectKind, int]
_Counter = tuple[SubjectKind, int, BudgetPeriod, str]


@dataclass(slots=True)
class _SubjectState:
    requests: SlidingLog = field(default_factory=SlidingLog)
    tokens: TokenBuckets = field(default_factory=TokenBuckets)
    slots: int = 0
    # Budget counters hold the latest period seen only; -inf means not seeded yet.
    day: str = ""
    day_start: float = -math.inf
    day_spent: int = 0
    month: str = ""
    month_start: float = -math.inf
    month_spent: int = 0
    total_seeded: bool = False
    total_spent: int = 0


@dataclass(slots=True)
class _Open:
    reservation: Reservation
    lease_until: float


class MemoryLimitStore:
    """``LimitStore`` for a single process. Not shared between workers."""

    in_process = True

    def __init__(
        self,
        usage: UsageSource,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._usage = usage
        self._lease_s = lease_s
        self._clock = clock
        self._periods = PeriodCache()
        self._rebuilds: Rebuilds[_Counter] = Rebuilds()
        self._subjects: dict[_SubjectKey, _SubjectState] = {}
        # In admission order, hence in lease-expiry order.
        self._open: OrderedDict[str, _Open] = OrderedDict()
        self._auth_failures: OrderedDict[str, TokenBuckets] = OrderedDict()

    async def admit(
        self,
        request_id: str,
        subjects: Sequence[Subject],
        tokens: int,
        *,
        now: float | None = None,
    ) -> Reservation:
        check_admission(subjects, tokens)
        if now is None:
            now = self._clock()
        while True:
            periods = self._periods.at(now)
            states = [self._state(subject) for subject in subjects]
            day_start = periods.day_start_s
            month_start = periods.month_start_s
            for st in states:
                # Seeded for exactly this day and month: the common case, checked first.
                if not (
                    st.day_start == day_start and st.month_start == month_start and st.total_seeded
                ):
                    break
            else:
                # No await from here on: the event loop makes the admission atomic.
                return self._admit_seeded(request_id, tuple(subjects), states, tokens, now, periods)
            # A concurrent admission with a later clock reading may have moved a counter
            # to the next day (it straddled midnight): count this one there as well.
            latest = max(max(st.day_start, st.month_start) for st in states)
            if latest > day_start:
                now = latest
                continue
            missing = [
                (subject.kind, subject.id, period)
                for subject, state in zip(subjects, states, strict=True)
                for period in _unseeded(state, periods)
            ]
            if not missing:
                # No await from here on: the event loop makes the admission atomic.
                return self._admit_seeded(request_id, tuple(subjects), states, tokens, now, periods)
            # The day label keeps rebuilds of two days apart around midnight.
            await self._rebuilds.run(
                [(*counter, periods.day) for counter in missing],
                functools.partial(self._seed, periods=periods),
            )

    async def settle(self, reservation: Reservation, used_tokens: int) -> None:
        entry = self._open.pop(reservation.request_id, None)
        if entry is None:
            return
        delta = max(0, used_tokens) - reservation.tokens
        for subject, charge in zip(reservation.subjects, reservation.charges, strict=True):
            state = self._subjects[(subject.kind, subject.id)]
            if charge.slot:
                state.slots -= 1
            if charge.tpm_second is not None:
                state.tokens.adjust(charge.tpm_second, delta)
            if state.day == reservation.day:
                state.day_spent = max(0, state.day_spent + delta)
            if state.month == reservation.month:
                state.month_spent = max(0, state.month_spent + delta)
            state.total_spent = max(0, state.total_spent + delta)

    async def check_auth_throttle(
        self, client_ip: str, limit_per_min: int, *, now: float | None = None
    ) -> float | None:
        if limit_per_min <= 0:
            return None
        buckets = self._auth_failures.get(client_ip)
        if buckets is None:
            return None
        if now is None:
            now = self._clock()
        buckets.trim(now)
        return buckets.wait_for(1, limit_per_min, now)

    async def record_auth_failure(self, client_ip: str, *, now: float | None = None) -> None:
        if now is None:
            now = self._clock()
        failures = self._auth_failures
        buckets = failures.get(client_ip)
        if buckets is None:
            buckets = failures[client_ip] = TokenBuckets()
        else:
            failures.move_to_end(client_ip)
        buckets.add(now, 1)
        # Least recently failing first: forget addresses whose window emptied.
        while failures:
            oldest = next(iter(failures.values()))
            oldest.trim(now)
            if oldest.total > 0:
                break
            failures.popitem(last=False)

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._subjects.clear()
        self._open.clear()
        self._auth_failures.clear()

    def _state(self, subject: Subject) -> _SubjectState:
        key = (subject.kind, subject.id)
        state = self._subjects.get(key)
        if state is None:
            state = self._subjects[key] = _SubjectState()
        return state

    async def _seed(self, missing: list[_Counter], *, periods: Periods) -> None:
        """Load budget counters not seen yet (this period) from the usage records."""
        since = {"day": periods.day_start, "month": periods.month_start, "total": None}
        try:
            spent = await asyncio.gather(
                *(self._usage.spent_since(kind, id_, since[p]) for kind, id_, p, _ in missing)
            )
        except GatewayError:
            raise
        except Exception as exc:
            raise ServiceUnavailable("usage records unavailable") from exc
        day_start = periods.day_start_s
        month_start = periods.month_start_s
        # Only forward, only if still missing: an admission that seeded meanwhile has
        # counted on top of its value, and a later period must not be overwritten.
        for (kind, id_, period, _), value in zip(missing, spent, strict=True):
            state = self._subjects[(kind, id_)]
            if period == "day" and state.day_start < day_start:
                state.day, state.day_start, state.day_spent = periods.day, day_start, value
            elif period == "month" and state.month_start < month_start:
                state.month, state.month_start = periods.month, month_start
                state.month_spent = value
            elif period == "total" and not state.total_seeded:
                state.total_seeded, state.total_spent = True, value

    def _admit_seeded(
        self,
        request_id: str,
        subjects: tuple[Subject, ...],
        states: list[_SubjectState],
        tokens: int,
        now: float,
        periods: Periods,
    ) -> Reservation:
        open_ = self._open
        if request_id in open_:
            raise ValueError("request id already admitted")
        if open_:
            self._expire_leases(now)

        refusal: Refusal | None = None
        for subject, state in zip(subjects, states, strict=True):
            found = self._check(subject, state, tokens, now, periods)
            if found is not None:
                refusal = refused(refusal, found)
        if refusal is not None:
            raise refusal.error()

        charges: list[Charge] = []
        counts: list[Counts] = []
        for subject, state in zip(subjects, states, strict=True):
            limits = subject.limits
            requests = state.requests
            if limits.rpm is not None:
                requests.add(now)
            buckets = state.tokens
            second = buckets.add(now, tokens) if limits.tpm is not None else None
            slot = limits.concurrent is not None
            if slot:
                state.slots += 1
            state.day_spent += tokens
            state.month_spent += tokens
            state.total_spent += tokens
            charges.append(Charge(second, slot))
            counts.append(
                Counts(
                    len(requests),
                    buckets.total,
                    state.day_spent,
                    state.month_spent,
                    state.total_spent,
                )
            )
        reservation = Reservation(
            request_id=request_id,
            subjects=subjects,
            tokens=tokens,
            admitted_at=now,
            quota=quota_after(subjects, counts),
            day=periods.day,
            month=periods.month,
            charges=tuple(charges),
        )
        self._open[request_id] = _Open(reservation, now + self._lease_s)
        return reservation

    @staticmethod
    def _check(
        subject: Subject, state: _SubjectState, tokens: int, now: float, periods: Periods
    ) -> Refusal | None:
        limits = subject.limits
        refusal: Refusal | None = None
        if limits.rpm is not None:
            state.requests.trim(now)
            wait = state.requests.wait_for_room(limits.rpm, now)
            refusal = refused(refusal, Refusal.of(wait, "rpm"))
        if limits.tpm is not None:
            state.tokens.trim(now)
            wait = state.tokens.wait_for(tokens, limits.tpm, now)
            refusal = refused(refusal, Refusal.of(wait, "tpm"))
        if limits.concurrent is not None and state.slots >= limits.concurrent:
            refusal = refused(refusal, Refusal(CONCURRENCY_RETRY_AFTER_S, "concurrency"))
        if limits.daily_budget is not None and state.day_spent + tokens > limits.daily_budget:
            wait = seconds_until(periods.next_day_start_s, now)
            refusal = refused(refusal, Refusal(wait, "budget_day"))
        if limits.monthly_budget is not None and state.month_spent + tokens > limits.monthly_budget:
            wait = seconds_until(periods.next_month_start_s, now)
            refusal = refused(refusal, Refusal(wait, "budget_month"))
        if limits.total_budget is not None and state.total_spent + tokens > limits.total_budget:
            refusal = refused(refusal, Refusal(TOTAL_BUDGET_RETRY_AFTER_S, "budget_total"))
        return refusal

    def _expire_leases(self, now: float) -> None:
        """Free the slots of reservations never settled within their lease."""
        open_ = self._open
        while open_:
            entry = next(iter(open_.values()))
            if entry.lease_until > now:
                return
            open_.popitem(last=False)
            reservation = entry.reservation
            for subject, charge in zip(reservation.subjects, reservation.charges, strict=True):
                if charge.slot:
                    self._subjects[(subject.kind, subject.id)].slots -= 1


def _unseeded(state: _SubjectState, periods: Periods) -> list[BudgetPeriod]:
    missing: list[BudgetPeriod] = []
    if state.day_start < periods.day_start_s:
        missing.append("day")
    if state.month_start < periods.month_start_s:
        missing.append("month")
    if not state.total_seeded:
        missing.append("total")
    return missing
