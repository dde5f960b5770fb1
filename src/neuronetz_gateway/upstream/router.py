"""Sending one request upstream, failing over between the backends that host the model.

Failover happens only before the client has received a byte: on a connection error, a
timeout, a 5xx (including Ollama's 503 "server busy"), a 404 (the model left that
backend) or an ``{"error": ...}`` where the answer should begin. For a stream, the first
line is awaited before the response is committed; after that, the caller owns the
stream and a failure ends it (no second backend can continue a half-sent answer).

Each backend's circuit breaker is consulted before an attempt and told its outcome. When
no candidate could be tried or every attempt failed, ``UpstreamUnavailable`` (502) with
``Retry-After``; when every backend answered 404, the same 403 as a forbidden model.

With a ``scheduler`` and a ``SlotRequest`` (model calls), each attempt first takes a slot
of its backend's capacity: on the first candidate, in order, with a free slot, else after
a wait in the tenant's queue (``upstream.scheduler``). The slot is held until the call's
``release``/``abort``, and a failed attempt frees it before the next one. A wait that
times out while every candidate's breaker is open or half-open is a 503, not a 429.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
import orjson
import structlog

from neuronetz_gateway.errors import BadRequest, Forbidden, ServiceUnavailable, UpstreamUnavailable
from neuronetz_gateway.proxy.streaming import LineReader, TruncatedStream
from neuronetz_gateway.upstream.backends import Backend
from neuronetz_gateway.upstream.breaker import CircuitBreaker
from neuronetz_gateway.upstream.http import UpstreamResponse
from neuronetz_gateway.upstream.scheduler import QueueTimeout, Scheduler, Slot, SlotRequest

log = structlog.get_logger("neuronetz.upstream")

MAX_LINE_BYTES = 16 * 1024 * 1024


@dataclass(slots=True)
class UpstreamCall:
    """An upstream response that is ready: a full body, or a stream with its first line."""

    backend: Backend
    response: UpstreamResponse
    attempts: int
    body: bytes | None = None
    reader: LineReader | None = None
    first_line: bytes | None = None
    started: float = field(default_factory=time.perf_counter)
    slot: Slot | None = None

    def release(self) -> None:
        self.response.release()
        self.backend.in_flight -= 1
        if self.slot is not None:
            self.slot.release()

    def abort(self) -> None:
        self.response.close()
        self.backend.in_flight -= 1
        if self.slot is not None:
            self.slot.release()


class _Retryable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _first_line_problem(line: bytes) -> str | None:
    """Why a stream's first line is no start of an answer (cut, or an error), if it is not."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "reset"
    return "error_frame" if isinstance(obj, dict) and "error" in obj else None


def _body_problem(body: bytes) -> str | None:
    """An ``{"error": ...}`` body sent with 200; the substring test keeps big bodies cheap."""
    if b'"error"' not in body:
        return None
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None  # the caller reports a body that is no JSON
    return "error_frame" if isinstance(obj, dict) and "error" in obj else None


