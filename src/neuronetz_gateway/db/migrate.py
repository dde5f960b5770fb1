"""Apply the Alembic migrations that ship inside the package."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

from neuronetz_gateway.db.engine import create_engine


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("neuronetz_gateway.db") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(url: str, revision: str = "head", *, engine: AsyncEngine | None = None) -> None:
    """Bring the database at ``url`` to ``revision`` (idempotent)."""
    owned = engine is None
    eng = engine or create_engine(url)
    try:
        async with eng.begin() as conn:
            await conn.run_sync(_run_upgrade, url, revision)
    finally:
        if owned:
            await eng.dispose()


async def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    eng = create_engine(url)
    try:
        async with eng.connect() as conn:
            return await conn.run_sync(
                lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
            )
    finally:
        await eng.dispose()


def _run_upgrade(sync_conn: object, url: str, revision: str) -> None:
    cfg = alembic_config(url)
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, revision)
