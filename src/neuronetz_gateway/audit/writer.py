"""The audit queue: one row per request, written in batches off the request path.

Contract:
- ``submit`` never blocks and never drops: rows wait in memory until written.
- ``is_full`` is true while ``capacity`` rows are waiting; the edge then answers 503 to
  new requests (fail closed) until the writer catches up.
- A failed write is retried with back-off, forever while running, so a briefly
  unavailable database costs no rows; ``stop`` flushes what is left (bounded in time).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import math
import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from asyncpg.exceptions import UniqueViolationError
from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from neuronetz_gateway.db.models import PromptLog, RequestRecord

log = structlog.get_logger("neuronetz.audit")

_REQUESTS: Table = RequestRecord.__table__  # type: ignore[assignment]
_PROMPTS: Table = PromptLog.__table__  # type: ignore[assignment]


@dataclass(slots=True)
class PromptRow:
    tenant_id: int
    key_id: int
    created_at: datetime
    expires_at: datetime
    model: str | None
    prompt: Any
    response: str


@dataclass(slots=True)
class AuditRow:
    request_id: str
    started_at: datetime
    finished_at: datetime
    tenant_id: int | None
    key_id: int | None
    key_prefix: str | None
    client_ip: str | None
    surface: str
    method: str
    path: str
    model: str | None
    backend: str | None
    status: int
    tokens_in: int
    tokens_out: int
    latency_ms: float
    ttfb_ms: float | None
    error_class: str | None
    attempts: int
    streamed: bool
    prompt: PromptRow | None = field(default=None)

    def record(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _RECORD_FIELDS}


_RECORD_FIELDS = tuple(f for f in AuditRow.__dataclass_fields__ if f != "prompt")
# ``_sqlite_row`` lists the values in this order (tests/unit/audit checks it).

# A batch that may have been committed already (its reply lost with the connection):
# written again row by row, the rows already there are skipped.
_DUPLICATE = (IntegrityError, UniqueViolationError)


# One row's values in ``_RECORD_FIELDS`` order, as they are (PostgreSQL's binary COPY).
_postgres_row: Callable[[AuditRow], tuple[Any, ...]] = operator.attrgetter(*_RECORD_FIELDS)


# Statement sizes in rows: a batch is cut into these, so only five SQL texts (and five
# prepared statements) ever exist. 20 columns x 400 rows = 8,000 bound values, within
# SQLite's limit since 3.32 (32,766).
_SQLITE_STATEMENT_ROWS = (400, 100, 25, 5, 1)


def _sqlite_chunks(count: int) -> list[tuple[int, int]]:
    chunks: list[tuple[int, int]] = []
    start = 0
    for size in _SQLITE_STATEMENT_ROWS:
        while count - start >= size:
            chunks.append((start, start + size))
            start += size
    return chunks


@functools.lru_cache(maxsize=len(_SQLITE_STATEMENT_ROWS))
def _sqlite_insert(rows: int) -> str:
    # Only our own table and column names go into the text; values are bound parameters.
    one = "(" + ", ".join("?" for _ in _RECORD_FIELDS) + ")"
    head = f"INSERT INTO {_REQUESTS.name} ({', '.join(_RECORD_FIELDS)}) VALUES "  # noqa: S608
    return head + ", ".join(one for _ in range(rows))


def _sqlite_time(value: datetime) -> str:
    # The form SQLAlchemy's SQLite dialect stores (naive UTC text), so the ORM reads these
    # rows back exactly like the ones it wrote itself.
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return f"{value:%Y-%m-%d %H:%M:%S.%f}"


def _sqlite_row(r: AuditRow) -> tuple[Any, ...]:
    """One row's values in ``_RECORD_FIELDS`` order, in SQLite's stored forms."""
    return (
        r.request_id,
        _sqlite_time(r.started_at),
        _sqlite_time(r.finished_at),
        r.tenant_id,
        r.key_id,
        r.key_prefix,
        r.client_ip,
        r.surface,
        r.method,
        r.path,
        r.model,
        r.backend,
        r.status,
        r.tokens_in,
        r.tokens_out,
        r.latency_ms,
        r.ttfb_ms,
        r.error_class,
        r.attempts,
        int(r.streamed),
    )


def _sqlite_params(rows: list[AuditRow]) -> tuple[Any, ...]:
    # A tuple: the driver reads a list as many parameter sets (executemany).
    params: list[Any] = []
    for row in rows:
        params += _sqlite_row(row)
    return tuple(params)


class AuditWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        capacity: int,
        batch_size: int = 2000,
        idle_flush_s: float = 0.1,
        shutdown_grace_s: float = 10.0,
    ) -> None:
        self._engine = engine
        self.capacity = capacity
        self._batch = batch_size
        self._idle = idle_flush_s
        self._grace = shutdown_grace_s
        self._rows: collections.deque[AuditRow] = collections.deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # PostgreSQL: one connection kept for COPY (no pool checkout and liveness ping per
        # batch); dropped on any failure and opened again by the next attempt.
        self._copy_connection: AsyncConnection | None = None
        self.written = 0
        self.failures = 0

    @property
    def depth(self) -> int:
        return len(self._rows)

    def is_full(self) -> bool:
        return len(self._rows) >= self.capacity

    def submit(self, row: AuditRow) -> None:
        self._rows.append(row)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="audit-writer")

    async def _loop(self) -> None:
        backoff = 0.05
        loop = asyncio.get_running_loop()
        last_flush = -math.inf
        while True:
            if not self._rows:
                self._wake.clear()
                await self._wake.wait()
            # Let a batch gather: each write has a fixed cost of a few milliseconds of CPU
            # (transaction, driver round trips), so fewer, larger batches are cheaper. A
            # flush starts at most every ``idle_flush_s``, but at once when the last one
            # took that long already: under load the writer never sleeps while behind.
            if len(self._rows) < self._batch:
                pause = self._idle - (loop.time() - last_flush)
                if pause > 0:
                    await asyncio.sleep(pause)
            last_flush = loop.time()
            try:
                await self.flush_once()
                backoff = 0.05
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                log.warning(
                    "audit write failed; retrying", error=type(exc).__name__, queued=len(self._rows)
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def flush_once(self) -> None:
        """Write up to one batch; the rows leave the queue only once committed."""
        batch = [self._rows[i] for i in range(min(self._batch, len(self._rows)))]
        if not batch:
            return
        try:
            await self._write(batch)
        except _DUPLICATE:
            # A batch whose commit landed before the connection dropped: write row by row.
            for row in batch:
                try:
                    await self._write([row])
                except _DUPLICATE:
                    pass
        for _ in batch:
            self._rows.popleft()
        self.written += len(batch)

    async def _write(self, batch: list[AuditRow]) -> None:
        if self._engine.dialect.name == "postgresql" and all(r.prompt is None for r in batch):
            await self._copy(batch)
            return
        async with self._engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                # Multi-row INSERTs: aiosqlite's executemany hands the GIL back and forth
                # once per row, which throttled the writer to ~1,300 rows/s under load.
                for start, end in _sqlite_chunks(len(batch)):
                    chunk = batch[start:end]
                    await conn.exec_driver_sql(_sqlite_insert(len(chunk)), _sqlite_params(chunk))
            else:
                # Batches with prompt logs (opt-in, rare): both tables in one transaction,
                # by Core inserts (the ORM's unit of work costs ~2.5x the CPU per row).
                await conn.execute(_REQUESTS.insert(), [r.record() for r in batch])
            prompts = [
                {"request_id": r.request_id, **asdict(r.prompt)}
                for r in batch
                if r.prompt is not None
            ]
            if prompts:
                await conn.execute(_PROMPTS.insert(), prompts)

    async def _copy(self, batch: list[AuditRow]) -> None:
        """PostgreSQL, no prompt logs: the batch as one binary ``COPY``, atomic on its own.
        Measured against Core's executemany: ~6 against ~16 µs of CPU per row, ~0.1
        against ~1.1 ms per batch (docs/ARCHITECTURE.md, "Audit rows in batches")."""
        connection = self._copy_connection
        try:
            if connection is None:
                connection = self._copy_connection = await self._engine.connect()
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            await driver.copy_records_to_table(
                _REQUESTS.name, records=[_postgres_row(r) for r in batch], columns=_RECORD_FIELDS
            )
        except UniqueViolationError:
            raise  # the connection is fine; the caller writes row by row
        except BaseException:
            await self._drop_copy_connection()
            raise

    async def _drop_copy_connection(self) -> None:
        connection, self._copy_connection = self._copy_connection, None
        if connection is None:
            return
        try:
            await connection.invalidate()
            await connection.close()
        except Exception as exc:  # already broken: nothing more to release
            log.debug("audit connection drop failed", error=type(exc).__name__)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        deadline = asyncio.get_running_loop().time() + self._grace
        while self._rows and asyncio.get_running_loop().time() < deadline:
            try:
                await self.flush_once()
            except Exception as exc:
                log.warning("audit flush at shutdown failed", error=type(exc).__name__)
                await asyncio.sleep(0.2)
        if self._rows:
            log.error("audit rows lost at shutdown", count=len(self._rows))
        connection, self._copy_connection = self._copy_connection, None
        if connection is not None:
            try:
                await connection.close()
            except Exception as exc:
                log.debug("audit connection close failed", error=type(exc).__name__)
