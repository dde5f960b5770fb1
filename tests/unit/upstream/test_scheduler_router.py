"""The router under the scheduler: slots per attempt, freed on every exit path."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from neuronetz_gateway.errors import RateLimited, ServiceUnavailable, UpstreamUnavailable
from neuronetz_gateway.mock_ollama import MockOllama
from neuronetz_gateway.upstream.backends import Backend
from neuronetz_gateway.upstream.breaker import CircuitBreaker
from neuronetz_gateway.upstream.router import Router, UpstreamCall, UpstreamObserver
from neuronetz_gateway.upstream.scheduler import MemoryScheduler, SlotRequest
from tests.unit.upstream.conftest import MakeBackend

TENANT = SlotRequest(1, "acme")


def chat(stream: bool) -> bytes:
    return orjson.dumps(
        {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    )


async def started(*backends: Backend) -> list[Backend]:
    for backend in backends:
        await backend.start()
    return list(backends)


def scheduled(backends: list[Backend], timeout_s: float = 5.0) -> tuple[Router, MemoryScheduler]:
    scheduler = MemoryScheduler(backends, default_timeout_s=timeout_s, max_depth_per_tenant=100)
    breakers = {b.name: CircuitBreaker(failure_threshold=2, cooldown_s=30) for b in backends}
    return Router(breakers, observer=_Quiet(), scheduler=scheduler), scheduler


class _Quiet(UpstreamObserver):
    def upstream_result(self, backend: str, outcome: str, seconds: float) -> None:
        return None


async def drain(call: UpstreamCall) -> None:
    assert call.reader is not None
    try:
        while await call.reader.next_line() is not None:
            pass
    finally:
        call.release()


async def test_a_backend_never_gets_more_than_its_capacity(
    mocks: list[MockOllama], make_backend: MakeBackend
) -> None:
    mocks[0].configure(delay_s=0.1)
    backends = await started(make_backend("a", mocks[0].url, parallel=2))
    router, scheduler = scheduled(backends)

    async def one() -> None:
        call = await router.call(
            backends, "/api/chat", chat(True), stream=True, slot_request=TENANT
        )
        await drain(call)

    await asyncio.gather(*(one() for _ in range(7)))
    assert mocks[0].stats()["peak_in_flight"] == 2
    assert scheduler.in_use("a") == 0


async def test_free_slots_elsewhere_before_queueing_in_candidate_order(
    mocks: list[MockOllama], make_backend: MakeBackend
) -> None:
    backends = await started(
        make_backend("a", mocks[0].url, parallel=1), make_backend("b", mocks[1].url, parallel=1)
    )
    router, scheduler = scheduled(backends)
    first = await router.call(backends, "/api/chat", chat(False), stream=False, slot_request=TENANT)
    second = await router.call(
        backends, "/api/chat", chat(False), stream=False, slot_request=TENANT
    )
    assert (first.backend.name, second.backend.name) == ("a", "b")
    third = asyncio.create_task(
        router.call(backends, "/api/chat", chat(False), stream=False, slot_request=TENANT)
    )
    await asyncio.sleep(0.05)
    assert not third.done() and scheduler.waiting() == 1
    second.release()
    assert (await asyncio.wait_for(third, 2)).backend.name == "b"
    first.release()
    (await third).release()
    assert (scheduler.in_use("a"), scheduler.in_use("b")) == (0, 0)


@pytest.mark.parametrize("fault", ["busy", "reset_before_first_byte"])
async def test_failover_frees_the_first_slot(
    mocks: list[MockOllama], make_backend: MakeBackend, fault: str
) -> None:
    mocks[0].configure(fail=fault, fail_count=1)  # type: ignore[arg-type]
    backends = await started(
        make_backend("a", mocks[0].url, parallel=1), make_backend("b", mocks[1].url, parallel=1)
    )
    router, scheduler = scheduled(backends)
    call = await router.call(backends, "/api/chat", chat(True), stream=True, slot_request=TENANT)
    assert (call.backend.name, call.attempts) == ("b", 2)
    assert (scheduler.in_use("a"), scheduler.in_use("b")) == (0, 1)
    call.abort()
    call.release()  # a second end of the same call frees nothing more
    assert (scheduler.in_use("a"), scheduler.in_use("b")) == (0, 0)


async def test_every_attempt_failing_frees_every_slot(make_backend: MakeBackend) -> None:
    backends = await started(
        make_backend("a", "http://127.0.0.1:9", parallel=1),
        make_backend("b", "http://127.0.0.1:9", parallel=1),
    )
    router, scheduler = scheduled(backends)
    with pytest.raises(UpstreamUnavailable):
        await router.call(backends, "/api/chat", chat(False), stream=False, slot_request=TENANT)
    assert (scheduler.in_use("a"), scheduler.in_use("b")) == (0, 0)


async def test_a_cancelled_attempt_frees_its_slot(
    mocks: list[MockOllama], make_backend: MakeBackend
) -> None:
    mocks[0].configure(delay_s=5)
    backends = await started(make_backend("a", mocks[0].url, parallel=1))
    router, scheduler = scheduled(backends)
    task = asyncio.create_task(
        router.call(backends, "/api/chat", chat(True), stream=True, slot_request=TENANT)
    )
    await asyncio.sleep(0.1)
    assert scheduler.in_use("a") == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert scheduler.in_use("a") == 0


async def test_wait_timeout_is_429_while_the_backend_is_healthy(
    mocks: list[MockOllama], make_backend: MakeBackend
) -> None:
    backends = await started(make_backend("a", mocks[0].url, parallel=1))
    router, scheduler = scheduled(backends, timeout_s=0.1)
    held = await scheduler.acquire(backends, TENANT)
    with pytest.raises(RateLimited) as caught:
        await router.call(backends, "/api/chat", chat(False), stream=False, slot_request=TENANT)
    assert caught.value.reason == "queue_timeout" and "Retry-After" in caught.value.headers
    held.release()


async def test_wait_timeout_is_503_when_the_backend_went_down_meanwhile(
    mocks: list[MockOllama], make_backend: MakeBackend
) -> None:
    backends = await started(make_backend("a", mocks[0].url, parallel=1))
    router, scheduler = scheduled(backends, timeout_s=0.3)
    held = await scheduler.acquire(backends, TENANT)
    waiting = asyncio.create_task(
        router.call(backends, "/api/chat", chat(False), stream=False, slot_request=TENANT)
    )
    await asyncio.sleep(0.05)
    for _ in range(2):
        router.breakers["a"].record_failure()  # the holder's backend is failing
    with pytest.raises(ServiceUnavailable) as caught:
        await waiting
    assert caught.value.status == 503 and "Retry-After" in caught.value.headers
    held.release()


async def test_calls_without_a_slot_request_bypass_the_scheduler(
    mocks: list[MockOllama], make_backend: MakeBackend
) -> None:
    backends = await started(make_backend("a", mocks[0].url, parallel=1))
    router, scheduler = scheduled(backends)
    held = await scheduler.acquire(backends, TENANT)
    call = await router.call(backends, "/api/show", b'{"model": "llama3.2"}', stream=False)
    call.release()
    assert scheduler.in_use("a") == 1
    held.release()
