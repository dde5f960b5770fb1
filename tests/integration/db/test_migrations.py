"""The Alembic migrations produce exactly the tables the models describe, on both backends."""

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from neuronetz_gateway.db.engine import create_engine
from neuronetz_gateway.db.migrate import current_revision, upgrade
from neuronetz_gateway.db.models import Base


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


async def test_models_and_migrations_agree(database_url: str) -> None:
    await upgrade(database_url)
    await upgrade(database_url)  # idempotent
    assert await current_revision(database_url) == "0002"
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == []
