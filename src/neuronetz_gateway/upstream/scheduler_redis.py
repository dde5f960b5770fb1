"""The ``Scheduler`` of scale-out mode: a backend's capacity is global across gateways.

Redis holds, per backend, a sorted set of the slots in use (ticket → lease expiry), and
the tenant queues with their virtual-time tags (see ``scheduler.lua`` for the keys). All
of it changes only inside ``scheduler.lua``, one atomic script per step:

    acquire  take a free slot on the first candidate that has one and no queued ticket
             that could use it; else queue the ticket (or refuse: depth cap)
    release  free a slot and hand it to the next queued ticket in fair order
    leave    a waiting request gave up: out of the queue (or its slot back, if it was
             granted in the meantime)
    tick     this gateway's heartbeat: renew its lease and its slots' leases; while it
             has waiters, hand out slots freed by expiry and report each waiter's state

A slot freed by ``release`` goes straight to its new holder, whose gateway learns it from
a message on its own pub/sub channel, or at its next tick (every ``poll_s`` while it has
waiters) if the message was lost. A request costs one round trip to take a slot and one
to free it when nothing is queued; waiting costs no round trip of its own.

Crashes: a slot's lease (``lease_s``) is renewed by its gateway's tick every
``lease_s / 3``; a dead gateway's slots lapse within ``lease_s``, and its queued tickets
are skipped once its own lease lapses. A live gateway's tick puts back the slots it holds
if Redis lost them (restart, flush), so a loss cannot open the gates.

Fail closed: every Redis call runs under ``timeout_s``; an error raises
``ServiceUnavailable`` for the request that made it, a failed tick fails every waiting
request of this gateway, and a failed release leaves the slot to its lease. Leases use
Redis's clock (``TIME``), never the gateways'.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import time
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Final

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from neuronetz_gateway.errors import ServiceUnavailable
from neuronetz_gateway.redis_scripts import Script, ScriptClient
from neuronetz_gateway.upstream.backends import Backend
from neuronetz_gateway.upstream.scheduler import (
    HoldTimes,
    QueueFull,
    QueueTimeout,
    SchedulerObserver,
    SchedulingPolicy,
    Slot,
    SlotRequest,
    WaitOutcome,
)

log = structlog.get_logger("neuronetz.scheduler")

DEFAULT_LEASE_S: Final = 15.0
DEFAULT_POLL_S: Final = 0.5
DEFAULT_PREFIX: Final = "{nz:sch}:"  # one hash tag: one cluster slot for every key


@dataclass(eq=False, slots=True)
class _Waiter:
    request: SlotRequest
    backends: dict[str, Backend]
    future: asyncio.Future[str]
    queued: bool = False  # False until the acquire script's answer is in


class RedisScheduler:
    """``Scheduler`` on Redis, shared by every gateway using the same Redis and prefix.

    Every gateway must be configured with the same backends and capacities.
    """

    def __init__(
        self,
        url: str,
        backends: Sequence[Backend],
        *,
        default_timeout_s: float,
        max_depth_per_tenant: int,
        policy: SchedulingPolicy = "fair",
        observer: SchedulerObserver | None = None,
        timeout_s: float = 0.5,
        lease_s: float = DEFAULT_LEASE_S,
        poll_s: float = DEFAULT_POLL_S,
        key_prefix: str = DEFAULT_PREFIX,
        client: ScriptClient | None = None,
    ) -> None:
        # A shared ``client`` (e.g. the limit store's) batches both stores' calls into
        # one write; its owner closes it.
        self._owns_client = client is None
        self._redis = client or ScriptClient(url, timeout_s=timeout_s)
        # Pub/sub idles between messages: no read timeout, a PING keeps it honest.
        self._channel_client: Redis = Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=timeout_s,
            health_check_interval=10,
            retry=Retry(NoBackoff(), 0),
        )
        self._capacity = {b.name: b.capacity for b in backends}
        self._default_timeout_s = default_timeout_s
        self._max_depth = max_depth_per_tenant
        self._policy: SchedulingPolicy = policy
        self._observer = observer or SchedulerObserver()
        self._timeout_s = timeout_s
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._prefix = key_prefix
        self.instance = secrets.token_hex(8)
        self._script = Script.load(__package__, "scheduler.lua")
        self._held: dict[str, str] = {}  # ticket → backend
        self._held_count: Counter[str] = Counter()
        self._waiting: dict[str, _Waiter] = {}
        self._depth: Counter[int] = Counter()
        self._background: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._last_tick = -math.inf
        self.hold_times = HoldTimes()

    # --- the Scheduler protocol ------------------------------------------------------------

    async def acquire(self, candidates: Sequence[Backend], request: SlotRequest) -> Slot:
        ticket = secrets.token_hex(12)
        timeout_s = request.timeout_s if request.timeout_s is not None else self._default_timeout_s
        args: list[str | int] = [
            ticket,
            request.tenant_id,
            max(1, request.weight),
            math.ceil(timeout_s * 1000),
            self._max_depth,
            len(candidates),
        ]
        for backend in candidates:
            args += [backend.name, backend.capacity]
        # Known before the script runs: another gateway's release may grant the ticket
        # and its message overtake this script's answer.
        waiter = _Waiter(
            request, {b.name: b for b in candidates}, asyncio.get_running_loop().create_future()
        )
        self._waiting[ticket] = waiter
        try:
            reply = await self._eval("acquire", args)
        except BaseException:
            del self._waiting[ticket]  # a grant that still comes is given back
            raise
        if reply[0] != "queued":
            del self._waiting[ticket]
        if reply[0] == "granted":
            return self._hold(waiter.backends[reply[1]], ticket)
        if reply[0] == "full":
            raise QueueFull(self.hold_times.retry_after_s())
        waiter.queued = True
        return await self._wait(ticket, waiter, timeout_s)

    def in_use(self, backend: str) -> int:
        return self._held_count[backend]

    def waiting(self) -> int:
        return sum(w.queued for w in self._waiting.values())

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="scheduler-grants"),
            asyncio.create_task(self._maintain(), name="scheduler-heartbeat"),
        ]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(1.0, self._timeout_s)):
                await self._subscribed.wait()

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._background:  # releases still on their way to Redis
            await asyncio.wait(self._background, timeout=2 * self._timeout_s)
        await self._channel_client.aclose()
        if self._owns_client:
            await self._redis.aclose()

    # --- waiting ---------------------------------------------------------------------------

    async def _wait(self, ticket: str, waiter: _Waiter, timeout_s: float) -> Slot:
        request = waiter.request
        self._wake.set()
        self._count_waiting(request, +1)
        started = time.monotonic()
        outcome: WaitOutcome = "left"
        try:
            async with asyncio.timeout(timeout_s):
                name = await waiter.future
            outcome = "served"
        except TimeoutError:
            outcome = "timeout"
            raise QueueTimeout(self.hold_times.retry_after_s()) from None
        except ServiceUnavailable:
            outcome = "failed"
            raise
        finally:
            del self._waiting[ticket]
            self._count_waiting(request, -1)
            self._observer.queue_wait(request.tenant, time.monotonic() - started, outcome)
            if outcome != "served":
                future = waiter.future
                if future.done() and not future.cancelled() and future.exception() is None:
                    self._spawn(self._release_remote(ticket, future.result()))
                else:
                    self._spawn(self._leave(ticket, list(waiter.backends.values())))
        return self._hold(waiter.backends[name], ticket)

    def _count_waiting(self, request: SlotRequest, delta: int) -> None:
        self._depth[request.tenant_id] += delta
        depth = self._depth[request.tenant_id]
        if depth <= 0:
            del self._depth[request.tenant_id]
        self._observer.queue_depth(request.tenant, max(0, depth))

    def _granted(self, ticket: str, backend: str) -> None:
        waiter = self._waiting.get(ticket)
        if waiter is not None:
            if not waiter.future.done() and backend in waiter.backends:
                waiter.future.set_result(backend)
        elif ticket not in self._held:
            # The wait ended before the grant arrived: the slot goes to the next in line.
            self._spawn(self._release_remote(ticket, backend))

    def _fail_waiters(self, message: str) -> None:
        for waiter in self._waiting.values():
            if not waiter.future.done():
                waiter.future.set_exception(ServiceUnavailable(message))

    # --- holding ---------------------------------------------------------------------------

    def _hold(self, backend: Backend, ticket: str) -> Slot:
        self._held[ticket] = backend.name
        self._held_count[backend.name] += 1
        taken = time.monotonic()

        def release() -> None:
            if self._held.pop(ticket, None) is not None:
                self._held_count[backend.name] -= 1
            self.hold_times.observe(time.monotonic() - taken)
            self._spawn(self._release_remote(ticket, backend.name))

        return Slot(backend, release)

    async def _release_remote(self, ticket: str, backend: str) -> None:
        capacity = self._capacity.get(backend, 1)
        try:
            await self._eval("release", [ticket, backend, capacity])
        except ServiceUnavailable:
            log.warning("slot release failed; its lease will free it", backend=backend)

    async def _leave(self, ticket: str, candidates: Sequence[Backend]) -> None:
        args: list[str | int] = [ticket, len(candidates)]
        for backend in candidates:
            args += [backend.name, backend.capacity]
        try:
            await self._eval("leave", args)
        except ServiceUnavailable:
            log.warning("leaving the queue failed; the ticket's deadline will drop it")

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- background ------------------------------------------------------------------------

    async def _listen(self) -> None:
        channel = f"{self._prefix}grant:{self.instance}"
        while True:
            try:
                async with self._channel_client.pubsub() as pubsub:
                    await pubsub.subscribe(channel)
                    self._subscribed.set()
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=1.0
                        )
                        if message is not None:
                            ticket, _, backend = str(message["data"]).partition(" ")
                            self._granted(ticket, backend)
            except (RedisError, OSError, TimeoutError) as exc:
                self._subscribed.clear()
                log.warning("scheduler grant channel lost", error=type(exc).__name__)
                await asyncio.sleep(1.0)

    async def _maintain(self) -> None:
        while True:
            due = self._last_tick + (self._poll_s if self._waiting else self._lease_s / 3)
            delay = due - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                self._wake.clear()
                continue
            self._last_tick = time.monotonic()
            try:
                await self.tick()
            except ServiceUnavailable:
                log.warning("scheduler heartbeat failed", waiting=len(self._waiting))
                self._fail_waiters("scheduler unavailable")
            except Exception as exc:  # keep beating whatever happens
                log.error("scheduler heartbeat error", error=type(exc).__name__)

    async def tick(self) -> None:
        """One heartbeat (see the module docstring); raises ``ServiceUnavailable``."""
        held = list(self._held.items())
        waiting = [ticket for ticket, waiter in self._waiting.items() if waiter.queued]
        args: list[str | int] = [len(held)]
        for ticket, backend in held:
            args += [ticket, backend]
        args.append(len(self._capacity))
        for backend, capacity in self._capacity.items():
            args += [backend, capacity]
        args += [len(waiting), *waiting]
        lost, statuses = await self._eval("tick", args)
        for ticket in lost:
            log.warning("held slot was missing in Redis; counted again", ticket=ticket[:6])
        for ticket, status in zip(waiting, statuses, strict=True):
            if status == "x":
                waiter = self._waiting.get(ticket)
                if waiter is not None and not waiter.future.done():
                    waiter.future.set_exception(ServiceUnavailable("scheduler state lost"))
            elif status != "q":
                self._granted(ticket, status)

    # --- Redis -----------------------------------------------------------------------------

    async def _eval(self, op: str, args: Sequence[str | int]) -> Any:
        keys = [f"{self._prefix}state"]
        argv: list[str | int | float] = [
            op,
            self._prefix,
            self._policy,
            math.ceil(self._lease_s * 1000),
            self.instance,
            *args,
        ]
        try:
            return await self._redis.run(self._script, keys, argv)
        except RedisError as exc:
            raise ServiceUnavailable("scheduler store unavailable") from exc
