"""Limits and budgets as clients meet them, in embedded and scale-out mode."""

import asyncio
import json
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from neuronetz_gateway.db.models import RequestRecord
from tests.fixtures.gateway import RunningGateway
from tests.fixtures.redis import RedisServer

CHAT = {"model": "llama3.2", "stream": False, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(params=["embedded", "scale-out"])
def mode_gateway(
    request: pytest.FixtureRequest, make_gateway: Callable[..., RunningGateway]
) -> RunningGateway:
    if request.param == "embedded":
        return make_gateway()
    return make_gateway(
        database_url=request.getfixturevalue("pg_url"),
        redis_url=request.getfixturevalue("redis_url"),
        # Bursts of 50 on two shared cores; the fail-closed test keeps the default.
        redis_timeout_s=2.0,
    )


async def _burst(url: str, key: str, n: int, body: dict[str, object] = CHAT) -> list[int]:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=n)) as client:
        ready = asyncio.Event()

        async def one() -> int:
            await ready.wait()
            resp = await client.post(url, json=body, headers={"Authorization": f"Bearer {key}"})
            return resp.status_code

        tasks = [asyncio.create_task(one()) for _ in range(n)]
        await asyncio.sleep(0.05)
        ready.set()  # the barrier: every request leaves at once
        return list(await asyncio.gather(*tasks))