class Router:
    def __init__(
        self,
        breakers: dict[str, CircuitBreaker],
        *,
        observer: UpstreamObserver,
        on_served: Callable[[Backend, str], None] | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.breakers = breakers
        self.observer = observer
        self.on_served = on_served
        self.scheduler = scheduler

    async def call(
        self,
        candidates: Sequence[Backend],
        path: str,
        body: bytes,
        *,
        stream: bool,
        model: str | None = None,
        slot_request: SlotRequest | None = None,
        gate: Awaitable[object] | None = None,
    ) -> UpstreamCall:
        """The first candidate (in the given order) that answers, before any byte is sent.

        ``model``, given for model calls, tells ``on_served`` what the backend now has
        loaded (warm routing). ``slot_request`` puts the call under the scheduler.
        ``gate`` (the admission, running meanwhile) is awaited once the first slot is
        held and before anything is sent: its error is raised, with the slot freed.
        """
        if not candidates:
            raise Forbidden("model not available", reason="model_forbidden")
        attempts = 0
        missing = 0
        pending = list(candidates)
        while pending:
            slot: Slot | None = None
            if self.scheduler is None or slot_request is None:
                backend = pending.pop(0)
            else:
                slot = await self._slot(self.scheduler, pending, slot_request)
                if slot is None:
                    break
                backend = slot.backend
                pending.remove(backend)
            if gate is not None:
                try:
                    await gate
                except BaseException:
                    if slot is not None:
                        slot.release()
                    raise
                gate = None
            breaker = self.breakers[backend.name]
            if not breaker.allow():
                if slot is not None:
                    slot.release()
                continue
            attempts += 1
            started = time.perf_counter()
            try:
                call = await self._attempt(
                    backend, path, body, stream=stream, attempts=attempts, slot=slot
                )
            except _Retryable as exc:
                self.observer.upstream_result(
                    backend.name, exc.reason, time.perf_counter() - started
                )
                if exc.reason == "not_found":
                    missing += 1
                    breaker.record_success()  # the backend works; it lacks the model
                else:
                    breaker.record_failure()
                    log.warning("upstream attempt failed", backend=backend.name, reason=exc.reason)
                continue
            except BaseException:
                breaker.release_probe()
                raise
            breaker.record_success()
            self.observer.upstream_result(backend.name, "ok", time.perf_counter() - started)
            if model is not None and self.on_served is not None:
                self.on_served(backend, model)
            return call
        # 403 only when every host was asked and none has the model; a host skipped by
        # its breaker may still have it, so that is a 502.
        if missing == attempts == len(candidates):
            raise Forbidden("model not available", reason="model_forbidden")
        retry = min((self.breakers[b.name].retry_after_s() for b in candidates), default=1.0)
        error = UpstreamUnavailable(
            headers={"Retry-After": str(max(1, math.ceil(retry)))}, reason="upstream_unavailable"
        )
        error.attempts = attempts
        raise error

    async def _slot(
        self, scheduler: Scheduler, pending: Sequence[Backend], request: SlotRequest
    ) -> Slot | None:
        """A slot on a pending backend whose breaker is not open (None: there is none)."""
        usable = [b for b in pending if self.breakers[b.name].state != "open"]
        if not usable:
            return None
        try:
            return await scheduler.acquire(usable, request)
        except QueueTimeout as exc:
            if all(self.breakers[b.name].state != "closed" for b in usable):
                raise ServiceUnavailable(
                    "no backend is available for this request",
                    headers=exc.headers,
                    reason="queue_timeout_backend_down",
                ) from None
            raise

    async def _attempt(
        self,
        backend: Backend,
        path: str,
        body: bytes,
        *,
        stream: bool,
        attempts: int,
        slot: Slot | None = None,
    ) -> UpstreamCall:
        backend.in_flight += 1
        try:
            response = await backend.pool.post(path, body)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            backend.in_flight -= 1
            if slot is not None:
                slot.release()
            raise _Retryable("timeout" if isinstance(exc, TimeoutError) else "connect") from exc
        except BaseException:
            backend.in_flight -= 1
            if slot is not None:
                slot.release()
            raise
        call = UpstreamCall(backend=backend, response=response, attempts=attempts, slot=slot)
        try:
            status = response.status
            if status != 200:
                await self._refuse(response)
            if stream:
                call.reader = LineReader(response.content, MAX_LINE_BYTES)
                call.first_line = await call.reader.next_line()
                # The first line is handed over as soon as it comes (time to first
                # byte); the lines after it that arrive in a burst, together.
                response.coalesce_bursts()
                problem = (
                    "empty" if call.first_line is None else _first_line_problem(call.first_line)
                )
            else:
                call.body = await response.read()
                problem = _body_problem(call.body)
            if problem is not None:
                raise _Retryable(problem)
            return call
        except (TimeoutError, aiohttp.ClientError, TruncatedStream, OSError) as exc:
            call.abort()
            raise _Retryable("reset") from exc
        except BaseException:
            call.abort()
            raise

    @staticmethod
    async def _refuse(response: UpstreamResponse) -> None:
        status = response.status
        if status == 404:
            raise _Retryable("not_found")
        if status in (400, 422):
            # Never pass upstream text on: it may carry paths or internals.
            raise BadRequest("the model server rejected the request as invalid")
        if 300 <= status < 400:
            raise _Retryable("redirect")
        raise _Retryable(f"status_{status // 100}xx" if status != 503 else "busy")


class UpstreamObserver:
    """Receives the outcome of each upstream attempt (metrics hook)."""

    def upstream_result(self, backend: str, outcome: str, seconds: float) -> None:
        return None
