"""The audit writer on PostgreSQL: batches without prompt logs go in by binary COPY on a
connection the writer keeps; batches with prompt logs by Core inserts, both tables in one
transaction. Every value must come back as written, a batch already committed must not
be written twice, and a broken connection must cost no row."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from neuronetz_gateway.audit.writer import _RECORD_FIELDS, AuditRow, AuditWriter, PromptRow
from neuronetz_gateway.db.engine import create_engine
from neuronetz_gateway.db.migrate import upgrade
from neuronetz_gateway.db.models import PromptLog, RequestRecord

START = datetime(2026, 11, 26, 15, 0, 0, 123456, tzinfo=UTC)


def _row(request_id: str, **changes: object) -> AuditRow:
    values: dict[str, object] = {
        "request_id": request_id,
        "started_at": START,
        # Another zone on purpose: it must be stored as the same instant.
        "finished_at": datetime(2026, 11, 26, 16, 0, 0, 5, tzinfo=timezone(timedelta(hours=1))),
        "tenant_id": 3,
        "key_id": 4,
        "key_prefix": "nz_abcdefghi",
        "client_ip": "10.0.0.1",
        "surface": "openai",
        "method": "POST",
        "path": "/v1/chat/completions",
        "model": "llama3.2",
        "backend": "gpu-a",
        "status": 200,
        "tokens_in": 11,
        "tokens_out": 12,
        "latency_ms": 1.5,
        "ttfb_ms": 0.25,
        "error_class": None,
        "attempts": 2,
        "streamed": True,
    }
    values.update(changes)
    return AuditRow(**values)  # type: ignore[arg-type]


@pytest.fixture
async def engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade(pg_url)
    engine = create_engine(pg_url)
    yield engine
    await engine.dispose()


async def _stored(engine: AsyncEngine) -> list[RequestRecord]:
    async with engine.connect() as conn:
        result = await conn.execute(select(RequestRecord).order_by(RequestRecord.id))
        return list(result.all())  # type: ignore[arg-type]


async def test_copy_stores_every_value_as_written(engine: AsyncEngine) -> None:
    writer = AuditWriter(engine, capacity=100)
    rows = [
        _row("a"),
        # NULLs, a refusal, and the smallest values of each column.
        _row(
            "b",
            tenant_id=None,
            key_id=None,
            key_prefix=None,
            model=None,
            backend=None,
            status=429,
            tokens_in=0,
            tokens_out=0,
            ttfb_ms=None,
            error_class="auth_throttle",
            attempts=0,
            streamed=False,
        ),
    ]
    for row in rows:
        writer.submit(row)
    await writer.flush_once()
    assert writer.depth == 0 and writer.written == 2
    stored = await _stored(engine)
    assert len(stored) == 2
    for row, back in zip(rows, stored, strict=True):
        for name in _RECORD_FIELDS:
            want = getattr(row, name)
            got = getattr(back, name)
            if isinstance(want, datetime):
                assert got == want and got.utcoffset() == timedelta(0), name
            else:
                assert got == want, name
    await writer.stop()


async def test_a_batch_already_committed_is_not_written_twice(engine: AsyncEngine) -> None:
    writer = AuditWriter(engine, capacity=100)
    writer.submit(_row("first"))
    await writer.flush_once()
    # As after a lost commit reply: the batch comes again, with one row that is new.
    writer.submit(_row("first"))
    writer.submit(_row("second"))
    await writer.flush_once()
    assert writer.depth == 0
    assert [r.request_id for r in await _stored(engine)] == ["first", "second"]
    await writer.stop()


async def test_a_broken_connection_costs_no_row(engine: AsyncEngine) -> None:
    writer = AuditWriter(engine, capacity=100)
    writer.submit(_row("before"))
    await writer.flush_once()
    # The server ends the writer's kept connection (an idle timeout, a restart, a failover).
    async with engine.connect() as admin:
        ended = await admin.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    assert ended == 1
    writer.submit(_row("after"))
    with pytest.raises(Exception):  # noqa: B017 - any driver error; the row stays queued
        await writer.flush_once()
    assert writer.depth == 1
    await writer.flush_once()  # the next attempt connects again
    assert writer.depth == 0
    assert [r.request_id for r in await _stored(engine)] == ["before", "after"]
    await writer.stop()


async def test_prompt_logs_go_in_with_their_rows(engine: AsyncEngine) -> None:
    writer = AuditWriter(engine, capacity=100)
    prompt = PromptRow(
        tenant_id=3,
        key_id=4,
        created_at=START,
        expires_at=START + timedelta(days=3),
        model="llama3.2",
        prompt=[{"role": "user", "content": "hi"}],
        response="Echo: hi",
    )
    writer.submit(_row("plain"))
    writer.submit(replace(_row("logged"), prompt=prompt))
    await writer.flush_once()
    assert [r.request_id for r in await _stored(engine)] == ["plain", "logged"]
    async with engine.connect() as conn:
        logs = (await conn.execute(select(PromptLog))).all()
        assert [(p.request_id, p.prompt, p.response) for p in logs] == [
            ("logged", [{"role": "user", "content": "hi"}], "Echo: hi")
        ]
        assert await conn.scalar(select(func.count()).select_from(RequestRecord)) == 2
    await writer.stop()
