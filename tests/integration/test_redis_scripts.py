"""The pipelined hot-path client on a real Redis: ordering, fallbacks and every failure."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import pytest
import redis
import uvloop
from redis.exceptions import ConnectionError, RedisError, ResponseError, TimeoutError

from neuronetz_gateway.limits.base import Limits, Subject, SubjectKind
from neuronetz_gateway.limits.redis import RedisLimitStore
from neuronetz_gateway.redis_scripts import Script, ScriptClient
from neuronetz_gateway.upstream.scheduler import SlotRequest
from neuronetz_gateway.upstream.scheduler_redis import RedisScheduler
from tests.fixtures.redis import RedisServer
from tests.integration.scheduling.test_scheduler_contract import make_backends

ECHO = Script.load("tests.integration", "echo.lua")


class NoUsage:
    async def spent_since(self, kind: SubjectKind, subject_id: int, since: datetime | None) -> int:
        return 0


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[ScriptClient]:
    made = ScriptClient(redis_url, timeout_s=2.0)
    yield made
    await made.aclose()


def admin(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)


def connected_clients(url: str) -> int:
    with admin(url) as conn:
        return int(conn.info("clients")["connected_clients"])


async def test_concurrent_callers_share_one_connection_and_get_their_own_reply(
    client: ScriptClient, redis_url: str
) -> None:
    before = connected_clients(redis_url)
    replies = await asyncio.gather(
        *(client.run(ECHO, [f"k{i}"], [i, f"arg-{i}"]) for i in range(300))
    )
    assert replies == [[f"k{i}", str(i), f"arg-{i}"] for i in range(300)]
    counts = await asyncio.gather(*(client.execute("INCR", "counter") for _ in range(50)))
    assert sorted(counts) == list(range(1, 51))
    assert connected_clients(redis_url) == before + 1


async def test_an_unknown_script_is_sent_in_full_once(client: ScriptClient, redis_url: str) -> None:
    with admin(redis_url) as conn:
        conn.script_flush()
        conn.config_resetstat()
        replies = await asyncio.gather(*(client.run(ECHO, ["a"], [n]) for n in range(3)))
        assert replies == [["a", str(n)] for n in range(3)]
        assert await client.run(ECHO, ["b"], []) == ["b"]
        stats = conn.info("commandstats")
    assert stats["cmdstat_eval"]["calls"] == 3  # one per call that found the script missing
    assert stats["cmdstat_evalsha"]["calls"] == 4


async def test_an_error_reply_is_raised_and_the_connection_stays_usable(
    client: ScriptClient,
) -> None:
    await client.execute("SET", "text", "not a number")
    with pytest.raises(ResponseError):
        await client.execute("INCR", "text")
    with pytest.raises(ResponseError):
        await client.run(ECHO, [], ["fail"])  # the script raises for this argument
    assert await client.execute("PING") == "PONG"


async def test_a_cancelled_caller_does_not_shift_the_replies(client: ScriptClient) -> None:
    blocked = asyncio.ensure_future(client.execute("BLPOP", "empty-list", 0.3))
    await asyncio.sleep(0.05)
    blocked.cancel()
    # Sent behind the cancelled call: its reply must be its own, not the BLPOP's nil.
    assert await client.execute("PING") == "PONG"
    assert await client.execute("ECHO", "after") == "after"


async def test_redis_killed_mid_flight_fails_fast_and_the_client_recovers(
    redis_url: str, redis_server: RedisServer
) -> None:
    client = ScriptClient(redis_url, timeout_s=5.0)
    try:
        assert await client.execute("PING") == "PONG"
        in_flight = asyncio.ensure_future(client.execute("BLPOP", "empty-list", 4))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        await asyncio.to_thread(redis_server.stop)
        try:
            with pytest.raises(ConnectionError):
                await in_flight
            for _ in range(3):
                with pytest.raises(ConnectionError):
                    await client.run(ECHO, ["k"], [])
            assert time.perf_counter() - started < 3.0  # the stop itself takes most of it
        finally:
            await asyncio.to_thread(redis_server.start)
        assert await client.run(ECHO, ["k"], []) == ["k"]
    finally:
        await client.aclose()


async def test_no_reply_within_the_timeout_fails_every_call_in_flight(
    redis_url: str, redis_server: RedisServer
) -> None:
    client = ScriptClient(redis_url, timeout_s=0.2)
    try:
        assert await client.execute("PING") == "PONG"
        with admin(redis_url) as conn:
            conn.client_pause(700, all=True)
        started = time.perf_counter()
        results = await asyncio.gather(
            *(client.run(ECHO, ["k"], [n]) for n in range(5)), return_exceptions=True
        )
        elapsed = time.perf_counter() - started
        assert all(isinstance(r, TimeoutError) for r in results), results
        assert 0.15 < elapsed < 0.5
        await asyncio.sleep(0.6)
        assert await client.run(ECHO, ["k"], ["back"]) == ["k", "back"]
    finally:
        await client.aclose()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP port that accepts connections and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}"


async def test_a_server_that_never_answers_times_out(silent_server: str) -> None:
    for url in (silent_server, silent_server + "/2"):  # "/2": the handshake's SELECT hangs
        client = ScriptClient(url, timeout_s=0.2)
        try:
            started = time.perf_counter()
            with pytest.raises((TimeoutError, ConnectionError)):
                await client.execute("PING")
            # One deadline for connecting and answering, not one for each.
            assert time.perf_counter() - started < 0.35
        finally:
            await client.aclose()


async def test_the_url_selects_the_database_and_a_refused_handshake_fails(
    redis_url: str,
) -> None:
    client = ScriptClient(redis_url.rsplit("/", 1)[0] + "/3", timeout_s=2.0)
    try:
        await client.execute("SET", "where", "db3")
        with redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/3", decode_responses=True) as db3:
            assert db3.get("where") == "db3"
    finally:
        await client.aclose()
    host = redis_url.removeprefix("redis://")
    wrong = ScriptClient(f"redis://:no-such-password@{host}", timeout_s=2.0)
    try:
        with pytest.raises(ConnectionError):  # the server has no password: AUTH fails
            await wrong.execute("PING")
    finally:
        await wrong.aclose()


async def test_concurrent_callers_share_one_failed_connect() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ScriptClient(f"redis://127.0.0.1:{port}", timeout_s=0.5)
    try:
        results = await asyncio.gather(
            *(client.execute("PING") for _ in range(10)), return_exceptions=True
        )
        assert all(isinstance(r, ConnectionError) for r in results)
    finally:
        await client.aclose()


def test_runs_on_uvloop(redis_url: str, redis_server: RedisServer) -> None:
    """The gateway serves on uvloop, whose transports are not asyncio's classes."""

    async def scenario() -> None:
        client = ScriptClient(redis_url, timeout_s=0.3)
        try:
            replies = await asyncio.gather(*(client.run(ECHO, ["k"], [i]) for i in range(50)))
            assert replies == [["k", str(i)] for i in range(50)]
            with admin(redis_url) as conn:
                conn.script_flush()
            assert await client.run(ECHO, ["k"], ["again"]) == ["k", "again"]
            with admin(redis_url) as conn:
                conn.client_pause(500, all=True)
            with pytest.raises(TimeoutError):
                await client.execute("PING")
            await asyncio.sleep(0.5)
            assert await client.execute("PING") == "PONG"
            await asyncio.to_thread(redis_server.stop)
            try:
                with pytest.raises(RedisError):
                    await client.execute("PING")
            finally:
                await asyncio.to_thread(redis_server.start)
            assert await client.execute("PING") == "PONG"
        finally:
            await client.aclose()

    uvloop.run(scenario())


async def test_the_stores_share_one_client_and_leave_it_to_its_owner(redis_url: str) -> None:
    shared = ScriptClient(redis_url, timeout_s=2.0)
    backends = make_backends(a=1)
    before = connected_clients(redis_url)
    limits = RedisLimitStore(redis_url, NoUsage(), client=shared)
    scheduler = RedisScheduler(
        redis_url, backends, default_timeout_s=2.0, max_depth_per_tenant=10, client=shared
    )
    await scheduler.start()
    try:
        reservation = await limits.admit("r1", [Subject("key", 1, Limits(concurrent=1))], 10)
        slot = await scheduler.acquire(backends, SlotRequest(1, "a-corp"))
        slot.release()
        await limits.settle(reservation, 5)
        # The scripts' connection and the scheduler's grant channel, nothing more.
        assert connected_clients(redis_url) == before + 2
    finally:
        await scheduler.aclose()
        await limits.aclose()
    assert await shared.execute("PING") == "PONG"  # still open: its owner closes it
    await shared.aclose()
    with pytest.raises(ConnectionError):
        await shared.execute("PING")
