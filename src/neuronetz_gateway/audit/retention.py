"""Retention: expired prompt logs and audit rows past their retention are deleted.

Request rows also carry token usage; before they go, their tokens are added to
``usage_carryover`` in the same transaction, so a total budget never grows back.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import delete, func, select

from neuronetz_gateway.db.engine import AsyncSession, SessionFactory
from neuronetz_gateway.db.models import PromptLog, RequestRecord, UsageCarryover

log = structlog.get_logger("neuronetz.retention")


@dataclass(frozen=True, slots=True)
class PurgeResult:
    prompt_rows: int
    request_rows: int


async def _carry_over(session: AsyncSession, cutoff: datetime) -> None:
    for kind, column in (("key", RequestRecord.key_id), ("tenant", RequestRecord.tenant_id)):
        totals = await session.execute(
            select(column, func.sum(RequestRecord.tokens_in + RequestRecord.tokens_out))
            .where(RequestRecord.started_at < cutoff, column.is_not(None))
            .group_by(column)
        )
        for subject_id, tokens in totals.all():
            if not tokens:
                continue
            row = await session.get(UsageCarryover, (kind, subject_id))
            if row is None:
                session.add(UsageCarryover(subject_kind=kind, subject_id=subject_id, tokens=tokens))
            else:
                row.tokens += int(tokens)


async def purge(
    sessions: SessionFactory, *, audit_retention_days: int, now: datetime | None = None
) -> PurgeResult:
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=audit_retention_days)
    async with sessions() as session, session.begin():
        prompts = await session.execute(delete(PromptLog).where(PromptLog.expires_at <= now))
        await _carry_over(session, cutoff)
        requests = await session.execute(
            delete(RequestRecord).where(RequestRecord.started_at < cutoff)
        )
    return PurgeResult(prompts.rowcount or 0, requests.rowcount or 0)  # type: ignore[attr-defined]


class RetentionTask:
    """Runs ``purge`` at start and then every ``interval_s`` (hourly by default)."""

    def __init__(
        self, sessions: SessionFactory, *, audit_retention_days: int, interval_s: float = 3600
    ) -> None:
        self._sessions = sessions
        self._days = audit_retention_days
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            try:
                result = await purge(self._sessions, audit_retention_days=self._days)
                if result.prompt_rows or result.request_rows:
                    log.info("purged", prompts=result.prompt_rows, requests=result.request_rows)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("purge failed", error=type(exc).__name__)
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
