"""Tenants and API keys: the operations behind the CLI, on one SQL session.

Every mutation also bumps ``gateway_state.revision`` in the same transaction, which is
how running gateways learn to drop cached keys and limits (see ``auth.revision``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from neuronetz_gateway.auth.hashing import KeyHasher
from neuronetz_gateway.auth.keys import generate_key, is_well_formed_prefix, key_prefix
from neuronetz_gateway.db.models import ApiKey, GatewayState, Tenant
from neuronetz_gateway.tenancy.values import (
    LIMIT_FIELDS,
    InvalidValue,
    check_limit,
    check_models,
    check_name,
)


class Unset:
    """Marks an optional argument that was not given (None means 'clear the value')."""


UNSET = Unset()


def check_queue_timeout(value: float | None) -> float | None:
    if value is not None and not 0 < value <= 3600:
        raise InvalidValue("the queue timeout must be between 0 and 3600 seconds")
    return value


class TenancyError(Exception):
    """A refused tenant or key operation, with a one-line message for the operator."""


class UnknownTenant(TenancyError):
    pass


class UnknownKey(TenancyError):
    pass


class DuplicateName(TenancyError):
    pass


@dataclass(slots=True)
class LimitValues:
    rpm: int | None = None
    tpm: int | None = None
    concurrent: int | None = None
    daily_budget: int | None = None
    monthly_budget: int | None = None
    total_budget: int | None = None

    def checked(self) -> LimitValues:
        for name in LIMIT_FIELDS:
            check_limit(name, getattr(self, name))
        return self


@dataclass(slots=True)
class TenantView:
    id: int
    name: str
    enabled: bool
    allow_all_models: bool
    allowed_models: list[str]
    weight: int
    queue_timeout_s: float | None
    rpm: int | None
    tpm: int | None
    concurrent: int | None
    daily_budget: int | None
    monthly_budget: int | None
    total_budget: int | None
    created_at: str

    @classmethod
    def of(cls, t: Tenant) -> TenantView:
        return cls(
            id=t.id,
            name=t.name,
            enabled=t.enabled,
            allow_all_models=t.allow_all_models,
            allowed_models=list(t.allowed_models or []),
            weight=t.weight,
            queue_timeout_s=t.queue_timeout_s,
            created_at=t.created_at.isoformat(),
            **{f: getattr(t, f) for f in LIMIT_FIELDS},
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class KeyView:
    """What may be shown of a key: never the key itself, never its hash."""

    id: int
    prefix: str
    name: str
    tenant: str
    created_at: str
    last_used_at: str | None
    expires_at: str | None
    revoked: bool
    log_prompts: bool
    prompt_retention_days: int | None
    rpm: int | None
    tpm: int | None
    concurrent: int | None
    daily_budget: int | None
    monthly_budget: int | None
    total_budget: int | None
    status: str = field(default="active")

    @classmethod
    def of(cls, k: ApiKey, tenant_name: str, now: datetime | None = None) -> KeyView:
        now = now or datetime.now(UTC)
        status = "active"
        if k.revoked_at is not None:
            status = "revoked"
        elif k.expires_at is not None and k.expires_at <= now:
            status = "expired"
        return cls(
            id=k.id,
            prefix=k.prefix,
            name=k.name,
            tenant=tenant_name,
            created_at=k.created_at.isoformat(),
            last_used_at=k.last_used_at.isoformat() if k.last_used_at else None,
            expires_at=k.expires_at.isoformat() if k.expires_at else None,
            revoked=k.revoked_at is not None,
            log_prompts=k.log_prompts,
            prompt_retention_days=k.prompt_retention_days,
            status=status,
            **{f: getattr(k, f) for f in LIMIT_FIELDS},
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class CreatedKey:
    view: KeyView
    key: str  # shown to the operator exactly once


async def bump_revision(session: AsyncSession) -> None:
    await session.execute(
        update(GatewayState)
        .where(GatewayState.id == 1)
        .values(revision=GatewayState.revision + 1, updated_at=datetime.now(UTC))
    )


async def current_revision(session: AsyncSession) -> int:
    value = await session.scalar(select(GatewayState.revision).where(GatewayState.id == 1))
    return int(value or 0)


async def _tenant_by_name(session: AsyncSession, name: str) -> Tenant:
    tenant = await session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is None:
        raise UnknownTenant(f"unknown tenant {name!r}")
    return tenant


async def create_tenant(
    session: AsyncSession,
    *,
    name: str,
    limits: LimitValues | None = None,
    allowed_models: Sequence[str] = (),
    allow_all_models: bool = False,
    weight: int = 1,
    queue_timeout_s: float | None = None,
) -> TenantView:
    try:
        check_name("tenant", name)
        lim = (limits or LimitValues()).checked()
        models = check_models(list(allowed_models))
        if weight < 1 or weight > 1000:
            raise InvalidValue("weight must be between 1 and 1000")
        check_queue_timeout(queue_timeout_s)
    except InvalidValue as exc:
        raise TenancyError(str(exc)) from None
    if await session.scalar(select(Tenant.id).where(Tenant.name == name)) is not None:
        raise DuplicateName(f"a tenant named {name!r} already exists")
    tenant = Tenant(
        name=name,
        enabled=True,
        allow_all_models=allow_all_models,
        allowed_models=models,
        weight=weight,
        queue_timeout_s=queue_timeout_s,
        **asdict(lim),
    )
    session.add(tenant)
    await bump_revision(session)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise DuplicateName(f"a tenant named {name!r} already exists") from None
    return TenantView.of(tenant)


async def update_tenant(
    session: AsyncSession,
    name: str,
    *,
    limits: dict[str, int | None] | None = None,
    allow_models: Sequence[str] = (),
    disallow_models: Sequence[str] = (),
    set_models: Sequence[str] | None = None,
    allow_all_models: bool | None = None,
    weight: int | None = None,
    queue_timeout_s: float | Unset | None = UNSET,
    rename: str | None = None,
) -> TenantView:
    """Change only what is given; ``limits`` maps a field to its new value (None: unlimited)."""
    tenant = await _tenant_by_name(session, name)
    try:
        for fld, value in (limits or {}).items():
            if fld not in LIMIT_FIELDS:
                raise InvalidValue(f"unknown limit {fld!r}")
            setattr(tenant, fld, check_limit(fld, value))
        models = list(tenant.allowed_models or [])
        if set_models is not None:
            models = check_models(list(set_models))
        for m in check_models(list(allow_models)):
            if m not in models:
                models.append(m)
        drop = set(check_models(list(disallow_models)))
        tenant.allowed_models = [m for m in models if m not in drop]
        if allow_all_models is not None:
            tenant.allow_all_models = allow_all_models
        if weight is not None:
            if weight < 1 or weight > 1000:
                raise InvalidValue("weight must be between 1 and 1000")
            tenant.weight = weight
        if not isinstance(queue_timeout_s, Unset):
            tenant.queue_timeout_s = check_queue_timeout(queue_timeout_s)
        if rename is not None and rename != name:
            check_name("tenant", rename)
            if await session.scalar(select(Tenant.id).where(Tenant.name == rename)) is not None:
                raise DuplicateName(f"a tenant named {rename!r} already exists")
            tenant.name = rename
    except InvalidValue as exc:
        await session.rollback()
        raise TenancyError(str(exc)) from None
    tenant.updated_at = datetime.now(UTC)
    await bump_revision(session)
    await session.commit()
    return TenantView.of(tenant)


async def set_tenant_enabled(session: AsyncSession, name: str, enabled: bool) -> TenantView:
    tenant = await _tenant_by_name(session, name)
    tenant.enabled = enabled
    tenant.updated_at = datetime.now(UTC)
    await bump_revision(session)
    await session.commit()
    return TenantView.of(tenant)


async def list_tenants(session: AsyncSession) -> list[TenantView]:
    rows = await session.scalars(select(Tenant).order_by(Tenant.name))
    return [TenantView.of(t) for t in rows]


async def get_tenant(session: AsyncSession, name: str) -> TenantView:
    return TenantView.of(await _tenant_by_name(session, name))


async def create_key(
    session: AsyncSession,
    hasher: KeyHasher,
    *,
    tenant: str,
    name: str,
    limits: LimitValues | None = None,
    expires_in: timedelta | None = None,
    log_prompts: bool = False,
    prompt_retention_days: int | None = None,
    now: datetime | None = None,
) -> CreatedKey:
    """Create a key; the returned ``CreatedKey.key`` is the only copy there will ever be."""
    owner = await _tenant_by_name(session, tenant)
    try:
        check_name("key", name)
        lim = (limits or LimitValues()).checked()
        if prompt_retention_days is not None and not 1 <= prompt_retention_days <= 3650:
            raise InvalidValue("prompt retention must be between 1 and 3650 days")
        if prompt_retention_days is not None and not log_prompts:
            raise InvalidValue("--prompt-retention-days needs --log-prompts")
    except InvalidValue as exc:
        raise TenancyError(str(exc)) from None
    exists = await session.scalar(
        select(ApiKey.id).where(ApiKey.tenant_id == owner.id, ApiKey.name == name)
    )
    if exists is not None:
        raise DuplicateName(f"tenant {tenant!r} already has a key named {name!r}")
    now = now or datetime.now(UTC)
    for _ in range(5):
        full = generate_key()
        prefix = key_prefix(full)
        if await session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)) is None:
            break
    else:  # pragma: no cover - 62**9 prefixes make this practically impossible
        raise TenancyError("could not allocate a unique key prefix")
    key = ApiKey(
        tenant_id=owner.id,
        name=name,
        prefix=prefix,
        key_hash=hasher.hash(full),
        created_at=now,
        expires_at=(now + expires_in) if expires_in else None,
        log_prompts=log_prompts,
        prompt_retention_days=prompt_retention_days,
        **asdict(lim),
    )
    session.add(key)
    await bump_revision(session)
    await session.commit()
    return CreatedKey(view=KeyView.of(key, owner.name, now), key=full)


async def list_keys(session: AsyncSession, tenant: str | None = None) -> list[KeyView]:
    stmt = select(ApiKey, Tenant.name).join(Tenant, ApiKey.tenant_id == Tenant.id)
    if tenant is not None:
        await _tenant_by_name(session, tenant)
        stmt = stmt.where(Tenant.name == tenant)
    rows = await session.execute(stmt.order_by(Tenant.name, ApiKey.created_at, ApiKey.id))
    return [KeyView.of(k, tname) for k, tname in rows.all()]


async def _key_by_prefix(session: AsyncSession, prefix: str) -> ApiKey:
    if not is_well_formed_prefix(prefix):
        raise UnknownKey(f"{prefix!r} is not a key prefix (12 characters starting with 'nz_')")
    key = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None:
        raise UnknownKey(f"no key with prefix {prefix!r}")
    return key


async def revoke_key(session: AsyncSession, prefix: str) -> KeyView:
    key = await _key_by_prefix(session, prefix)
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
    await bump_revision(session)
    await session.commit()
    tenant_name = await session.scalar(select(Tenant.name).where(Tenant.id == key.tenant_id))
    return KeyView.of(key, tenant_name or "?")


async def update_key(
    session: AsyncSession,
    prefix: str,
    *,
    limits: dict[str, int | None] | None = None,
    expires_in: timedelta | None = None,
    clear_expiry: bool = False,
) -> KeyView:
    key = await _key_by_prefix(session, prefix)
    try:
        for fld, value in (limits or {}).items():
            if fld not in LIMIT_FIELDS:
                raise InvalidValue(f"unknown limit {fld!r}")
            setattr(key, fld, check_limit(fld, value))
    except InvalidValue as exc:
        await session.rollback()
        raise TenancyError(str(exc)) from None
    if clear_expiry:
        key.expires_at = None
    elif expires_in is not None:
        key.expires_at = datetime.now(UTC) + expires_in
    await bump_revision(session)
    await session.commit()
    tenant_name = await session.scalar(select(Tenant.name).where(Tenant.id == key.tenant_id))
    return KeyView.of(key, tenant_name or "?")


async def key_for_auth(session: AsyncSession, prefix: str) -> tuple[ApiKey, Tenant] | None:
    """The key row and its tenant for a prefix, or None (the auth path checks the rest)."""
    row = (
        await session.execute(
            select(ApiKey, Tenant)
            .join(Tenant, ApiKey.tenant_id == Tenant.id)
            .where(ApiKey.prefix == prefix)
        )
    ).first()
    if row is None:
        return None
    return row[0], row[1]


async def key_by_prefix(session: AsyncSession, prefix: str) -> KeyView:
    key = await _key_by_prefix(session, prefix)
    tenant_name = await session.scalar(select(Tenant.name).where(Tenant.id == key.tenant_id))
    return KeyView.of(key, tenant_name or "?")
