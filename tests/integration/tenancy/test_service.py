"""Tenants and keys on SQLite and PostgreSQL alike (one parametrized suite)."""

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from neuronetz_gateway.auth.hashing import Argon2Params, KeyHasher
from neuronetz_gateway.db.engine import AsyncSession, create_engine, session_factory
from neuronetz_gateway.db.migrate import upgrade
from neuronetz_gateway.tenancy import service

HASHER = KeyHasher(Argon2Params(1, 1024, 1))


@pytest.fixture(params=["sqlite", "postgresql"])
async def session(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[AsyncSession]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    await upgrade(url)
    engine = create_engine(url)
    async with session_factory(engine)() as s:
        yield s
    await engine.dispose()


async def test_tenant_lifecycle(session: AsyncSession) -> None:
    before = await service.current_revision(session)
    created = await service.create_tenant(
        session,
        name="acme",
        limits=service.LimitValues(rpm=10, daily_budget=1000),
        allowed_models=["llama3.2", "llama3.2", "qwen"],
    )
    assert created.allowed_models == ["llama3.2", "qwen"] and created.rpm == 10
    assert await service.current_revision(session) == before + 1
    with pytest.raises(service.DuplicateName):
        await service.create_tenant(session, name="acme")
    updated = await service.update_tenant(
        session, "acme", limits={"rpm": None, "tpm": 5}, disallow_models=["qwen"]
    )
    assert updated.rpm is None and updated.tpm == 5 and updated.allowed_models == ["llama3.2"]
    assert not (await service.set_tenant_enabled(session, "acme", False)).enabled
    assert [t.name for t in await service.list_tenants(session)] == ["acme"]
    with pytest.raises(service.UnknownTenant):
        await service.update_tenant(session, "nope", limits={"rpm": 1})


@pytest.mark.parametrize(
    "kwargs",
    [{"name": "bad name"}, {"name": "x" * 65}, {"name": "ok", "allowed_models": [" "]},
     {"name": "ok", "limits": service.LimitValues(rpm=-1)}, {"name": "ok", "weight": 0}],
)  # fmt: skip
async def test_bad_tenant_values(session: AsyncSession, kwargs: dict[str, Any]) -> None:
    with pytest.raises(service.TenancyError):
        await service.create_tenant(session, **kwargs)


async def test_keys_are_stored_only_as_hashes(session: AsyncSession) -> None:
    await service.create_tenant(session, name="acme")
    created = await service.create_key(
        session,
        HASHER,
        tenant="acme",
        name="prod",
        limits=service.LimitValues(rpm=5),
        expires_in=timedelta(days=30),
        log_prompts=True,
        prompt_retention_days=7,
    )
    key = created.key
    assert key.startswith("nz_") and len(key) == 44 and created.view.prefix == key[:12]
    assert HASHER.verify_sync(
        (await service.key_for_auth(session, key[:12]))[0].key_hash,  # type: ignore[index]
        key,
    )
    # The full key appears nowhere in the database: dump every text column of every row.
    dialect = session.bind.dialect.name
    tables = ["tenants", "api_keys", "requests", "prompt_logs", "gateway_state"]
    dump = []
    for table in tables:
        rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()  # noqa: S608
        dump.extend(str(v) for row in rows for v in row)
    blob = "\n".join(dump)
    assert key not in blob and key[12:] not in blob and key[3:] not in blob
    assert key[:12] in blob  # the prefix is stored, in clear
    assert dialect in ("sqlite", "postgresql")
    with pytest.raises(service.DuplicateName):
        await service.create_key(session, HASHER, tenant="acme", name="prod")
    with pytest.raises(service.UnknownTenant):
        await service.create_key(session, HASHER, tenant="nope", name="x")
    views = await service.list_keys(session, "acme")
    assert [v.prefix for v in views] == [key[:12]] and views[0].status == "active"
    assert "key" not in views[0].as_dict() and key not in str(views[0].as_dict())
    revoked = await service.revoke_key(session, key[:12])
    assert revoked.revoked and revoked.status == "revoked"
    with pytest.raises(service.UnknownKey):
        await service.revoke_key(session, "nz_000000000")
    with pytest.raises(service.UnknownKey):
        await service.revoke_key(session, "garbage")


async def test_key_overrides_update(session: AsyncSession) -> None:
    await service.create_tenant(session, name="acme")
    key = (await service.create_key(session, HASHER, tenant="acme", name="k")).key
    view = await service.update_key(
        session, key[:12], limits={"tpm": 7}, expires_in=timedelta(hours=1)
    )
    assert view.tpm == 7 and view.expires_at is not None
    with pytest.raises(service.TenancyError):
        await service.create_key(session, HASHER, tenant="acme", name="k2", prompt_retention_days=3)


async def test_queue_timeout_set_and_cleared(session: AsyncSession) -> None:
    created = await service.create_tenant(session, name="acme", queue_timeout_s=5.0, weight=3)
    assert (created.queue_timeout_s, created.weight) == (5.0, 3)
    kept = await service.update_tenant(session, "acme", limits={"rpm": 1})
    assert kept.queue_timeout_s == 5.0  # not given: unchanged
    cleared = await service.update_tenant(session, "acme", queue_timeout_s=None)
    assert cleared.queue_timeout_s is None
    with pytest.raises(service.TenancyError):
        await service.update_tenant(session, "acme", queue_timeout_s=0)
