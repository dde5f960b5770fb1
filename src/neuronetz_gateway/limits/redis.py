"""Redis limit store for scale-out mode: one global limit for any number of gateways.

Algorithm (the same as ``memory``, see ``base`` for the worst-case burst):
    * RPM: a sorted set per subject of request ids scored by admission time (ms): an
      exact sliding 60-s log, trimmed at each admission.
    * TPM: a hash per subject of 1-second buckets (second → tokens), 61 s of them.
    * Concurrency: a sorted set per subject of request ids scored by lease expiry;
      expired leases are dropped at each admission, settle removes the member, so a
      request that is never settled (crash, lost settle) frees its slot after
      ``lease_s`` at the latest.
    * Budgets: a hash per subject and period (``t`` tokens, ``g`` generation).
      A missing hash means "unknown", never zero.

``admit.lua`` checks every limit of every subject, then counts everywhere, in one
script (EVALSHA, with EVAL on NOSCRIPT). When it finds a budget counter missing (first
sight, Redis restart, FLUSHALL, eviction) it changes nothing and names the counters;
the store reads ``UsageSource.spent_since`` for them (once per counter however many
admissions are waiting), adds the reservations this process still holds open (and
restores their concurrency slots), and ``seed.lua`` creates each counter only if it is
still missing, under a fresh generation; then admission is retried. A reservation the
rebuilt counter includes settles by the difference; one it never saw (admitted by
another process before the loss) settles by adding its real usage. Until they settle,
other processes' in-flight reservations are missing from a rebuilt counter, and the
RPM/TPM windows (61 s of history) are not rebuilt: the only ways a loss can let more
through than the limits.

Fail closed: every Redis call runs under ``timeout_s`` with no client retries (through
the pipelined ``redis_scripts.ScriptClient``); any Redis error or timeout raises
``ServiceUnavailable``. The client reconnects by itself on the next call once Redis is
back.

Key names hold only the kind, the numeric id and the period (``nz:lim:bud:key:7:d:20250131``);
auth-failure keys hold a digest of the client address, never the address.
Every key has a TTL: windows 2 min, concurrency lease + 2 min, day 2 days, month
62 days, total 30 days (then rebuilt from the usage records).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from redis.exceptions import RedisError

from ..errors import GatewayError, ServiceUnavailable
from ..redis_scripts import Arg, Script, ScriptClient
from .base import (
    DEFAULT_LEASE_S,
    TOTAL_BUDGET_RETRY_AFTER_S,
    WINDOW_S,
    ZERO_LIMIT_RETRY_AFTER_S,
    BudgetPeriod,
    Charge,
    Counts,
    Limits,
    Reason,
    Reservation,
    Subject,
    UsageSource,
    check_admission,
    quota_after,
)
from .periods import PeriodCache, Periods, seconds_until
from .rebuild import Rebuilds
from .refusal import MESSAGES, Refusal
from .windows import TokenBuckets

DEFAULT_TIMEOUT_S: Final = 0.25
_WINDOW_TTL_MS: Final = 2 * WINDOW_S * 1000
_DAY_TTL_MS: Final = 2 * 86_400_000
_MONTH_TTL_MS: Final = 62 * 86_400_000
_TOTAL_TTL_MS: Final = 30 * 86_400_000
_SEED_ATTEMPTS: Final = 3
_PERIODS: Final[tuple[BudgetPeriod, ...]] = ("day", "month", "total")


@dataclass(slots=True)
class _Open:
    """A reservation this process admitted and has not settled yet."""

    reservation: Reservation
    lease_until: float
    generations: list[list[str]]
    """Per subject, the (day, month, total) counter generations it is counted in."""


class RedisLimitStore:
    """``LimitStore`` on Redis; shared by every gateway process using the same Redis.

    Gateway clocks should be NTP-synchronised: windows are computed from the admitting
    process's clock, so a skew between processes shifts them by the skew.
    """

    in_process = False

    def __init__(
        self,
        url: str,
        usage: UsageSource,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        key_prefix: str = "nz:lim:",
        clock: Callable[[], float] = time.time,
        client: ScriptClient | None = None,
    ) -> None:
        """``client``: a connection shared with other users of ``url`` (the caller closes
        it); by default the store opens its own with ``timeout_s``."""
        self._owns_client = client is None
        self._redis = client or ScriptClient(url, timeout_s=timeout_s)
        self._usage = usage
        self._lease_s = lease_s
        self._prefix = key_prefix
        self._clock = clock
        self._periods = PeriodCache()
        self._rebuilds: Rebuilds[str] = Rebuilds()
        self._open: OrderedDict[str, _Open] = OrderedDict()
        self._admit_lua = Script.load(__package__, "admit.lua")
        self._settle_lua = Script.load(__package__, "settle.lua")
        self._seed_lua = Script.load(__package__, "seed.lua")
        self._auth_lua = Script.load(__package__, "auth_failure.lua")

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
        subjects = tuple(subjects)
        self._expire_leases(now)
        periods = self._periods.at(now)
        keys = [key for subject in subjects for key in self._admission_keys(subject, periods)]
        args: list[int | str] = [
            math.floor(now * 1000),
            tokens,
            request_id,
            math.ceil(self._lease_s * 1000),
            _WINDOW_TTL_MS,
            math.ceil(seconds_until(periods.next_day_start_s, now) * 1000),
            math.ceil(seconds_until(periods.next_month_start_s, now) * 1000),
            math.ceil(TOTAL_BUDGET_RETRY_AFTER_S * 1000),
            math.ceil(ZERO_LIMIT_RETRY_AFTER_S * 1000),
        ]
        for subject in subjects:
            args.extend(_limit_args(subject.limits))
        for _ in range(_SEED_ATTEMPTS):
            if request_id in self._open:
                raise ValueError("request id already admitted")
            looked = self._rebuilds.mark()
            reply = await self._eval(self._admit_lua, keys, args)
            status = int(reply[0])
            if status == 0:
                return self._admitted(request_id, subjects, tokens, now, periods, reply)
            if status == 1:
                reason = cast(Reason, reply[1])
                if reason not in MESSAGES:
                    raise ServiceUnavailable("limit store answered an unknown reason")
                raise Refusal(int(reply[2]) / 1000, reason).error()
            # Budget counters are keys 4..6 of each subject's six (1-based).
            located = {keys[int(k) - 1]: divmod(int(k) - 1, 6) for k in reply[1]}
            await self._rebuilds.run(
                list(located),
                functools.partial(self._seed, subjects, periods, located, now),
                since=looked,
            )
        raise ServiceUnavailable("limit counters keep disappearing")

    async def settle(self, reservation: Reservation, used_tokens: int) -> None:
        entry = self._open.pop(reservation.request_id, None)
        if entry is None:
            return
        # A rebuild started before this point may have counted this reservation and
        # restored its slot: settle after it, so that it cannot re-add the slot later.
        await self._rebuilds.settled()
        periods = (reservation.day, reservation.month)
        keys: list[str] = []
        args: list[int | str] = [
            reservation.request_id,
            max(0, used_tokens) - reservation.tokens,
            max(0, used_tokens),
        ]
        for subject, charge, generations in zip(
            reservation.subjects, reservation.charges, entry.generations, strict=True
        ):
            base = f"{self._prefix}%s:{subject.kind}:{subject.id}"
            keys += [base % "tpm", base % "conc", *self._budget_keys(subject, *periods)]
            second = -1 if charge.tpm_second is None else charge.tpm_second
            args += [second, int(charge.slot), *generations]
        try:
            await self._eval(self._settle_lua, keys, args)
        except ServiceUnavailable:
            # Keep it open so that a retried settle works; the lease bounds it anyway.
            self._open[reservation.request_id] = entry
            raise

    async def check_auth_throttle(
        self, client_ip: str, limit_per_min: int, *, now: float | None = None
    ) -> float | None:
        if limit_per_min <= 0:
            return None
        if now is None:
            now = self._clock()
        try:
            flat: list[str] = await self._redis.execute("HGETALL", self._auth_key(client_ip))
        except RedisError as exc:
            raise ServiceUnavailable("limit store unavailable") from exc
        pairs = zip(flat[::2], flat[1::2], strict=True)
        buckets = TokenBuckets((int(second), int(count)) for second, count in pairs)
        buckets.trim(now)
        return buckets.wait_for(1, limit_per_min, now)

    async def record_auth_failure(self, client_ip: str, *, now: float | None = None) -> None:
        if now is None:
            now = self._clock()
        await self._eval(
            self._auth_lua, [self._auth_key(client_ip)], [math.floor(now), _WINDOW_TTL_MS]
        )

    async def ping(self) -> bool:
        try:
            await self._redis.execute("PING")
        except RedisError:
            return False
        return True

    async def aclose(self) -> None:
        if self._owns_client:
            await self._redis.aclose()

    def _admitted(
        self,
        request_id: str,
        subjects: tuple[Subject, ...],
        tokens: int,
        now: float,
        periods: Periods,
        reply: list[Any],
    ) -> Reservation:
        second = int(reply[1])
        charges: list[Charge] = []
        counts: list[Counts] = []
        generations: list[list[str]] = []
        for i, subject in enumerate(subjects):
            values = reply[2 + 8 * i : 10 + 8 * i]
            gens = [str(g) for g in values[5:8]]
            limits = subject.limits
            charges.append(
                Charge(
                    tpm_second=second if limits.tpm is not None else None,
                    slot=limits.concurrent is not None,
                    generations=(gens[0], gens[1], gens[2]),
                )
            )
            counts.append(Counts(*(int(v) for v in values[:5])))
            generations.append(gens)
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
        self._open[request_id] = _Open(reservation, now + self._lease_s, generations)
        return reservation

    async def _seed(
        self,
        subjects: tuple[Subject, ...],
        periods: Periods,
        located: dict[str, tuple[int, int]],
        now: float,
        fresh: list[str],
    ) -> None:
        """Rebuild the missing counters ``fresh`` from the usage records.

        ``located`` maps a counter key to (subject index, key index among its six).
        """
        missing = [(located[name][0], located[name][1] - 3) for name in fresh]
        since = (periods.day_start, periods.month_start, None)
        try:
            spent = await asyncio.gather(
                *(
                    self._usage.spent_since(subjects[i].kind, subjects[i].id, since[p])
                    for i, p in missing
                )
            )
        except GatewayError:
            raise
        except Exception as exc:
            raise ServiceUnavailable("usage records unavailable") from exc

        generation = secrets.token_hex(8)
        labels = (periods.day, periods.month)
        ttls = (_DAY_TTL_MS, _MONTH_TTL_MS, _TOTAL_TTL_MS)
        keys: list[str] = []
        args: list[int | str] = [generation, len(missing), math.ceil(self._lease_s * 1000)]
        counted: list[list[tuple[_Open, int]]] = []
        for (i, p), value in zip(missing, spent, strict=True):
            subject = subjects[i]
            keys.append(self._budget_keys(subject, *labels)[p])
            # This process's open reservations are not in the usage records yet.
            included = [
                (entry, j)
                for entry, j in self._open_for(subject)
                if p == 2 or (entry.reservation.day, entry.reservation.month)[p] == labels[p]
            ]
            value += sum(entry.reservation.tokens for entry, _ in included)
            counted.append(included)
            args += [value, ttls[p]]
        # Restore this process's held slots too, so a flush does not open the gates.
        for i in sorted({i for i, _ in missing}):
            subject = subjects[i]
            if subject.limits.concurrent is None:
                continue
            held = [
                (entry.lease_until, entry.reservation.request_id)
                for entry, j in self._open_for(subject)
                if entry.reservation.charges[j].slot and entry.lease_until > now
            ]
            keys.append(f"{self._prefix}conc:{subject.kind}:{subject.id}")
            args.append(len(held))
            for lease_until, request_id in held:
                args += [math.ceil(lease_until * 1000), request_id]
        seeded = await self._eval(self._seed_lua, keys, args)
        # Settles wait for running rebuilds (see ``settle``), so no settle of a counted
        # reservation ran in between: from now on it settles by the difference.
        for (_, p), flag, included in zip(missing, seeded, counted, strict=True):
            if int(flag) == 1:
                for entry, j in included:
                    entry.generations[j][p] = generation

    def _open_for(self, subject: Subject) -> list[tuple[_Open, int]]:
        found = []
        for entry in self._open.values():
            for j, other in enumerate(entry.reservation.subjects):
                if other.kind == subject.kind and other.id == subject.id:
                    found.append((entry, j))
        return found

    def _expire_leases(self, now: float) -> None:
        open_ = self._open
        while open_ and next(iter(open_.values())).lease_until <= now:
            open_.popitem(last=False)

    def _admission_keys(self, subject: Subject, periods: Periods) -> list[str]:
        base = f"{self._prefix}%s:{subject.kind}:{subject.id}"
        return [
            base % "rpm",
            base % "tpm",
            base % "conc",
            *self._budget_keys(subject, periods.day, periods.month),
        ]

    def _budget_keys(self, subject: Subject, day: str, month: str) -> tuple[str, str, str]:
        base = f"{self._prefix}bud:{subject.kind}:{subject.id}"
        return f"{base}:d:{day}", f"{base}:m:{month}", f"{base}:t"

    def _auth_key(self, client_ip: str) -> str:
        digest = hashlib.sha256(client_ip.encode()).hexdigest()[:32]
        return f"{self._prefix}auth:{digest}"

    async def _eval(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> list[Any]:
        """Run a script; fail closed on any Redis trouble (the client bounds it by the
        timeout)."""
        try:
            reply = await self._redis.run(script, keys, args)
        except RedisError as exc:
            raise ServiceUnavailable("limit store unavailable") from exc
        return cast(list[Any], reply)


def _limit_args(limits: Limits) -> list[int]:
    values = (
        limits.rpm,
        limits.tpm,
        limits.concurrent,
        limits.daily_budget,
        limits.monthly_budget,
        limits.total_budget,
    )
    return [-1 if value is None else value for value in values]
