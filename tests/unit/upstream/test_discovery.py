"""Discovery over several backends: parallel polls, union, priority index, TTL, warm order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from neuronetz_gateway.mock_ollama import MockOllama
from neuronetz_gateway.upstream import discovery as discovery_module
from neuronetz_gateway.upstream.discovery import DISCOVERY_USER_AGENT, Discovery
from tests.unit.upstream.conftest import MakeBackend


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


def names(backends: list[object]) -> list[str]:
    return [b.name for b in backends]  # type: ignore[attr-defined]


@pytest.fixture
async def barrier_servers() -> AsyncIterator[list[str]]:
    """Three servers whose /api/tags answers only once all three have been asked:
    polled one after the other, the first would give up (500) waiting for the others."""
    barrier = asyncio.Barrier(3)

    async def tags(request: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(barrier.wait(), 1.5)
        except TimeoutError:
            return web.json_response({"error": "polled alone"}, status=500)
        port = request.url.port
        return web.json_response({"models": [{"name": f"m{port}:latest"}]})

    runners = []
    urls = []
    for _ in range(3):
        app = web.Application()
        app.router.add_get("/api/tags", tags)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        urls.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
    yield urls
    for runner in runners:
        await runner.cleanup()


async def test_every_backend_is_polled_at_the_same_time(
    barrier_servers: list[str], make_backend: MakeBackend
) -> None:
    backends = [make_backend(f"b{i}", url) for i, url in enumerate(barrier_servers)]
    for b in backends:
        await b.start()
    discovery = Discovery(backends, refresh_s=5, ttl_s=10)
    await discovery.refresh()
    assert discovery.reachable() == {"b0", "b1", "b2"}
    assert len(discovery.union()) == 3


async def test_union_is_deduplicated_and_each_model_lists_its_hosts_in_priority_order(
    mocks: list[MockOllama], make_backend: MakeBackend
) -> None:
    a, b, c = mocks
    a.configure(models=["llama3.2", "qwen2.5:0.5b"])
    b.configure(models=["qwen2.5:0.5b", "nomic-embed-text"])
    c.configure(models=["llama3.2:latest"])
    backends = [make_backend(n, m.url) for n, m in zip("abc", mocks, strict=True)]
    for backend in backends:
        await backend.start()
    discovery = Discovery(backends, refresh_s=5, ttl_s=10)
    await discovery.refresh()
    union = [m["name"] for m in discovery.union()]
    assert sorted(union) == ["llama3.2:latest", "nomic-embed-text:latest", "qwen2.5:0.5b"]
    assert names(discovery.backends_for("llama3.2")) == ["a", "c"]
    assert names(discovery.backends_for("LLAMA3.2:latest")) == ["a", "c"]
    assert names(discovery.backends_for("qwen2.5:0.5b")) == ["a", "b"]
    assert names(discovery.backends_for("nomic-embed-text")) == ["b"]
    assert discovery.backends_for("mistral") == []
    assert [m["name"] for m in discovery.models_of("b")] == [
        "qwen2.5:0.5b",
        "nomic-embed-text:latest",
    ]
    polls = [r for m in mocks for r in m.requests]
    assert {r["path"] for r in polls} == {"/api/tags"}  # priority policy: no /api/ps
    assert all(r["headers"]["user-agent"] == DISCOVERY_USER_AGENT for r in polls)


async def test_a_silent_backend_keeps_its_list_until_the_ttl(
    mocks: list[MockOllama], make_backend: MakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeTime()
    monkeypatch.setattr(discovery_module, "time", clock)
    a, b, _ = mocks
    b.configure(models=["qwen2.5:0.5b", "mistral"])
    backends = [make_backend("a", a.url), make_backend("b", b.url)]
    for backend in backends:
        await backend.start()
    discovery = Discovery(backends, refresh_s=5, ttl_s=30)
    await discovery.refresh()
    version = discovery.version
    assert names(discovery.backends_for("mistral")) == ["b"]
    await b.stop()
    clock.now += 20
    await discovery.refresh()  # b fails; its list is 20 s old
    assert names(discovery.backends_for("qwen2.5:0.5b")) == ["a", "b"]
    assert discovery.reachable() == {"a", "b"}
    clock.now += 11  # 31 s since b last answered
    assert discovery.backends_for("mistral") == []
    assert names(discovery.backends_for("qwen2.5:0.5b")) == ["a"]
    assert discovery.reachable() == {"a"}
    assert "mistral:latest" not in {m["name"] for m in discovery.union()}
    assert discovery.version > version  # /api/tags caches per tenant see the change


async def test_warm_policy_polls_ps_and_orders_loaded_first(
    mocks: list[MockOllama], make_backend: MakeBackend
) -> None:
    _a, b, c = mocks
    c.configure(loaded_models=["llama3.2"])
    b.configure(loaded_models=["qwen2.5:0.5b"])
    backends = [make_backend(n, m.url) for n, m in zip("abc", mocks, strict=True)]
    for backend in backends:
        await backend.start()
    warm = Discovery(backends, refresh_s=60, ttl_s=120, routing_policy="warm")
    await warm.refresh()
    assert {r["path"] for m in mocks for r in m.requests} == {"/api/tags", "/api/ps"}
    assert names(warm.backends_for("llama3.2")) == ["c", "a", "b"]
    assert names(warm.backends_for("qwen2.5:0.5b")) == ["b", "a", "c"]
    backends[2].in_flight = 3  # loaded still wins over idle
    assert names(warm.backends_for("llama3.2")) == ["c", "a", "b"]
    backends[0].in_flight = 1  # then fewest in flight
    assert names(warm.backends_for("nomic-embed-text")) == ["b", "a", "c"]
    # What the gateway served itself counts as loaded until the next poll says otherwise.
    warm.note_served(backends[0], "nomic-embed-text")
    assert names(warm.backends_for("nomic-embed-text")) == ["a", "b", "c"]
    await warm.refresh_loaded()
    assert names(warm.backends_for("nomic-embed-text")) == ["b", "a", "c"]
    # Priority policy: same backends, no /api/ps, configuration order whatever is loaded.
    for m in mocks:
        m.clear_requests()
    plain = Discovery(backends, refresh_s=60, ttl_s=120)
    await plain.refresh()
    plain.note_served(backends[1], "llama3.2")
    assert names(plain.backends_for("llama3.2")) == ["a", "b", "c"]
    assert {r["path"] for m in mocks for r in m.requests} == {"/api/tags"}


async def test_a_failed_ps_poll_keeps_the_last_answer(
    mocks: list[MockOllama], make_backend: MakeBackend
) -> None:
    a, b, _ = mocks
    b.configure(loaded_models=["llama3.2"])
    backends = [make_backend("a", a.url), make_backend("b", b.url)]
    for backend in backends:
        await backend.start()
    warm = Discovery(backends, refresh_s=60, ttl_s=120, routing_policy="warm")
    await warm.refresh()
    await b.stop()
    await warm.refresh_loaded()
    assert warm.loaded is not None
    assert warm.loaded.loaded_on("b") == {"llama3.2:latest"}
    assert names(warm.backends_for("llama3.2")) == ["b", "a"]


async def test_the_loop_keeps_polling_and_stops_cleanly(
    mocks: list[MockOllama], make_backend: MakeBackend
) -> None:
    backend = make_backend("a", mocks[0].url)
    await backend.start()
    discovery = Discovery([backend], refresh_s=0.2, ttl_s=1, routing_policy="warm")
    discovery.start()
    for _ in range(100):
        if sum(r["path"] == "/api/ps" for r in mocks[0].requests) >= 2:
            break
        await asyncio.sleep(0.02)
    await discovery.stop()
    seen = [r["path"] for r in mocks[0].requests]
    assert seen.count("/api/tags") >= 2
    assert seen.count("/api/ps") >= 2
