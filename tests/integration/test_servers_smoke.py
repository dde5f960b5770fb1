"""The real servers under the tests: reachable, isolated per test, able to go down and come back.

Fixtures from ``tests/fixtures/postgres.py`` and ``tests/fixtures/redis.py``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest
import redis.asyncio
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from tests.fixtures import ServerStartError
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.redis import RedisServer


async def public_tables(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        )
        return list(result.scalars())


# --- PostgreSQL ------------------------------------------------------------------------------


async def test_postgres_writes_and_reads_a_row(pg_url: str) -> None:
    assert pg_url.startswith("postgresql+asyncpg://")
    engine = create_async_engine(pg_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE tenant (id int PRIMARY KEY, name text NOT NULL)"))
            await conn.execute(text("INSERT INTO tenant VALUES (1, 'acme')"))
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, name FROM tenant"))).all()
            database = (await conn.execute(text("SELECT current_database()"))).scalar_one()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in rows] == [(1, "acme")]
    assert database == make_url(pg_url).database


async def test_two_databases_of_one_test_are_separate(
    pg_url: str, create_pg_database: Callable[[], str]
) -> None:
    other_url = create_pg_database()
    assert make_url(other_url).database != make_url(pg_url).database
    engine, other = create_async_engine(pg_url), create_async_engine(other_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE only_here (id int)"))
        assert await public_tables(engine) == ["only_here"]
        assert await public_tables(other) == []
    finally:
        await engine.dispose()
        await other.dispose()


@pytest.mark.parametrize("run", [1, 2])
async def test_every_test_gets_an_empty_database(pg_url: str, run: int) -> None:
    # Both runs create the same table: the second fails if it inherits the first's database.
    engine = create_async_engine(pg_url)
    try:
        assert await public_tables(engine) == []
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE leftover (run int)"))
    finally:
        await engine.dispose()


async def test_postgres_outage_and_recovery_keep_data_and_url(
    postgres_server: PostgresServer, pg_url: str
) -> None:
    # No pool: every statement below opens a connection of its own, as after a real outage.
    engine = create_async_engine(pg_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE survivor (id int)"))
            await conn.execute(text("INSERT INTO survivor VALUES (7)"))
        await asyncio.to_thread(postgres_server.stop)
        try:
            with pytest.raises(OSError, match="Connect call failed"):
                await public_tables(engine)
        finally:
            await asyncio.to_thread(postgres_server.start)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT id FROM survivor"))).scalar_one() == 7
    finally:
        await engine.dispose()


# --- Redis -----------------------------------------------------------------------------------


async def test_redis_sets_and_gets(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await client.set("greeting", "hallo", ex=60) is True
        assert await client.get("greeting") == b"hallo"
        assert 0 < await client.ttl("greeting") <= 60
    finally:
        await client.aclose()


@pytest.mark.parametrize("run", [1, 2])
async def test_every_test_gets_an_empty_redis(redis_url: str, run: int) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await client.dbsize() == 0
        # NX: the second run fails if it sees the first run's key.
        assert await client.set("leftover", run, nx=True) is True
    finally:
        await client.aclose()


async def test_redis_outage_and_recovery_on_the_same_url(
    redis_server: RedisServer, redis_url: str
) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await client.set("before", "1")
        await asyncio.to_thread(redis_server.stop)
        try:
            with pytest.raises(redis.ConnectionError):
                await client.get("before")
        finally:
            await asyncio.to_thread(redis_server.start)
        # The same client reconnects; nothing was persisted across the restart.
        assert await client.set("after", "1") is True
        assert await client.get("before") is None
    finally:
        await client.aclose()


def test_a_server_that_cannot_start_says_why() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(ServerStartError, match=r"(?s)exited.*Address already in use"):
            RedisServer.spawn(port=port)
