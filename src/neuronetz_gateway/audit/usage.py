"""Token usage as recorded in the SQL store: the truth that limit counters rebuild from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from neuronetz_gateway.db.engine import SessionFactory
from neuronetz_gateway.db.models import RequestRecord, UsageCarryover
from neuronetz_gateway.limits.base import SubjectKind


class SqlUsage:
    """``limits.base.UsageSource`` over the requests table."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def spent_since(self, kind: SubjectKind, subject_id: int, since: datetime | None) -> int:
        column = RequestRecord.key_id if kind == "key" else RequestRecord.tenant_id
        stmt = select(
            func.coalesce(func.sum(RequestRecord.tokens_in + RequestRecord.tokens_out), 0)
        ).where(column == subject_id)
        if since is not None:
            stmt = stmt.where(RequestRecord.started_at >= since)
        async with self._sessions() as session:
            spent = int(await session.scalar(stmt) or 0)
            if since is None:  # all time: add what the retention purge folded away
                carried = await session.get(UsageCarryover, (kind, subject_id))
                spent += carried.tokens if carried is not None else 0
            return spent
