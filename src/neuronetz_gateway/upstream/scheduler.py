"""Backend slots, and tenant-fair queues for the requests that find none free.

Ollama runs ``OLLAMA_NUM_PARALLEL`` requests per model and queues the rest in arrival
order, so one tenant's batch stalls everybody. The gateway therefore never sends a
backend more concurrent model requests than its ``capacity``; the excess waits here, in
one queue per tenant, served in weighted round robin.

Contract of a ``Scheduler`` (both implementations pass ``tests/integration/scheduling``):
    * ``acquire`` returns a ``Slot`` on the first candidate, in the order given, that
      has a free slot and no waiting request that could take it; otherwise the request
      waits in its tenant's queue until a slot on any of its candidates frees.
    * Weighted round robin (kept by virtual time, see ``TenantQueues``): backlogged
      tenants take turns of ``weight`` grants; a tenant that starts waiting is served
      after at most ``weight`` grants to each other tenant, usually at the next free
      slot. Within a tenant, first come first served. (``fifo`` serves every waiting
      request in arrival order instead, as Ollama would: the benchmark's baseline.)
    * A wait ends in ``QueueTimeout`` (429) after the request's ``timeout_s`` (default:
      the scheduler's), a cancelled wait (client gone) leaves the queue at once, and a
      tenant whose queue holds ``max_depth_per_tenant`` requests gets ``QueueFull`` (429).
    * ``Slot.release`` frees the slot exactly once, however often it is called, and
      hands it straight to the next waiting request.
    * Failure: the in-process scheduler cannot fail; the Redis one fails closed
      (``ServiceUnavailable``) and bounds a lost slot by a lease (``scheduler_redis``).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Generic, Literal, Protocol, TypeVar

from neuronetz_gateway.errors import RateLimited
from neuronetz_gateway.upstream.backends import Backend

SchedulingPolicy = Literal["fair", "fifo"]
WaitOutcome = Literal["served", "timeout", "left", "failed"]


@dataclass(frozen=True, slots=True)
class SlotRequest:
    """Who is asking for a slot. ``tenant`` (the name) is for metrics only."""

    tenant_id: int
    tenant: str
    weight: int = 1
    timeout_s: float | None = None  # None: the scheduler's default


class QueueFull(RateLimited):
    """The tenant already has ``max_depth_per_tenant`` requests waiting."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(
            "too many requests are waiting for a model server",
            retry_after_s=retry_after_s,
            reason="queue_full",
        )


class QueueTimeout(RateLimited):
    """No slot freed within the wait timeout (the router makes it a 503 when the
    backends are down rather than busy)."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(
            "the model servers are busy; no slot freed in time",
            retry_after_s=retry_after_s,
            reason="queue_timeout",
        )


class Slot:
    """One unit of a backend's capacity, held by one upstream attempt."""

    __slots__ = ("_on_release", "backend")

    def __init__(self, backend: Backend, on_release: Callable[[], None]) -> None:
        self.backend = backend
        self._on_release: Callable[[], None] | None = on_release

    def release(self) -> None:
        """Free the slot; every call after the first does nothing."""
        on_release, self._on_release = self._on_release, None
        if on_release is not None:
            on_release()


class Scheduler(Protocol):
    """Backend slots and the queues in front of them (see the module docstring)."""

    async def acquire(self, candidates: Sequence[Backend], request: SlotRequest) -> Slot:
        """A slot on one of ``candidates`` (non-empty, in preference order), waiting if
        need be. Raises ``QueueFull``, ``QueueTimeout`` or ``ServiceUnavailable``."""
        ...

    def in_use(self, backend: str) -> int:
        """Slots of ``backend`` held through this process."""
        ...

    def waiting(self) -> int:
        """Requests of this process waiting for a slot."""
        ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class SchedulerObserver:
    """Receives queue events (metrics hook)."""

    def queue_depth(self, tenant: str, depth: int) -> None:
        return None

    def queue_wait(self, tenant: str, seconds: float, outcome: WaitOutcome) -> None:
        return None


class HoldTimes:
    """A moving average of how long slots are held: the ``Retry-After`` of a refusal
    (a slot turns over about once per hold time)."""

    def __init__(self, alpha: float = 0.2) -> None:
        self.alpha = alpha
        self.mean_s: float | None = None

    def observe(self, seconds: float) -> None:
        self.mean_s = (
            seconds if self.mean_s is None else self.mean_s + self.alpha * (seconds - self.mean_s)
        )

    def retry_after_s(self) -> float:
        return min(60.0, max(1.0, math.ceil(self.mean_s or 1.0)))


class Waiting(Protocol):
    @property
    def tenant_id(self) -> int: ...

    @property
    def weight(self) -> int: ...

    @property
    def seq(self) -> int: ...

    def accepts(self, backend: str) -> bool: ...


W = TypeVar("W", bound=Waiting)
VIRTUAL_GRANT: Final = 1_000_000
"""Virtual time one grant takes at weight 1 (integers, so Lua and Python agree)."""