def test_headers_on_every_proxied_response(mode_gateway: RunningGateway) -> None:
    gw = mode_gateway
    gw.admin.tenant("acme", rpm=50, tpm=100_000, daily_budget=1_000_000)
    key = gw.admin.key("acme", rpm=10)
    resp = httpx.post(gw.url + "/api/chat", json=CHAT, headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200
    assert resp.headers["x-ratelimit-limit-requests"] == "10"
    assert resp.headers["x-ratelimit-remaining-requests"] == "9"
    assert resp.headers["x-ratelimit-limit-tokens"] == "100000"
    assert int(resp.headers["x-ratelimit-remaining-tokens"]) < 100_000
    assert resp.headers["x-budget-period"] == "day"
    assert int(resp.headers["x-budget-tokens-remaining"]) < 1_000_000


def test_barrier_burst_admits_exactly_the_limit(mode_gateway: RunningGateway) -> None:
    gw = mode_gateway
    gw.admin.tenant("acme", rpm=7)
    key = gw.admin.key("acme")
    statuses = asyncio.run(_burst(gw.url + "/api/chat", key, 30))
    assert statuses.count(200) == 7 and statuses.count(429) == 23
    # In scale-out mode admission and slot run side by side: no refused one went upstream.
    assert [p["path"] for p in gw.proxied()].count("/api/chat") == 7


def test_budget_holds_under_concurrency(mode_gateway: RunningGateway) -> None:
    gw = mode_gateway
    # Each request reserves its worst case (prompt estimate + 100); the budget fits five.
    gw.admin.tenant("acme", total_budget=5 * 110)
    key = gw.admin.key("acme")
    assert gw.mock is not None
    gw.mock.configure(delay_s=1.0)  # all 50 are in flight together
    body = {**CHAT, "options": {"num_predict": 100}}
    statuses = asyncio.run(_burst(gw.url + "/api/chat", key, 50, body))
    assert statuses.count(200) == 5 and statuses.count(429) == 45
    assert [p["path"] for p in gw.proxied()].count("/api/chat") == 5
    gw.wait_audit_flushed()
    spent = gw.admin.query(
        lambda s: s.scalar(select(func.sum(RequestRecord.tokens_in + RequestRecord.tokens_out)))
    )
    assert spent <= 5 * 110


def test_one_tenant_exhausting_its_budget_leaves_another_untouched(
    mode_gateway: RunningGateway,
) -> None:
    gw = mode_gateway
    gw.admin.tenant("a", total_budget=120)
    gw.admin.tenant("b", total_budget=120)
    key_a, key_b = gw.admin.key("a"), gw.admin.key("b")
    assert gw.mock is not None
    gw.mock.configure(chunks=100)  # each answer really spends about 100 tokens
    body = {**CHAT, "options": {"num_predict": 100}}
    first = httpx.post(
        gw.url + "/api/chat", json=body, headers={"Authorization": f"Bearer {key_a}"}
    )
    assert first.status_code == 200
    again = httpx.post(
        gw.url + "/api/chat", json=body, headers={"Authorization": f"Bearer {key_a}"}
    )
    assert again.status_code == 429 and int(again.headers["retry-after"]) >= 1
    other = httpx.post(
        gw.url + "/api/chat", json=body, headers={"Authorization": f"Bearer {key_b}"}
    )
    assert other.status_code == 200


def test_slots_return_to_zero_after_a_storm_of_failures(mode_gateway: RunningGateway) -> None:
    gw = mode_gateway
    assert gw.mock is not None
    budget = 10_000_000
    gw.admin.tenant("acme", concurrent=3, daily_budget=budget)
    key = gw.admin.key("acme")
    auth = {"Authorization": f"Bearer {key}"}
    parts = urlsplit(gw.url)
    stream_body = json.dumps({**CHAT, "stream": True}).encode()
    outcomes: dict[str, int] = {}
    for i in range(200):
        kind = ("disconnect", "reset", "busy", "invalid", "ok")[i % 5]
        if kind == "disconnect":
            gw.mock.configure(chunk_delay_s=0.05)
            with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
                sock.sendall(
                    b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + f"Authorization: Bearer {key}\r\n".encode()
                    + f"Content-Length: {len(stream_body)}\r\n\r\n".encode()
                    + stream_body
                )
                sock.recv(200)
            status = 499
        elif kind == "reset":
            gw.mock.configure(fail="after_first_chunk", chunk_delay_s=0.0)
            status = httpx.post(
                gw.url + "/api/chat", json={**CHAT, "stream": True}, headers=auth
            ).status_code
        elif kind == "busy":
            gw.mock.configure(fail="busy", chunk_delay_s=0.0)
            status = httpx.post(gw.url + "/api/chat", json=CHAT, headers=auth).status_code
        elif kind == "invalid":
            gw.mock.configure(fail=None)
            status = httpx.post(
                gw.url + "/api/chat", json={"model": "llama3.2", "messages": 5}, headers=auth
            ).status_code
        else:
            gw.mock.configure(fail=None)
            status = httpx.post(gw.url + "/api/chat", json=CHAT, headers=auth).status_code
        outcomes[f"{kind}:{status}"] = outcomes.get(f"{kind}:{status}", 0) + 1
    gw.mock.reset()
    time.sleep(0.5)
    # No phantom 429: three at once must all be admitted again.
    statuses = asyncio.run(_burst(gw.url + "/api/chat", key, 3))
    assert statuses == [200, 200, 200], outcomes
    assert "ok:429" not in outcomes and "busy:429" not in outcomes
    assert gw.state.backends[0].in_flight == 0
    # The counters agree with the durable usage: what SQL recorded is what is spent.
    gw.wait_audit_flushed()
    spent = gw.admin.query(
        lambda s: s.scalar(select(func.sum(RequestRecord.tokens_in + RequestRecord.tokens_out)))
    )
    probe = httpx.post(
        gw.url + "/api/chat", json={**CHAT, "options": {"num_predict": 1}}, headers=auth
    )
    reserved = 8 + 1 + 1  # message overhead + "hi" (1 token estimated) + num_predict
    assert int(probe.headers["x-budget-tokens-remaining"]) == budget - spent - reserved


def test_redis_down_fails_closed_and_recovers(
    make_gateway: Callable[..., RunningGateway], pg_url: str, redis_url: str,
    redis_server: RedisServer,
) -> None:  # fmt: skip
    gw = make_gateway(database_url=pg_url, redis_url=redis_url)
    key = gw.admin.tenant_and_key("acme")
    auth = {"Authorization": f"Bearer {key}"}
    assert httpx.post(gw.url + "/api/chat", json=CHAT, headers=auth).status_code == 200
    redis_server.stop()
    try:
        started = time.monotonic()
        down = httpx.post(gw.url + "/api/chat", json=CHAT, headers=auth, timeout=5)
        elapsed = time.monotonic() - started
        assert down.status_code == 503 and elapsed < 1.0
        assert gw.proxied()[-1]["path"] == "/api/chat"
        count_before = len(gw.proxied())
        for _ in range(5):
            assert httpx.post(gw.url + "/api/chat", json=CHAT, headers=auth).status_code == 503
        assert len(gw.proxied()) == count_before  # nothing unchecked went upstream
    finally:
        redis_server.start()
    deadline = time.monotonic() + 5
    while httpx.post(gw.url + "/api/chat", json=CHAT, headers=auth).status_code != 200:
        assert time.monotonic() < deadline, "no recovery after Redis came back"
        time.sleep(0.1)


def test_redis_flush_does_not_reset_a_budget(
    make_gateway: Callable[..., RunningGateway], pg_url: str, redis_url: str,
    redis_server: RedisServer,
) -> None:  # fmt: skip
    gw = make_gateway(database_url=pg_url, redis_url=redis_url)
    gw.admin.tenant("acme", total_budget=300)
    key = gw.admin.key("acme")
    body = {**CHAT, "options": {"num_predict": 100}}
    auth = {"Authorization": f"Bearer {key}"}
    spent_statuses = [
        httpx.post(gw.url + "/api/chat", json=body, headers=auth).status_code for _ in range(3)
    ]
    assert 200 in spent_statuses
    gw.wait_audit_flushed()
    spent = gw.admin.query(
        lambda s: s.scalar(select(func.sum(RequestRecord.tokens_in + RequestRecord.tokens_out)))
    )
    redis_server.flushall()
    # After the flush, the store rebuilds from SQL: the remaining budget is 300 - spent.
    resp = httpx.post(
        gw.url + "/api/chat", json={**CHAT, "options": {"num_predict": 1}}, headers=auth
    )
    assert resp.status_code == 200
    assert int(resp.headers["x-budget-tokens-remaining"]) <= 300 - spent
