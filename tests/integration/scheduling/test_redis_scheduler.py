"""What only the Redis scheduler has to get right: crashes, lost messages, outages, cost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio

from neuronetz_gateway.errors import ServiceUnavailable
from neuronetz_gateway.upstream.scheduler import QueueTimeout, SlotRequest
from neuronetz_gateway.upstream.scheduler_redis import RedisScheduler
from tests.fixtures.redis import RedisServer
from tests.integration.scheduling.test_scheduler_contract import enqueue, make_backends

A = SlotRequest(1, "a-corp")
B = SlotRequest(2, "b-corp")
MakeRedisScheduler = Callable[..., Any]


@pytest.fixture
async def make_scheduler(redis_url: str) -> AsyncIterator[MakeRedisScheduler]:
    made: list[RedisScheduler] = []

    async def make(backends: Any, **options: Any) -> RedisScheduler:
        options.setdefault("default_timeout_s", 10.0)
        options.setdefault("max_depth_per_tenant", 100)
        options.setdefault("timeout_s", 5.0)
        options.setdefault("poll_s", 0.1)
        scheduler = RedisScheduler(redis_url, backends, **options)
        await scheduler.start()
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        await scheduler.aclose()


async def test_a_crashed_gateways_slots_lapse_with_their_lease(
    make_scheduler: MakeRedisScheduler,
) -> None:
    backends = make_backends(a=1)
    crashed = await make_scheduler(backends, lease_s=1.0)
    live = await make_scheduler(backends)
    await crashed.acquire(backends, A)
    await crashed.aclose()  # gone without releasing: no heartbeat renews its lease
    started = time.monotonic()
    slot = await asyncio.wait_for(live.acquire(backends, B), 5)
    assert 0.5 <= time.monotonic() - started < 3
    slot.release()


async def test_a_crashed_gateways_queued_requests_are_skipped(
    make_scheduler: MakeRedisScheduler, redis_url: str
) -> None:
    backends = make_backends(a=1)
    crashed = await make_scheduler(backends, lease_s=1.0)
    live = await make_scheduler(backends)
    held = await live.acquire(backends, B)
    # A request queued by the crashed gateway: in Redis, with nobody left to wait for it.
    reply = await crashed._eval("acquire", ["dead-ticket", A.tenant_id, 1, 10_000, 100, 1, "a", 1])
    assert reply[0] == "queued"
    await crashed.aclose()
    waiting = await enqueue(live, backends, SlotRequest(3, "c-corp"))
    await asyncio.sleep(1.2)  # the crashed gateway's lease lapses
    held.release()
    (await asyncio.wait_for(waiting, 2)).release()
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await client.hlen("{nz:sch}:tickets") == 0
    finally:
        await client.aclose()


async def test_a_lost_grant_message_is_made_up_by_the_heartbeat(
    make_scheduler: MakeRedisScheduler,
) -> None:
    backends = make_backends(a=1)
    holder = await make_scheduler(backends)
    deaf = await make_scheduler(backends, poll_s=0.2)
    deaf._tasks[0].cancel()  # its grant channel: no message will arrive
    held = await holder.acquire(backends, A)
    waiting = await enqueue(deaf, backends, B)
    held.release()
    slot = await asyncio.wait_for(waiting, 3)
    assert slot.backend.name == "a"
    slot.release()


async def test_a_grant_that_overtakes_the_queueing_answer_is_kept(
    make_scheduler: MakeRedisScheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    backends = make_backends(a=1)
    holder = await make_scheduler(backends)
    waiter = await make_scheduler(backends)
    held = await holder.acquire(backends, A)
    queueing = waiter._eval

    async def answer_late(op: str, args: Any) -> Any:
        reply = await queueing(op, args)
        if op == "acquire" and reply[0] == "queued":
            held.release()  # the other gateway grants the ticket at once ...
            await asyncio.sleep(0.3)  # ... and its message arrives before this answer
        return reply

    monkeypatch.setattr(waiter, "_eval", answer_late)
    slot = await asyncio.wait_for(waiter.acquire(backends, B), 3)
    assert slot.backend.name == "a"
    slot.release()


async def test_held_slots_survive_a_redis_flush(
    make_scheduler: MakeRedisScheduler, redis_server: RedisServer
) -> None:
    backends = make_backends(a=1)
    holder = await make_scheduler(backends)
    other = await make_scheduler(backends)
    held = await holder.acquire(backends, A)
    redis_server.flushall()
    await holder.tick()  # the heartbeat puts the held slot back
    with pytest.raises(QueueTimeout):
        await other.acquire(backends, SlotRequest(2, "b-corp", timeout_s=0.3))
    held.release()
    await asyncio.sleep(0.1)
    (await asyncio.wait_for(other.acquire(backends, B), 2)).release()


async def test_a_heartbeat_overtaken_by_a_release_does_not_bring_the_slot_back(
    make_scheduler: MakeRedisScheduler,
) -> None:
    backends = make_backends(a=1)
    holder = await make_scheduler(backends)
    other = await make_scheduler(backends)
    held = await holder.acquire(backends, A)
    (ticket,) = holder._held
    held.release()
    await asyncio.sleep(0.1)
    # A heartbeat that listed the slot as held, reaching Redis after the release:
    lost, _ = await holder._eval("tick", [1, ticket, "a", 1, "a", 1, 0])
    assert lost == []
    (await asyncio.wait_for(other.acquire(backends, B), 1)).release()


async def test_one_round_trip_to_take_a_slot_and_one_to_free_it(
    make_scheduler: MakeRedisScheduler, redis_url: str
) -> None:
    backends = make_backends(a=2, b=2)
    scheduler = await make_scheduler(backends)
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)

    async def script_calls() -> int:
        stats = await client.info("commandstats")
        return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))

    try:
        before = await script_calls()
        slot = await scheduler.acquire(backends, A)
        slot.release()
        await asyncio.sleep(0.1)  # the release runs in the background
        assert await script_calls() - before == 2
    finally:
        await client.aclose()


async def test_fails_closed_when_redis_is_down(
    make_scheduler: MakeRedisScheduler, redis_server: RedisServer
) -> None:
    backends = make_backends(a=1)
    scheduler = await make_scheduler(backends, timeout_s=0.5)
    held = await scheduler.acquire(backends, A)
    waiting = await enqueue(scheduler, backends, B)
    redis_server.stop()
    try:
        with pytest.raises(ServiceUnavailable):
            await asyncio.wait_for(waiting, 3)  # the next heartbeat fails every waiter
        with pytest.raises(ServiceUnavailable):
            await scheduler.acquire(backends, B)
        held.release()  # fails in the background; the lease frees the slot
    finally:
        redis_server.start()
