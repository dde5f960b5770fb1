"""Failover between backends before the first byte, and none after it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web

from neuronetz_gateway.errors import BadRequest, Forbidden, UpstreamUnavailable
from neuronetz_gateway.mock_ollama import MockOllama
from neuronetz_gateway.proxy.streaming import TruncatedStream
from neuronetz_gateway.upstream.backends import Backend
from neuronetz_gateway.upstream.breaker import CircuitBreaker
from neuronetz_gateway.upstream.router import Router, UpstreamCall, UpstreamObserver
from tests.unit.upstream.conftest import MakeBackend


class Outcomes(UpstreamObserver):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def upstream_result(self, backend: str, outcome: str, seconds: float) -> None:
        self.seen.append((backend, outcome))


def chat(stream: bool, model: str = "llama3.2") -> bytes:
    return orjson.dumps(
        {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    )


def model_calls(mock: MockOllama) -> int:
    return sum(r["path"] == "/api/chat" for r in mock.requests)


@pytest.fixture
async def trio(mocks: list[MockOllama], make_backend: MakeBackend) -> list[Backend]:
    backends = [make_backend(n, m.url, read_s=1.0) for n, m in zip("abc", mocks, strict=True)]
    for backend in backends:
        await backend.start()
    return backends


def router_for(backends: list[Backend], **kwargs: object) -> tuple[Router, Outcomes]:
    outcomes = Outcomes()
    breakers = {b.name: CircuitBreaker(failure_threshold=2, cooldown_s=30) for b in backends}
    return Router(breakers, observer=outcomes, **kwargs), outcomes  # type: ignore[arg-type]


async def finish(call: UpstreamCall) -> list[bytes]:
    """Read the rest of a committed stream, as the pipeline would."""
    assert call.reader is not None
    lines = [call.first_line] if call.first_line else []
    try:
        while (line := await call.reader.next_line()) is not None:
            lines.append(line)
    finally:
        call.release()
    return lines


@pytest.mark.parametrize("stream", [True, False])
async def test_first_candidate_serves(trio: list[Backend], mocks: list[MockOllama], stream: bool):
    router, outcomes = router_for(trio)
    call = await router.call(trio, "/api/chat", chat(stream), stream=stream)
    assert (call.backend.name, call.attempts) == ("a", 1)
    assert trio[0].in_flight == 1
    if stream:
        assert orjson.loads((await finish(call))[-1])["done"] is True
    else:
        assert orjson.loads(call.body or b"")["done"] is True
        call.release()
    assert trio[0].in_flight == 0
    assert [model_calls(m) for m in mocks] == [1, 0, 0]
    assert outcomes.seen == [("a", "ok")]


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("busy", "busy"),
        ("before_first_chunk", "status_5xx"),
        ("error_500_with_trace", "status_5xx"),
        ("reset_before_first_byte", "connect"),
    ],
)
async def test_fails_over_before_the_first_byte(
    trio: list[Backend], mocks: list[MockOllama], fault: str, reason: str, stream: bool
) -> None:
    mocks[0].configure(fail=fault, fail_count=1)  # type: ignore[arg-type]
    router, outcomes = router_for(trio)
    call = await router.call(trio, "/api/chat", chat(stream), stream=stream)
    assert (call.backend.name, call.attempts) == ("b", 2)
    if stream:
        lines = await finish(call)
        assert orjson.loads(lines[-1])["done"] is True
    else:
        assert orjson.loads(call.body or b"")["message"]["content"] == "Echo: hi"
        call.release()
    assert outcomes.seen == [("a", reason), ("b", "ok")]
    assert router.breakers["a"].failures == 1
    assert [b.in_flight for b in trio] == [0, 0, 0]
    assert [model_calls(m) for m in mocks] == [1, 1, 0]


async def test_fails_over_when_a_backend_is_gone(
    trio: list[Backend], mocks: list[MockOllama]
) -> None:
    await mocks[0].stop()
    await mocks[1].stop()
    router, outcomes = router_for(trio)
    call = await router.call(trio, "/api/chat", chat(True), stream=True)
    await finish(call)
    assert (call.backend.name, call.attempts) == ("c", 3)
    assert outcomes.seen == [("a", "connect"), ("b", "connect"), ("c", "ok")]


async def test_fails_over_on_a_timeout(mocks: list[MockOllama], make_backend: MakeBackend) -> None:
    mocks[0].configure(delay_s=2)
    pair = [make_backend("a", mocks[0].url, read_s=0.3), make_backend("b", mocks[1].url)]
    for backend in pair:
        await backend.start()
    router, outcomes = router_for(pair)
    call = await router.call(pair, "/api/chat", chat(False), stream=False)
    call.release()
    assert outcomes.seen == [("a", "timeout"), ("b", "ok")]


async def test_a_backend_that_lost_the_model_is_skipped_without_blame(
    trio: list[Backend], mocks: list[MockOllama]
) -> None:
    mocks[0].configure(models=["qwen2.5:0.5b"])
    router, outcomes = router_for(trio)
    call = await router.call(trio, "/api/chat", chat(False), stream=False)
    call.release()
    assert outcomes.seen == [("a", "not_found"), ("b", "ok")]
    assert router.breakers["a"].failures == 0


async def test_no_failover_once_the_first_line_is_in(
    trio: list[Backend], mocks: list[MockOllama]
) -> None:
    mocks[0].configure(fail="after_first_chunk", chunks=4)
    router, _ = router_for(trio)
    call = await router.call(trio, "/api/chat", chat(True), stream=True)
    assert (call.backend.name, call.attempts) == ("a", 1)
    assert orjson.loads(call.first_line or b"")["done"] is False
    assert call.reader is not None
    finished = False
    try:
        while (line := await call.reader.next_line()) is not None:
            finished = finished or orjson.loads(line).get("done") is True
    except (OSError, orjson.JSONDecodeError, TruncatedStream):
        pass  # the cut, however it shows; the pipeline turns it into an error frame
    finally:
        call.abort()
    assert not finished
    assert trio[0].in_flight == 0
    assert [model_calls(m) for m in mocks] == [1, 0, 0]


async def test_a_rejected_request_is_not_retried(
    trio: list[Backend], mocks: list[MockOllama]
) -> None:
    router, _ = router_for(trio)
    body = orjson.dumps({"model": "llama3.2", "messages": "not a list"})
    with pytest.raises(BadRequest) as err:
        await router.call(trio, "/api/chat", body, stream=False)
    assert "not a list" not in err.value.message
    assert [model_calls(m) for m in mocks] == [1, 0, 0]
    assert router.breakers["a"].failures == 0


async def test_everyone_down_is_502_with_retry_after(
    trio: list[Backend], mocks: list[MockOllama]
) -> None:
    for mock in mocks:
        mock.configure(fail="busy")
    router, _ = router_for(trio)
    with pytest.raises(UpstreamUnavailable) as err:
        await router.call(trio, "/api/chat", chat(True), stream=True)
    assert err.value.status == 502
    assert err.value.headers["Retry-After"] == "1"
    # Second failure of each: every breaker opens; the next call sends nothing at all.
    with pytest.raises(UpstreamUnavailable):
        await router.call(trio, "/api/chat", chat(True), stream=True)
    assert {b.state for b in router.breakers.values()} == {"open"}
    before = [model_calls(m) for m in mocks]
    with pytest.raises(UpstreamUnavailable) as err:
        await router.call(trio, "/api/chat", chat(True), stream=True)
    assert [model_calls(m) for m in mocks] == before
    assert 29 <= int(err.value.headers["Retry-After"]) <= 30


async def test_model_gone_everywhere_is_the_403_of_a_forbidden_model(
    trio: list[Backend], mocks: list[MockOllama]
) -> None:
    for mock in mocks:
        mock.configure(models=["qwen2.5:0.5b"])
    router, _ = router_for(trio)
    with pytest.raises(Forbidden) as err:
        await router.call(trio, "/api/chat", chat(False), stream=False)
    assert err.value.message == "model not available"
    with pytest.raises(Forbidden):
        await router.call([], "/api/chat", chat(False), stream=False)


async def test_model_gone_from_the_hosts_asked_while_another_is_open_is_502(
    trio: list[Backend], mocks: list[MockOllama]
) -> None:
    mocks[1].configure(models=["qwen2.5:0.5b"])
    router, _ = router_for(trio)
    for _ in range(2):
        router.breakers["a"].record_failure()
    with pytest.raises(UpstreamUnavailable):
        await router.call(trio[:2], "/api/chat", chat(False), stream=False)
    assert [model_calls(m) for m in mocks] == [0, 1, 0]


async def test_successful_model_calls_are_reported_as_served(
    trio: list[Backend], mocks: list[MockOllama]
) -> None:
    served: list[tuple[str, str]] = []
    router, _ = router_for(trio, on_served=lambda b, m: served.append((b.name, m)))
    mocks[0].configure(fail="busy", fail_count=1)
    (await router.call(trio, "/api/chat", chat(False), stream=False, model="llama3.2")).release()
    (await router.call(trio, "/api/show", b'{"model":"llama3.2"}', stream=False)).release()
    assert served == [("b", "llama3.2")]


@pytest.fixture
async def odd_server() -> AsyncIterator[str]:
    """200 answers that are no answer: an error line, nothing, a cut first line."""

    async def error_line(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=b'{"error":"llama runner process has terminated"}\n',
            content_type="application/x-ndjson",
        )

    async def empty(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"", content_type="application/x-ndjson")

    async def cut(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b'{"model":"llama3.2","message":{"ro', content_type="text/plain")

    app = web.Application()
    app.router.add_post("/error/api/chat", error_line)
    app.router.add_post("/empty/api/chat", empty)
    app.router.add_post("/cut/api/chat", cut)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.mark.parametrize(
    ("kind", "reason", "stream"),
    [
        ("error", "error_frame", True),
        ("error", "error_frame", False),
        ("empty", "empty", True),
        ("cut", "reset", True),
    ],
)
async def test_a_200_that_is_no_answer_fails_over(
    odd_server: str,
    make_backend: MakeBackend,
    mocks: list[MockOllama],
    kind: str,
    reason: str,
    stream: bool,
) -> None:
    odd = make_backend("odd", f"{odd_server}/{kind}")
    good = make_backend("good", mocks[0].url)
    for backend in (odd, good):
        await backend.start()
    router, outcomes = router_for([odd, good])
    call = await router.call([odd, good], "/api/chat", chat(stream), stream=stream)
    if stream:
        await finish(call)
    else:
        call.release()
    assert outcomes.seen == [("odd", reason), ("good", "ok")]
    assert odd.in_flight == 0