class TenantQueues(Generic[W]):
    """Per-tenant FIFO queues and the weighted fair order over them (pure, no I/O).

    Start-time fair queuing: each tenant with waiting requests has a *tag*, the virtual
    time at which its next grant starts. The next request comes from the lowest tag
    (ties: the oldest request); a grant sets the virtual clock to that tag and moves the
    tenant's tag on by ``VIRTUAL_GRANT // weight``. A tenant that starts waiting gets
    ``max(clock, where its last grant ended)``: an idle tenant is served at the next free
    slot, yet no tenant gets ahead of its share by leaving and coming back. Backlogged
    tenants thus take turns of ``weight`` grants each, and a newcomer waits for at most
    ``weight`` grants to each other tenant. ``fifo`` orders by arrival alone.

    ``scheduler.lua`` implements the same rules on Redis; keep the two in step.
    """

    def __init__(self, policy: SchedulingPolicy = "fair") -> None:
        self.policy: SchedulingPolicy = policy
        self.clock = 0
        self._queues: dict[int, deque[W]] = {}
        self._tags: dict[int, int] = {}  # tenants with waiting requests
        self._finish: dict[int, int] = {}  # where each tenant's last grant ended

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def depth(self, tenant_id: int) -> int:
        queue = self._queues.get(tenant_id)
        return 0 if queue is None else len(queue)

    def push(self, item: W) -> None:
        queue = self._queues.get(item.tenant_id)
        if queue is None:
            queue = self._queues[item.tenant_id] = deque()
            self._tags[item.tenant_id] = max(self.clock, self._finish.get(item.tenant_id, 0))
        queue.append(item)

    def remove(self, item: W) -> bool:
        queue = self._queues.get(item.tenant_id)
        if queue is None or item not in queue:
            return False
        queue.remove(item)
        if not queue:
            del self._queues[item.tenant_id], self._tags[item.tenant_id]
        return True

    def pop_for(self, backend: str) -> W | None:
        """The next request, in policy order, that can use ``backend`` (removed)."""
        best: W | None = None
        best_key: tuple[int, ...] = ()
        for tenant, queue in self._queues.items():
            item = next((w for w in queue if w.accepts(backend)), None)
            if item is None:
                continue
            key = (item.seq,) if self.policy == "fifo" else (self._tags[tenant], item.seq)
            if best is None or key < best_key:
                best, best_key = item, key
        if best is None:
            return None
        tenant = best.tenant_id
        queue = self._queues[tenant]
        queue.remove(best)
        tag = self._tags[tenant]
        self.clock = tag
        self._finish[tenant] = tag + VIRTUAL_GRANT // max(1, best.weight)
        if queue:
            self._tags[tenant] = self._finish[tenant]
        else:
            del self._queues[tenant], self._tags[tenant]
        if len(self._finish) > 64 + 4 * len(self._tags):
            self._finish = {t: f for t, f in self._finish.items() if f > self.clock}
        return best


@dataclass(eq=False, slots=True)
class _Waiter:
    request: SlotRequest
    backends: dict[str, Backend]
    seq: int
    future: asyncio.Future[Backend] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def tenant_id(self) -> int:
        return self.request.tenant_id

    @property
    def weight(self) -> int:
        return self.request.weight

    def accepts(self, backend: str) -> bool:
        return backend in self.backends


class MemoryScheduler:
    """The ``Scheduler`` of embedded mode: one process, no I/O.

    Invariant: a backend with a free slot has no waiter that could use it (a freed slot
    goes straight to the next waiter), so ``acquire`` takes a free slot at once.
    """

    def __init__(
        self,
        backends: Sequence[Backend],
        *,
        default_timeout_s: float,
        max_depth_per_tenant: int,
        policy: SchedulingPolicy = "fair",
        observer: SchedulerObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._capacity = {b.name: b.capacity for b in backends}
        self._in_use = dict.fromkeys(self._capacity, 0)
        self._queues: TenantQueues[_Waiter] = TenantQueues(policy)
        self._default_timeout_s = default_timeout_s
        self._max_depth = max_depth_per_tenant
        self._observer = observer or SchedulerObserver()
        self._clock = clock
        self._seq = itertools.count()
        self.hold_times = HoldTimes()

    async def acquire(self, candidates: Sequence[Backend], request: SlotRequest) -> Slot:
        for backend in candidates:
            if self._in_use[backend.name] < self._capacity[backend.name]:
                return self._take(backend)
        if self._queues.depth(request.tenant_id) >= self._max_depth:
            raise QueueFull(self.hold_times.retry_after_s())
        waiter = _Waiter(request, {b.name: b for b in candidates}, next(self._seq))
        self._queues.push(waiter)
        self._observe_depth(request)
        started = self._clock()
        timeout_s = request.timeout_s if request.timeout_s is not None else self._default_timeout_s
        outcome: WaitOutcome = "left"
        try:
            async with asyncio.timeout(timeout_s):
                backend = await waiter.future
            outcome = "served"
        except TimeoutError:
            outcome = "timeout"
            raise QueueTimeout(self.hold_times.retry_after_s()) from None
        finally:
            if outcome != "served":
                if waiter.future.done() and not waiter.future.cancelled():
                    self._free(waiter.future.result())  # granted as it gave up: hand it on
                else:
                    self._queues.remove(waiter)
            self._observe_depth(request)
            self._observer.queue_wait(request.tenant, self._clock() - started, outcome)
        return self._slot(backend)

    def in_use(self, backend: str) -> int:
        return self._in_use.get(backend, 0)

    def waiting(self) -> int:
        return len(self._queues)

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def _take(self, backend: Backend) -> Slot:
        self._in_use[backend.name] += 1
        return self._slot(backend)

    def _slot(self, backend: Backend) -> Slot:
        taken = self._clock()

        def release() -> None:
            self.hold_times.observe(self._clock() - taken)
            self._free(backend)

        return Slot(backend, release)

    def _free(self, backend: Backend) -> None:
        self._in_use[backend.name] -= 1
        while (waiter := self._queues.pop_for(backend.name)) is not None:
            if waiter.future.done():
                continue  # cancelled, and not yet out of the queue
            self._in_use[backend.name] += 1
            waiter.future.set_result(waiter.backends[backend.name])
            return

    def _observe_depth(self, request: SlotRequest) -> None:
        self._observer.queue_depth(request.tenant, self._queues.depth(request.tenant_id))
