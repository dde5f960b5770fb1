"""Usage and prompt-log reports for operators (the CLI's `usage` and `prompts`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from neuronetz_gateway.db.models import ApiKey, PromptLog, RequestRecord, Tenant
from neuronetz_gateway.tenancy.service import UnknownKey, UnknownTenant

GroupBy = Literal["day", "model", "key"]


@dataclass(slots=True)
class UsageRow:
    group: str
    requests: int
    tokens_in: int
    tokens_out: int
    tokens: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _day(session: AsyncSession) -> ColumnElement[str]:
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d", RequestRecord.started_at)
    return func.to_char(func.timezone("UTC", RequestRecord.started_at), "YYYY-MM-DD")


async def usage(
    session: AsyncSession,
    *,
    tenant: str,
    key_prefix: str | None = None,
    since: datetime | None = None,
    by: GroupBy = "day",
) -> list[UsageRow]:
    tenant_id = await session.scalar(select(Tenant.id).where(Tenant.name == tenant))
    if tenant_id is None:
        raise UnknownTenant(f"unknown tenant {tenant!r}")
    group: ColumnElement[Any]
    if by == "day":
        group = _day(session)
    elif by == "model":
        group = func.coalesce(RequestRecord.model, "-")
    else:
        group = func.coalesce(RequestRecord.key_prefix, "-")
    stmt = select(
        group.label("g"),
        func.count(),
        func.coalesce(func.sum(RequestRecord.tokens_in), 0),
        func.coalesce(func.sum(RequestRecord.tokens_out), 0),
    ).where(RequestRecord.tenant_id == tenant_id)
    if key_prefix is not None:
        owner = await session.scalar(select(ApiKey.tenant_id).where(ApiKey.prefix == key_prefix))
        if owner != tenant_id:
            raise UnknownKey(f"tenant {tenant!r} has no key with prefix {key_prefix!r}")
        stmt = stmt.where(RequestRecord.key_prefix == key_prefix)
    if since is not None:
        stmt = stmt.where(RequestRecord.started_at >= since)
    rows = (await session.execute(stmt.group_by("g").order_by("g"))).all()
    return [
        UsageRow(str(g), int(n), int(tin), int(tout), int(tin) + int(tout))
        for g, n, tin, tout in rows
    ]


async def prompt_logs(
    session: AsyncSession, *, key_prefix: str, since: datetime | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    key_id = await session.scalar(select(ApiKey.id).where(ApiKey.prefix == key_prefix))
    if key_id is None:
        raise UnknownKey(f"no key with prefix {key_prefix!r}")
    stmt = select(PromptLog).where(PromptLog.key_id == key_id)
    if since is not None:
        stmt = stmt.where(PromptLog.created_at >= since)
    rows = await session.scalars(stmt.order_by(PromptLog.created_at.desc()).limit(limit))
    return [
        {
            "request_id": r.request_id,
            "created_at": r.created_at.isoformat(),
            "expires_at": r.expires_at.isoformat(),
            "model": r.model,
            "prompt": r.prompt,
            "response": r.response,
        }
        for r in rows
    ]
