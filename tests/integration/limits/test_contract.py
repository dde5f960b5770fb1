"""The ``LimitStore`` contract, run against the in-process store and the Redis store.

The Redis store runs on the real Redis of ``tests/fixtures/redis.py``. The usage source
is a list of rows: it stands for the SQL usage records, not for Redis.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import re
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Protocol

import pytest
import redis.asyncio

from neuronetz_gateway.errors import RateLimited, ServiceUnavailable
from neuronetz_gateway.limits.base import (
    Limits,
    LimitStore,
    Reservation,
    Subject,
    SubjectKind,
    UsageSource,
)
from neuronetz_gateway.limits.memory import MemoryLimitStore
from neuronetz_gateway.limits.redis import RedisLimitStore
from tests.fixtures.redis import RedisServer


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


T0 = ts("2025-03-15T12:00:00")
# Counting must not depend on how loaded the machine is: the Redis stores of the counting
# tests get a generous timeout; the fail-closed tests use the production default.
COUNTING_TIMEOUT_S = 5.0
_ids = itertools.count()


def next_id() -> str:
    return f"req-{next(_ids)}"


class RecordedUsage:
    """Usage rows as the SQL store keeps them, attributed to the admission time."""

    def __init__(self) -> None:
        self.rows: list[tuple[SubjectKind, int, float, int]] = []
        self.reads = 0

    async def spent_since(self, kind: SubjectKind, subject_id: int, since: datetime | None) -> int:
        self.reads += 1
        start = -math.inf if since is None else since.timestamp()
        return sum(
            tokens
            for row_kind, row_id, at, tokens in self.rows
            if row_kind == kind and row_id == subject_id and at >= start
        )

    def record(self, reservation: Reservation, used: int) -> None:
        for subject in reservation.subjects:
            self.rows.append((subject.kind, subject.id, reservation.admitted_at, used))


class BrokenUsage:
    async def spent_since(self, kind: SubjectKind, subject_id: int, since: datetime | None) -> int:
        raise ConnectionError("database is down")


class MakeStore(Protocol):
    def __call__(self, *, lease_s: float = ..., usage: UsageSource | None = ...) -> LimitStore: ...


@pytest.fixture(params=["memory", "redis"])
def redis_or_none(request: pytest.FixtureRequest) -> str | None:
    """``None`` for the in-process store, else the URL of a flushed real Redis."""
    if request.param == "memory":
        return None
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
def usage() -> RecordedUsage:
    return RecordedUsage()


@pytest.fixture
async def make_store(redis_or_none: str | None, usage: RecordedUsage) -> AsyncIterator[MakeStore]:
    stores: list[LimitStore] = []

    def make(*, lease_s: float = 900.0, usage: UsageSource | None = None) -> LimitStore:
        source = usage or default_usage
        store: LimitStore
        if redis_or_none is None:
            store = MemoryLimitStore(source, lease_s=lease_s)
        else:
            store = RedisLimitStore(
                redis_or_none, source, lease_s=lease_s, timeout_s=COUNTING_TIMEOUT_S
            )
        stores.append(store)
        return store

    default_usage = usage
    yield make
    for store in stores:
        await store.aclose()


@pytest.fixture
def store(make_store: MakeStore) -> LimitStore:
    return make_store()


@pytest.fixture
async def redis_stores(redis_url: str, usage: RecordedUsage) -> AsyncIterator[list[LimitStore]]:
    """Two Redis stores on one Redis: two gateway processes (Redis-only tests)."""
    stores: list[LimitStore] = [
        RedisLimitStore(redis_url, usage, timeout_s=COUNTING_TIMEOUT_S) for _ in range(2)
    ]
    yield stores
    for store in stores:
        await store.aclose()


@pytest.fixture
def redis_store(redis_stores: list[LimitStore]) -> LimitStore:
    return redis_stores[0]


@pytest.fixture
async def default_redis_store(redis_url: str, usage: RecordedUsage) -> AsyncIterator[LimitStore]:
    """A Redis store with the production timeout (``DEFAULT_TIMEOUT_S``)."""
    store = RedisLimitStore(redis_url, usage)
    yield store
    await store.aclose()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


def key(id_: int = 1, **limits: int) -> Subject:
    return Subject("key", id_, Limits(**limits))


def tenant(id_: int = 1, **limits: int) -> Subject:
    return Subject("tenant", id_, Limits(**limits))


async def attempt(
    store: LimitStore, subjects: Sequence[Subject], tokens: int, now: float | None = None
) -> Reservation | RateLimited:
    try:
        return await store.admit(next_id(), subjects, tokens, now=now)
    except RateLimited as exc:
        return exc


async def admitted(
    store: LimitStore, subjects: Sequence[Subject], tokens: int, now: float | None = None
) -> Reservation:
    result = await attempt(store, subjects, tokens, now)
    assert isinstance(result, Reservation), f"refused: {result}"
    return result


async def refusal(
    store: LimitStore, subjects: Sequence[Subject], tokens: int, now: float | None = None
) -> RateLimited:
    result = await attempt(store, subjects, tokens, now)
    assert isinstance(result, RateLimited), "admitted, expected a refusal"
    return result


async def burst(
    store: LimitStore | list[LimitStore],
    subjects: Sequence[Subject],
    tokens: int,
    n: int,
    now: float | None = None,
) -> tuple[list[Reservation], list[RateLimited]]:
    """``n`` admissions released at once (spread over the stores round-robin)."""
    stores = store if isinstance(store, list) else [store]
    gate = asyncio.Event()

    async def one(i: int) -> Reservation | RateLimited:
        await gate.wait()
        return await attempt(stores[i % len(stores)], subjects, tokens, now)

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks)
    ok = [r for r in results if isinstance(r, Reservation)]
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert len(ok) + len(refused) == n
    return ok, refused


# --- admission under concurrency ---------------------------------------------------------


async def test_barrier_burst_admits_exactly_rpm(store: LimitStore) -> None:
    subjects = [key(rpm=37), tenant()]
    ok, refused = await burst(store, subjects, 10, 100)
    assert len(ok) == 37
    assert len(refused) == 63
    assert {r.reason for r in refused} == {"rpm"}
    assert all(1 <= r.retry_after_s <= 61 for r in refused)
    assert all(r.headers["Retry-After"] == str(r.retry_after_s) for r in refused)


@pytest.mark.parametrize(
    ("budget", "reason"),
    [
        ("daily_budget", "budget_day"),
        ("monthly_budget", "budget_month"),
        ("total_budget", "budget_total"),
    ],
)
async def test_budget_admits_as_many_worst_cases_as_fit(
    store: LimitStore, budget: str, reason: str
) -> None:
    worst = 1000
    limit = 5 * worst + 999
    subjects = [key(**{budget: limit}), tenant()]
    ok, refused = await burst(store, subjects, worst, 50, now=T0)
    assert len(ok) == 5
    assert {r.reason for r in refused} == {reason}
    for reservation in ok:
        await store.settle(reservation, worst)
    last = await admitted(store, subjects, 999, now=T0)
    assert last.quota.budget_remaining == 0  # spend is exactly the budget, never more
    assert (await refusal(store, subjects, 1, now=T0)).reason == reason


async def test_two_gateways_on_one_redis_enforce_one_limit(
    redis_stores: list[LimitStore],
) -> None:
    ok, refused = await burst(redis_stores, [key(rpm=37), tenant(rpm=1000)], 10, 100)
    assert len(ok) == 37
    assert len(refused) == 63


# --- reservations ------------------------------------------------------------------------


async def test_settle_replaces_the_reservation_by_the_usage(store: LimitStore) -> None:
    subjects = [key(daily_budget=1000, tpm=1000), tenant()]
    first = await admitted(store, subjects, 600, now=T0)
    assert (await refusal(store, subjects, 600, now=T0)).reason == "budget_day"
    await store.settle(first, 100)
    second = await admitted(store, subjects, 600, now=T0 + 1)
    assert second.quota.budget_remaining == 300
    assert second.quota.remaining_tokens == 300


async def test_release_frees_everything_but_the_request_count(store: LimitStore) -> None:
    subjects = [key(rpm=2, tpm=100, concurrent=1, daily_budget=100), tenant()]
    first = await admitted(store, subjects, 100, now=T0)
    await store.settle(first, 0)
    second = await admitted(store, subjects, 100, now=T0)
    assert second.quota.remaining_requests == 0
    assert second.quota.remaining_tokens == 0


async def test_settle_is_idempotent(store: LimitStore) -> None:
    subjects = [key(daily_budget=1000, concurrent=2), tenant()]
    first = await admitted(store, subjects, 500, now=T0)
    await admitted(store, subjects, 100, now=T0)
    await store.settle(first, 100)
    await store.settle(first, 100)
    await asyncio.gather(store.settle(first, 0), store.settle(first, 0))
    # Settled once: 100 + 100 spent, one of two slots free.
    third = await admitted(store, subjects, 800, now=T0)
    assert third.quota.budget_remaining == 0
    assert (await refusal(store, subjects, 0, now=T0)).reason == "concurrency"


async def test_settle_after_midnight_adjusts_the_day_of_admission(store: LimitStore) -> None:
    subjects = [key(daily_budget=100), tenant()]
    late = await admitted(store, subjects, 80, now=ts("2025-03-15T23:59:50"))
    early = await admitted(store, subjects, 80, now=ts("2025-03-16T00:00:10"))
    await store.settle(late, 10)
    refused = await refusal(store, subjects, 30, now=ts("2025-03-16T00:00:20"))
    assert refused.reason == "budget_day"
    await store.settle(early, 20)
    await admitted(store, subjects, 80, now=ts("2025-03-16T00:00:30"))


async def test_duplicate_request_id_is_refused(store: LimitStore) -> None:
    await store.admit("same", [key(), tenant()], 1, now=T0)
    with pytest.raises(ValueError, match="already admitted"):
        await store.admit("same", [key(), tenant()], 1, now=T0)


# --- a refusal consumes nothing ----------------------------------------------------------


async def test_a_refusal_consumes_nothing_from_other_limits(store: LimitStore) -> None:
    subjects = [
        key(rpm=10, tpm=10_000, concurrent=1, daily_budget=100_000),
        tenant(rpm=100, tpm=100_000),
    ]
    first = await admitted(store, subjects, 100, now=T0)
    for _ in range(5):
        assert (await refusal(store, subjects, 100, now=T0)).reason == "concurrency"
    await store.settle(first, 100)
    second = await admitted(store, subjects, 100, now=T0)
    assert second.quota.remaining_requests == 8
    assert second.quota.remaining_tokens == 9800
    assert second.quota.budget_remaining == 100_000 - 200


async def test_a_key_refused_leaves_its_tenant_untouched(store: LimitStore) -> None:
    shared = tenant(rpm=5, daily_budget=1000)
    for _ in range(3):
        refused = await refusal(store, [key(1, daily_budget=0), shared], 10, T0)
        assert refused.reason == "budget_day"
    ok, _ = await burst(store, [key(2), shared], 10, 8, now=T0)
    assert len(ok) == 5
    assert ok[0].quota.budget_remaining is not None
    assert min(r.quota.budget_remaining or 0 for r in ok) == 1000 - 50


async def test_key_and_tenant_limits_both_apply(store: LimitStore) -> None:
    shared = tenant(1, rpm=3)
    await admitted(store, [key(1, rpm=10), shared], 1, T0)
    await admitted(store, [key(1, rpm=10), shared], 1, T0)
    await admitted(store, [key(2, rpm=10), shared], 1, T0)
    # The key still has room, its tenant has none.
    assert (await refusal(store, [key(2, rpm=10), shared], 1, T0)).reason == "rpm"
    roomy = tenant(2, rpm=100)
    await admitted(store, [key(3, rpm=1), roomy], 1, T0)
    assert (await refusal(store, [key(3, rpm=1), roomy], 1, T0)).reason == "rpm"


async def test_one_tenant_exhausting_its_budget_leaves_another_untouched(
    store: LimitStore,
) -> None:
    a = [key(1), tenant(1, total_budget=1000)]
    b = [key(2), tenant(2, total_budget=1000)]
    await admitted(store, a, 1000, T0)
    exhausted = await refusal(store, a, 1, T0)
    assert exhausted.reason == "budget_total"
    assert exhausted.retry_after_s == 86_400
    assert (await admitted(store, b, 1000, T0)).quota.budget_remaining == 0


async def test_zero_limits_allow_nothing(store: LimitStore) -> None:
    cases = [
        (key(1, rpm=0), 1, "rpm"),
        (key(2, tpm=100), 101, "tpm"),
        (key(3, concurrent=0), 1, "concurrency"),
        (key(4, total_budget=0), 1, "budget_total"),
    ]
    for subject, tokens, reason in cases:
        assert (await refusal(store, [subject, tenant()], tokens, T0)).reason == reason


async def test_the_limit_that_frees_last_binds(store: LimitStore) -> None:
    subjects = [key(rpm=1, daily_budget=10), tenant()]
    await admitted(store, subjects, 10, now=ts("2025-03-15T23:00:00"))
    refused = await refusal(store, subjects, 10, now=ts("2025-03-15T23:00:00"))
    assert refused.reason == "budget_day"
    assert refused.retry_after_s == 3600


async def test_quota_snapshot_reports_the_binding_subject(store: LimitStore) -> None:
    subjects = [
        key(rpm=10, tpm=1000, daily_budget=5000),
        tenant(rpm=4, monthly_budget=700),
    ]
    quota = (await admitted(store, subjects, 100, T0)).quota
    assert (quota.limit_requests, quota.remaining_requests) == (4, 3)
    assert (quota.limit_tokens, quota.remaining_tokens) == (1000, 900)
    assert (quota.budget_period, quota.budget_remaining) == ("month", 600)


# --- concurrency slots never leak --------------------------------------------------------


async def test_slots_return_to_zero_after_a_storm(store: LimitStore) -> None:
    subjects = [key(concurrent=8), tenant(concurrent=20)]
    rng = random.Random(4)
    outcomes: dict[str, int] = {}

    async def request(i: int) -> None:
        await asyncio.sleep(rng.random() / 100)
        try:
            reservation = await store.admit(f"storm-{i}", subjects, 50)
        except RateLimited:
            outcomes["refused"] = outcomes.get("refused", 0) + 1
            return
        fate = rng.choice(["ok", "error", "double", "racing", "cancelled"])
        outcomes[fate] = outcomes.get(fate, 0) + 1
        try:
            await asyncio.sleep(rng.random() / 100)
            if fate == "error":
                raise RuntimeError("upstream reset")
            if fate == "cancelled":
                raise asyncio.CancelledError
        except (RuntimeError, asyncio.CancelledError):
            await store.settle(reservation, 0)
            return
        await store.settle(reservation, 40)
        if fate == "double":
            await store.settle(reservation, 40)
        if fate == "racing":
            await asyncio.gather(store.settle(reservation, 0), store.settle(reservation, 40))

    await asyncio.gather(*(request(i) for i in range(200)))
    assert sum(outcomes.values()) == 200
    assert outcomes["refused"] > 0
    # All slots are free again: exactly the limit fits, no phantom refusal.
    ok, refused = await burst(store, subjects, 1, 9)
    assert len(ok) == 8
    assert [r.reason for r in refused] == ["concurrency"]


async def test_lease_expiry_frees_slots_never_settled(make_store: MakeStore) -> None:
    store = make_store(lease_s=30)
    subjects = [key(concurrent=2), tenant()]
    await admitted(store, subjects, 1, T0)
    await admitted(store, subjects, 1, T0)
    assert (await refusal(store, subjects, 1, T0 + 29)).reason == "concurrency"
    await admitted(store, subjects, 1, T0 + 30)
    await admitted(store, subjects, 1, T0 + 30)
    assert (await refusal(store, subjects, 1, T0 + 30)).reason == "concurrency"


# --- windows and periods -----------------------------------------------------------------


async def test_rpm_window_slides_exactly(store: LimitStore) -> None:
    subjects = [key(rpm=5), tenant()]
    for i in range(5):
        await admitted(store, subjects, 1, T0 + i)
    assert (await refusal(store, subjects, 1, T0 + 10)).retry_after_s == 50
    assert (await refusal(store, subjects, 1, T0 + 59.5)).retry_after_s == 1
    await admitted(store, subjects, 1, T0 + 60)  # T0 left the window
    refused = await refusal(store, subjects, 1, T0 + 60)  # T0+1 has not
    assert refused.retry_after_s == 1
    await admitted(store, subjects, 1, T0 + 61)
    # Sliding, not fixed: T0+2, T0+3, T0+4 leave one by one.
    assert (await refusal(store, subjects, 1, T0 + 61.5)).retry_after_s == 1
    await admitted(store, subjects, 1, T0 + 62)


async def test_tpm_window_slides_with_one_second_buckets(store: LimitStore) -> None:
    subjects = [key(tpm=100), tenant()]
    await admitted(store, subjects, 60, T0 + 0.5)
    await admitted(store, subjects, 40, T0 + 30)
    refused = await refusal(store, subjects, 1, T0 + 40)
    assert (refused.reason, refused.retry_after_s) == ("tpm", 21)
    await refusal(store, subjects, 1, T0 + 60.9)
    assert (await admitted(store, subjects, 60, T0 + 61)).quota.remaining_tokens == 0
    assert (await refusal(store, subjects, 1, T0 + 61)).retry_after_s == 30


async def test_day_budget_resets_at_utc_midnight(store: LimitStore) -> None:
    subjects = [key(daily_budget=100), tenant()]
    await admitted(store, subjects, 100, ts("2025-03-15T23:59:30"))
    refused = await refusal(store, subjects, 1, ts("2025-03-15T23:59:30"))
    assert (refused.reason, refused.retry_after_s) == ("budget_day", 30)
    await admitted(store, subjects, 100, ts("2025-03-16T00:00:00"))


async def test_month_budget_resets_on_the_first(store: LimitStore) -> None:
    subjects = [key(monthly_budget=100), tenant()]
    await admitted(store, subjects, 100, ts("2025-03-01T00:00:00"))
    refused = await refusal(store, subjects, 1, ts("2025-03-31T23:59:00"))
    assert (refused.reason, refused.retry_after_s) == ("budget_month", 60)
    await admitted(store, subjects, 100, ts("2025-04-01T00:00:00"))


# --- counters rebuilt from the usage records ---------------------------------------------


async def test_counters_start_from_the_usage_records(
    store: LimitStore, usage: RecordedUsage
) -> None:
    usage.rows += [
        ("key", 1, T0 - 3600, 950),  # today
        ("key", 1, ts("2025-03-01T00:00:00"), 3000),  # this month
        ("key", 1, ts("2025-02-01T00:00:00"), 2000),  # before
        ("key", 2, T0 - 3600, 10_000),  # someone else
    ]
    day = [key(daily_budget=1000), tenant()]
    assert (await refusal(store, day, 51, T0)).reason == "budget_day"
    assert (await admitted(store, day, 50, T0)).quota.budget_remaining == 0
    total = [key(total_budget=6100), tenant()]
    assert (await admitted(store, total, 100, T0)).quota.budget_remaining == 0
    month = [key(monthly_budget=4100), tenant()]
    assert (await refusal(store, month, 1, T0)).reason == "budget_month"
    reads = usage.reads
    await admitted(store, [key(), tenant()], 0, T0)
    assert usage.reads == reads  # read once per subject and period, not per request


async def test_a_burst_on_cold_counters_reads_each_counter_once(
    store: LimitStore, usage: RecordedUsage
) -> None:
    ok, _ = await burst(store, [key(daily_budget=10**6), tenant()], 1, 50, now=T0)
    assert len(ok) == 50
    assert usage.reads == 2 * 3  # two subjects, three periods


async def test_usage_records_down_fail_closed(make_store: MakeStore) -> None:
    store = make_store(usage=BrokenUsage())
    with pytest.raises(ServiceUnavailable):
        await store.admit(next_id(), [key(daily_budget=10), tenant()], 1, now=T0)


async def test_flushall_mid_run_keeps_the_budget(
    redis_store: LimitStore,
    usage: RecordedUsage,
    redis_client: redis.asyncio.Redis,
) -> None:
    subjects = [key(daily_budget=10_000, concurrent=10), tenant(daily_budget=50_000)]
    done = [await admitted(redis_store, subjects, 1000, T0) for _ in range(3)]
    for reservation in done:
        usage.record(reservation, 700)  # the pipeline writes usage, then settles
        await redis_store.settle(reservation, 700)
    in_flight = [await admitted(redis_store, subjects, 1000, T0) for _ in range(4)]
    await redis_client.flushall()
    reads = usage.reads
    # Rebuilt: 3 x 700 recorded + 4 x 1000 still reserved = 6100 of 10 000.
    ok, refused = await burst(redis_store, subjects, 1000, 10, now=T0 + 1)
    assert usage.reads == reads + 2 * 3
    assert len(ok) == 3
    assert {r.reason for r in refused} == {"budget_day"}
    for reservation in in_flight + ok:
        usage.record(reservation, 700)
        await redis_store.settle(reservation, 700)
    # Settled against the rebuilt counter: 10 x 700 = 7000 spent.
    last = await admitted(redis_store, subjects, 3000, T0 + 2)
    assert last.quota.budget_remaining == 0
    # Slots of requests in flight during the flush were restored and then released.
    ok, refused = await burst(redis_store, subjects, 0, 10, now=T0 + 2)
    assert (len(ok), [r.reason for r in refused]) == (9, ["concurrency"])


async def test_redis_keys_hold_no_secrets_and_all_expire(
    redis_store: LimitStore,
    redis_client: redis.asyncio.Redis,
) -> None:
    subjects = [key(7, rpm=5, tpm=100, concurrent=2), tenant(3, rpm=5)]
    await redis_store.admit(next_id(), subjects, 10)
    await redis_store.record_auth_failure("203.0.113.9")
    names = sorted([name async for name in redis_client.scan_iter("*")])
    pattern = re.compile(
        r"nz:lim:(?:(?:rpm|tpm|conc):(?:key|tenant):\d+"
        r"|bud:(?:key|tenant):\d+:(?:d:\d{8}|m:\d{6}|t)"
        r"|auth:[0-9a-f]{32})"
    )
    assert len(names) == 3 + 3 + 1 + 3 + 1  # key: 3 windows, 3 budgets; tenant: 1, 3; auth
    for name in names:
        assert pattern.fullmatch(name), name
        assert "203.0.113.9" not in name
        assert await redis_client.pttl(name) > 0, name


async def test_tpm_running_total_agrees_with_the_in_process_store(
    redis_store: LimitStore, usage: RecordedUsage
) -> None:
    """The Redis tpm hash keeps a running total instead of adding up its buckets on every
    admission; a random run of admissions and settlements, with pauses from a tenth of a
    second to several minutes, must decide exactly as the in-process store does."""
    memory = MemoryLimitStore(usage)
    rng = random.Random(9)
    subjects = [key(11, tpm=5000), tenant(11, tpm=8000)]
    now = T0
    open_: list[tuple[Reservation, Reservation]] = []
    for step in range(400):
        now += rng.choice([0.1, 0.4, 1.0, 3.0, 7.0, 20.0]) if step % 97 else 200.0
        if open_ and rng.random() < 0.5:
            on_redis, in_memory = open_.pop(rng.randrange(len(open_)))
            used = rng.randrange(0, 2 * on_redis.tokens + 1)
            await redis_store.settle(on_redis, used)
            await memory.settle(in_memory, used)
            continue
        tokens = rng.randrange(1, 1500)
        request_id = next_id()
        outcomes: list[Reservation | RateLimited] = []
        for store in (redis_store, memory):
            try:
                outcomes.append(await store.admit(request_id, subjects, tokens, now=now))
            except RateLimited as exc:
                outcomes.append(exc)
        on_redis, in_memory = outcomes
        if isinstance(in_memory, Reservation):
            assert isinstance(on_redis, Reservation), f"step {step}: Redis refused {on_redis}"
            assert on_redis.quota.remaining_tokens == in_memory.quota.remaining_tokens, step
            open_.append((on_redis, in_memory))
        else:
            assert isinstance(on_redis, RateLimited), f"step {step}: Redis admitted"
            assert (on_redis.reason, on_redis.retry_after_s) == (
                in_memory.reason,
                in_memory.retry_after_s,
            ), step


async def test_tpm_buckets_without_a_running_total_are_counted(
    redis_store: LimitStore, redis_client: redis.asyncio.Redis
) -> None:
    """A tpm hash written before the running total existed (buckets only) is added up
    once, then kept by the total."""
    second = int(T0)
    await redis_client.hset(
        "nz:lim:tpm:key:12", mapping={str(second - 70): 500, str(second - 30): 70}
    )
    subjects = [key(12, tpm=100), tenant(12)]
    refused = await refusal(redis_store, subjects, 31, T0)  # 70 in the window; 500 left it
    assert (refused.reason, refused.retry_after_s) == ("tpm", 31)
    assert (await admitted(redis_store, subjects, 30, T0)).quota.remaining_tokens == 0
    assert await redis_client.hgetall("nz:lim:tpm:key:12") == {
        str(second - 30): "70",
        str(second): "30",
        "sum": "100",
        "low": str(second - 60),
    }


# --- fail closed -------------------------------------------------------------------------


async def recovered(store: LimitStore, within_s: float = 5.0) -> None:
    """Wait until the same store answers again (a loaded machine may need a few tries)."""
    deadline = time.monotonic() + within_s
    while not await store.ping():
        assert time.monotonic() < deadline, "the store did not recover"
        await asyncio.sleep(0.05)


async def test_redis_down_fails_closed_fast_and_recovers(
    default_redis_store: LimitStore, redis_server: RedisServer
) -> None:
    subjects = [key(concurrent=1, daily_budget=1000), tenant()]
    held = await admitted(default_redis_store, subjects, 100)
    await asyncio.to_thread(redis_server.stop)
    try:
        started = time.perf_counter()
        with pytest.raises(ServiceUnavailable):
            await default_redis_store.admit(next_id(), subjects, 100)
        assert time.perf_counter() - started < 1.0
        assert await default_redis_store.ping() is False
        with pytest.raises(ServiceUnavailable):
            await default_redis_store.settle(held, 100)
        with pytest.raises(ServiceUnavailable):
            await default_redis_store.record_auth_failure("203.0.113.9")
    finally:
        await asyncio.to_thread(redis_server.start)
    await recovered(default_redis_store)
    await default_redis_store.settle(held, 100)  # kept open while Redis was down
    await admitted(default_redis_store, subjects, 100)


async def test_slow_redis_fails_closed_within_the_timeout(
    default_redis_store: LimitStore, redis_client: redis.asyncio.Redis
) -> None:
    subjects = [key(rpm=10), tenant()]
    await admitted(default_redis_store, subjects, 1)
    await redis_client.client_pause(600, all=True)
    started = time.perf_counter()
    with pytest.raises(ServiceUnavailable):
        await default_redis_store.admit(next_id(), subjects, 1)
    assert time.perf_counter() - started < 1.0
    await recovered(default_redis_store)
    await admitted(default_redis_store, subjects, 1)


# --- auth-failure throttle ---------------------------------------------------------------


async def test_auth_failures_throttle_per_address(store: LimitStore) -> None:
    ip = "198.51.100.7"
    for _ in range(4):
        await store.record_auth_failure(ip, now=T0)
    assert await store.check_auth_throttle(ip, 5, now=T0) is None
    await store.record_auth_failure(ip, now=T0 + 0.5)
    assert await store.check_auth_throttle(ip, 5, now=T0 + 1) == pytest.approx(60.0)
    assert await store.check_auth_throttle("198.51.100.8", 5, now=T0 + 1) is None
    assert await store.check_auth_throttle(ip, 0, now=T0 + 1) is None  # 0 disables
    await store.record_auth_failure(ip, now=T0 + 30)
    assert await store.check_auth_throttle(ip, 5, now=T0 + 60.5) == pytest.approx(0.5)
    assert await store.check_auth_throttle(ip, 5, now=T0 + 61) is None
    assert await store.check_auth_throttle(ip, 1, now=T0 + 61) == pytest.approx(30.0)
