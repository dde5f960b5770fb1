"""The ``Scheduler`` contract, run against the in-process scheduler and the Redis one.

Where a test asks for several gateways, the in-process case gets the same scheduler
each time (one process), the Redis case one ``RedisScheduler`` per gateway on the one
real Redis of ``tests/fixtures/redis.py``: what one gateway queues, another serves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pydantic import AnyHttpUrl

from neuronetz_gateway.settings import BackendSpec
from neuronetz_gateway.upstream.backends import Backend, UpstreamTimeouts
from neuronetz_gateway.upstream.scheduler import (
    MemoryScheduler,
    QueueFull,
    QueueTimeout,
    Scheduler,
    Slot,
    SlotRequest,
)
from neuronetz_gateway.upstream.scheduler_redis import RedisScheduler

# Queue order must not depend on how loaded the machine is: generous Redis timeouts here.
REDIS_TIMEOUT_S = 5.0
A = SlotRequest(1, "a-corp")
B = SlotRequest(2, "b-corp")
C = SlotRequest(3, "c-corp")

MakeSchedulers = Callable[..., Awaitable[list[Any]]]


def make_backends(**capacities: int) -> list[Backend]:
    return [
        Backend(
            BackendSpec(name=name, url=AnyHttpUrl("http://127.0.0.1:9"), parallel=parallel),
            timeouts=UpstreamTimeouts(1.0, 1.0),
            max_connections=1,
            default_parallel=4,
        )
        for name, parallel in capacities.items()
    ]


@pytest.fixture(params=["memory", "redis"])
def redis_or_none(request: pytest.FixtureRequest) -> str | None:
    if request.param == "memory":
        return None
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
async def make_schedulers(redis_or_none: str | None) -> AsyncIterator[MakeSchedulers]:
    """``await make_schedulers(backends, gateways=1, **options)``: one scheduler per gateway."""
    made: list[Any] = []

    async def make(
        backends: list[Backend],
        gateways: int = 1,
        *,
        depth: int = 100,
        timeout_s: float = 10.0,
        policy: str = "fair",
    ) -> list[Any]:
        if redis_or_none is None:
            one = MemoryScheduler(
                backends,
                default_timeout_s=timeout_s,
                max_depth_per_tenant=depth,
                policy=policy,  # type: ignore[arg-type]
            )
            return [one] * gateways
        out = []
        for _ in range(gateways):
            scheduler = RedisScheduler(
                redis_or_none,
                backends,
                default_timeout_s=timeout_s,
                max_depth_per_tenant=depth,
                policy=policy,  # type: ignore[arg-type]
                timeout_s=REDIS_TIMEOUT_S,
                poll_s=0.1,
            )
            await scheduler.start()
            made.append(scheduler)
            out.append(scheduler)
        return out

    yield make
    for scheduler in made:
        await scheduler.aclose()


async def enqueue(
    scheduler: Any, backends: list[Backend], request: SlotRequest
) -> asyncio.Task[Slot]:
    """Start a wait and return once it is queued (so queue order is the call order)."""
    before = scheduler.waiting()
    task = asyncio.create_task(scheduler.acquire(backends, request))
    async with asyncio.timeout(5):
        while scheduler.waiting() == before and not task.done():
            await asyncio.sleep(0.005)
    assert not task.done(), "expected the request to wait"
    return task


async def serve_one_by_one(held: Slot, waiting: dict[str, asyncio.Task[Slot]]) -> list[str]:
    """With capacity 1: release the held slot, see who gets it, repeat until all served."""
    order: list[str] = []
    current = held
    pending = dict(waiting)
    while pending:
        current.release()
        done, _ = await asyncio.wait(
            pending.values(), timeout=5, return_when=asyncio.FIRST_COMPLETED
        )
        assert len(done) == 1, f"expected one grant, got {len(done)}"
        label = next(k for k, t in pending.items() if t in done)
        order.append(label)
        current = pending.pop(label).result()
    current.release()
    return order


async def test_free_slots_in_candidate_order_then_a_wait(make_schedulers: MakeSchedulers) -> None:
    backends = make_backends(a=1, b=2)
    (scheduler,) = await make_schedulers(backends)
    slots = [await scheduler.acquire(backends, A) for _ in range(3)]
    assert [s.backend.name for s in slots] == ["a", "b", "b"]
    assert (scheduler.in_use("a"), scheduler.in_use("b")) == (1, 2)
    waiting = await enqueue(scheduler, backends, B)
    slots[0].release()
    slot = await asyncio.wait_for(waiting, 5)
    assert slot.backend.name == "a"
    for held in [*slots[1:], slot]:
        held.release()
    assert (scheduler.in_use("a"), scheduler.in_use("b")) == (0, 0)
    # Everything freed: the next request takes a slot at once.
    (await asyncio.wait_for(scheduler.acquire(backends, C), 1)).release()


async def test_round_robin_across_gateways(make_schedulers: MakeSchedulers) -> None:
    backends = make_backends(a=1)
    first, second = await make_schedulers(backends, 2)
    held = await first.acquire(backends, A)
    waiting = {f"A{i}": await enqueue(first, backends, A) for i in range(4)}
    waiting["B0"] = await enqueue(second, backends, B)
    order = await serve_one_by_one(held, waiting)
    assert order == ["A0", "B0", "A1", "A2", "A3"]


async def test_weights(make_schedulers: MakeSchedulers) -> None:
    backends = make_backends(a=1)
    (scheduler,) = await make_schedulers(backends)
    heavy = SlotRequest(1, "a-corp", weight=3)
    held = await scheduler.acquire(backends, heavy)
    waiting = {f"A{i}": await enqueue(scheduler, backends, heavy) for i in range(5)}
    waiting |= {f"B{i}": await enqueue(scheduler, backends, B) for i in range(2)}
    waiting["C0"] = await enqueue(scheduler, backends, C)
    order = await serve_one_by_one(held, waiting)
    # All start at the same virtual time (oldest first); then A gets 3 grants per B's one.
    assert order == ["A0", "B0", "C0", "A1", "A2", "A3", "B1", "A4"]


async def test_fifo_policy(make_schedulers: MakeSchedulers) -> None:
    backends = make_backends(a=1)
    (scheduler,) = await make_schedulers(backends, policy="fifo")
    held = await scheduler.acquire(backends, A)
    waiting = {f"A{i}": await enqueue(scheduler, backends, A) for i in range(3)}
    waiting["B0"] = await enqueue(scheduler, backends, B)
    assert await serve_one_by_one(held, waiting) == ["A0", "A1", "A2", "B0"]


async def test_a_wait_times_out_and_leaves_the_queue(make_schedulers: MakeSchedulers) -> None:
    backends = make_backends(a=1)
    (scheduler,) = await make_schedulers(backends)
    held = await scheduler.acquire(backends, A)
    with pytest.raises(QueueTimeout) as caught:
        await scheduler.acquire(backends, SlotRequest(2, "b-corp", timeout_s=0.2))
    assert caught.value.status == 429 and int(caught.value.headers["Retry-After"]) >= 1
    after = await enqueue(scheduler, backends, C)
    held.release()
    (await asyncio.wait_for(after, 5)).release()
    assert scheduler.in_use("a") == 0


async def test_a_cancelled_wait_leaves_the_queue(make_schedulers: MakeSchedulers) -> None:
    backends = make_backends(a=1)
    first, second = await make_schedulers(backends, 2)
    held = await first.acquire(backends, A)
    gone = await enqueue(second, backends, B)
    stays = await enqueue(first, backends, C)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    await asyncio.sleep(0.05)  # the leave reaches the store
    held.release()
    slot = await asyncio.wait_for(stays, 5)
    assert slot.backend.name == "a"
    slot.release()
    await asyncio.sleep(0.05)
    assert first.in_use("a") == 0 and second.in_use("a") == 0
    # The slot was not lost to the cancelled request.
    (await asyncio.wait_for(second.acquire(backends, B), 5)).release()


async def test_depth_cap_per_tenant(make_schedulers: MakeSchedulers) -> None:
    backends = make_backends(a=1)
    (scheduler,) = await make_schedulers(backends, depth=2)
    held = await scheduler.acquire(backends, A)
    waiting = [await enqueue(scheduler, backends, A) for _ in range(2)]
    with pytest.raises(QueueFull) as caught:
        await scheduler.acquire(backends, A)
    assert caught.value.status == 429 and caught.value.reason == "queue_full"
    other = await enqueue(scheduler, backends, B)  # B's queue is its own
    for task in [*waiting, other]:
        task.cancel()
    await asyncio.gather(*waiting, other, return_exceptions=True)
    held.release()


async def test_release_frees_once(make_schedulers: MakeSchedulers) -> None:
    backends = make_backends(a=2)
    (scheduler,) = await make_schedulers(backends)
    first = await scheduler.acquire(backends, A)
    second = await scheduler.acquire(backends, A)
    first.release()
    first.release()
    third = await scheduler.acquire(backends, A)
    waiting = await enqueue(scheduler, backends, B)  # the double release freed nothing extra
    second.release()
    (await asyncio.wait_for(waiting, 5)).release()
    third.release()


async def test_capacity_holds_across_gateways(make_schedulers: MakeSchedulers) -> None:
    backends = make_backends(a=2)
    schedulers = await make_schedulers(backends, 3)
    holding = 0
    peak = 0

    async def use(scheduler: Scheduler, request: SlotRequest) -> None:
        nonlocal holding, peak
        slot = await scheduler.acquire(backends, request)
        holding += 1
        peak = max(peak, holding)
        await asyncio.sleep(0.01)
        holding -= 1
        slot.release()

    await asyncio.gather(
        *(use(schedulers[i % 3], (A, B, C)[i % 3]) for i in range(30)),
    )
    assert peak == 2
