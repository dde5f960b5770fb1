"""The weighted round robin (pure) and the in-process scheduler's queue mechanics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from pydantic import AnyHttpUrl

from neuronetz_gateway.settings import BackendSpec
from neuronetz_gateway.upstream.backends import Backend, UpstreamTimeouts
from neuronetz_gateway.upstream.scheduler import (
    MemoryScheduler,
    QueueFull,
    QueueTimeout,
    SchedulerObserver,
    Slot,
    SlotRequest,
    TenantQueues,
    WaitOutcome,
)


@dataclass(eq=False)
class Item:
    tenant_id: int
    label: str
    seq: int
    weight: int = 1
    backends: frozenset[str] = field(default_factory=lambda: frozenset({"a"}))

    def accepts(self, backend: str) -> bool:
        return backend in self.backends


class Feeder:
    def __init__(self, queues: TenantQueues[Item]) -> None:
        self.queues = queues
        self.seq = 0

    def push(self, tenant: int, label: str, *, weight: int = 1, backends: str = "a") -> Item:
        self.seq += 1
        item = Item(tenant, label, self.seq, weight, frozenset(backends))
        self.queues.push(item)
        return item

    def drain(self, backend: str = "a") -> list[str]:
        out = []
        while (item := self.queues.pop_for(backend)) is not None:
            out.append(item.label)
        return out


def test_a_returning_tenant_is_served_after_one_grant_of_each_other() -> None:
    feed = Feeder(TenantQueues())
    for i in range(5):
        feed.push(1, f"A{i}")
    feed.push(2, "B0")
    assert feed.drain() == ["A0", "B0", "A1", "A2", "A3", "A4"]


def test_three_tenants_alternate_and_a_newcomer_waits_one_round() -> None:
    feed = Feeder(TenantQueues())
    for i in range(3):
        feed.push(1, f"A{i}")
        feed.push(2, f"B{i}")
    assert feed.queues.pop_for("a").label == "A0"  # type: ignore[union-attr]
    feed.push(3, "C0")  # B still waits at the same virtual time as C, and came first
    assert feed.drain() == ["B0", "C0", "A1", "B1", "A2", "B2"]


def test_weights_give_turns_of_that_many_grants() -> None:
    feed = Feeder(TenantQueues())
    for i in range(6):
        feed.push(1, f"A{i}", weight=3)
    for i in range(3):
        feed.push(2, f"B{i}")
    assert feed.drain() == ["A0", "B0", "A1", "A2", "A3", "B1", "A4", "A5", "B2"]


def test_a_tenant_that_starts_waiting_is_served_at_the_next_grant() -> None:
    feed = Feeder(TenantQueues())
    for i in range(5):
        feed.push(1, f"A{i}")
    assert [feed.queues.pop_for("a").label for _ in range(3)] == ["A0", "A1", "A2"]  # type: ignore[union-attr]
    feed.push(2, "B0")
    assert feed.drain() == ["B0", "A3", "A4"]


def test_coming_back_at_once_gains_nothing_over_waiting() -> None:
    feed = Feeder(TenantQueues())
    for i in range(8):
        feed.push(1, f"A{i}")
    feed.push(2, "B0")
    served: list[str] = []
    for i in range(1, 8):
        item = feed.queues.pop_for("a")
        assert item is not None
        served.append(item.label[0])
        if item.tenant_id == 2:  # B asks again the moment it is served
            feed.push(2, f"B{i}")
    assert "BB" not in "".join(served), served


def test_within_a_tenant_first_come_first_served() -> None:
    feed = Feeder(TenantQueues())
    for i in range(4):
        feed.push(7, f"A{i}", weight=2)
    assert feed.drain() == ["A0", "A1", "A2", "A3"]


def test_only_requests_that_can_use_the_backend_are_picked() -> None:
    feed = Feeder(TenantQueues())
    feed.push(1, "A-on-b", backends="b")
    feed.push(1, "A-on-a", backends="a")
    feed.push(2, "B-on-ab", backends="ab")
    assert feed.queues.pop_for("a").label == "A-on-a"  # type: ignore[union-attr]
    assert feed.queues.pop_for("a").label == "B-on-ab"  # type: ignore[union-attr]
    assert feed.queues.pop_for("a") is None
    assert feed.drain("b") == ["A-on-b"]


def test_removed_requests_are_skipped_and_empty_tenants_leave_the_ring() -> None:
    queues: TenantQueues[Item] = TenantQueues()
    feed = Feeder(queues)
    a0 = feed.push(1, "A0")
    feed.push(1, "A1")
    b0 = feed.push(2, "B0")
    assert queues.remove(b0) is True
    assert queues.remove(b0) is False
    assert queues.depth(2) == 0
    assert queues.remove(a0) is True
    assert len(queues) == 1
    feed.push(2, "B1")
    assert feed.drain() == ["A1", "B1"]


def test_fifo_policy_serves_in_arrival_order_across_tenants() -> None:
    feed = Feeder(TenantQueues("fifo"))
    for i in range(3):
        feed.push(1, f"A{i}")
    feed.push(2, "B0")
    assert feed.drain() == ["A0", "A1", "A2", "B0"]


# --- the in-process scheduler ---------------------------------------------------------------


def backend(name: str, parallel: int) -> Backend:
    return Backend(
        BackendSpec(name=name, url=AnyHttpUrl("http://127.0.0.1:9"), parallel=parallel),
        timeouts=UpstreamTimeouts(1.0, 1.0),
        max_connections=1,
        default_parallel=4,
    )


class Seen(SchedulerObserver):
    def __init__(self) -> None:
        self.depths: list[tuple[str, int]] = []
        self.waits: list[tuple[str, WaitOutcome]] = []

    def queue_depth(self, tenant: str, depth: int) -> None:
        self.depths.append((tenant, depth))

    def queue_wait(self, tenant: str, seconds: float, outcome: WaitOutcome) -> None:
        self.waits.append((tenant, outcome))


def scheduler(
    *backends: Backend, depth: int = 100, timeout_s: float = 5.0
) -> tuple[MemoryScheduler, Seen]:
    seen = Seen()
    sched = MemoryScheduler(
        backends, default_timeout_s=timeout_s, max_depth_per_tenant=depth, observer=seen
    )
    return sched, seen


A = SlotRequest(1, "a-corp")
B = SlotRequest(2, "b-corp")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_free_slots_are_taken_in_candidate_order_then_requests_wait() -> None:
    first, second = backend("first", 1), backend("second", 2)
    sched, _ = scheduler(first, second)
    slots = [await sched.acquire([first, second], A) for _ in range(3)]
    assert [s.backend.name for s in slots] == ["first", "second", "second"]
    waiting = asyncio.create_task(sched.acquire([first, second], A))
    await settle()
    assert not waiting.done() and sched.waiting() == 1
    slots[1].release()
    got = await asyncio.wait_for(waiting, 1)
    assert got.backend.name == "second"
    assert (sched.in_use("first"), sched.in_use("second")) == (1, 2)


async def test_release_is_idempotent_and_hands_the_slot_on_once() -> None:
    only = backend("only", 1)
    sched, _ = scheduler(only)
    held = await sched.acquire([only], A)
    waiters = [asyncio.create_task(sched.acquire([only], B)) for _ in range(2)]
    await settle()
    held.release()
    held.release()
    await settle()
    assert [w.done() for w in waiters] == [True, False]
    assert sched.in_use("only") == 1
    waiters[0].result().release()
    (await asyncio.wait_for(waiters[1], 1)).release()
    assert sched.in_use("only") == 0


async def test_wait_timeout_is_a_429_with_retry_after_and_leaves_the_queue() -> None:
    only = backend("only", 1)
    sched, seen = scheduler(only, timeout_s=30.0)
    held = await sched.acquire([only], A)
    with pytest.raises(QueueTimeout) as caught:
        await sched.acquire([only], SlotRequest(2, "b-corp", timeout_s=0.05))
    assert caught.value.status == 429 and caught.value.reason == "queue_timeout"
    assert int(caught.value.headers["Retry-After"]) >= 1
    assert sched.waiting() == 0 and seen.waits == [("b-corp", "timeout")]
    held.release()
    assert sched.in_use("only") == 0


async def test_a_cancelled_wait_leaves_the_queue_at_once() -> None:
    only = backend("only", 1)
    sched, seen = scheduler(only)
    held = await sched.acquire([only], A)
    gone = asyncio.create_task(sched.acquire([only], B))
    stays = asyncio.create_task(sched.acquire([only], A))
    await settle()
    gone.cancel()
    await settle()
    assert sched.waiting() == 1 and ("b-corp", "left") in seen.waits
    held.release()
    assert (await asyncio.wait_for(stays, 1)).backend is only


async def test_a_grant_racing_a_cancellation_is_handed_on() -> None:
    only = backend("only", 1)
    sched, _ = scheduler(only)
    held = await sched.acquire([only], A)
    racer = asyncio.create_task(sched.acquire([only], B))
    next_in_line = asyncio.create_task(sched.acquire([only], A))
    await settle()
    held.release()  # grants the racer ...
    racer.cancel()  # ... which is cancelled before it runs again
    await settle()
    assert racer.cancelled()
    assert (await asyncio.wait_for(next_in_line, 1)).backend is only
    assert sched.in_use("only") == 1


async def test_depth_cap_per_tenant() -> None:
    only = backend("only", 1)
    sched, _ = scheduler(only, depth=2)
    held = await sched.acquire([only], A)
    waiting = [asyncio.create_task(sched.acquire([only], A)) for _ in range(2)]
    await settle()
    with pytest.raises(QueueFull) as caught:
        await sched.acquire([only], A)
    assert caught.value.status == 429 and "Retry-After" in caught.value.headers
    other = asyncio.create_task(sched.acquire([only], B))  # another tenant's queue is its own
    await settle()
    assert not other.done()
    for task in [*waiting, other]:
        task.cancel()
    await settle()
    held.release()


async def test_zero_depth_refuses_instead_of_queueing() -> None:
    only = backend("only", 1)
    sched, _ = scheduler(only, depth=0)
    held = await sched.acquire([only], A)
    with pytest.raises(QueueFull):
        await sched.acquire([only], B)
    held.release()
    (await sched.acquire([only], B)).release()


async def test_weights_through_the_scheduler() -> None:
    only = backend("only", 1)
    sched, _ = scheduler(only)
    heavy = SlotRequest(1, "a-corp", weight=2)
    held = await sched.acquire([only], heavy)
    order: list[str] = []

    async def want(request: SlotRequest, label: str) -> Slot:
        slot = await sched.acquire([only], request)
        order.append(label)
        return slot

    tasks = [asyncio.create_task(want(heavy, f"A{i}")) for i in range(4)]
    await settle()
    tasks += [asyncio.create_task(want(B, f"B{i}")) for i in range(2)]
    await settle()
    current = held
    for _ in range(6):
        current.release()
        await settle()
        (served,) = [t for t in tasks if t.done()]
        tasks.remove(served)
        current = served.result()
    assert order == ["A0", "B0", "A1", "A2", "B1", "A3"]
    current.release()
    assert sched.in_use("only") == 0
