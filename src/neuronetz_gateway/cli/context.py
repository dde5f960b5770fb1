"""What every CLI command shares: settings, a migrated database, output helpers."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from neuronetz_gateway.auth.hashing import Argon2Params, KeyHasher
from neuronetz_gateway.db.engine import AsyncSession, create_engine, session_factory
from neuronetz_gateway.db.migrate import upgrade
from neuronetz_gateway.settings import Settings, load_settings

T = TypeVar("T")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class CliFailure(Exception):
    """Ends a command with a one-line error and exit code 1."""


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"error: {message}", markup=False)
    raise SystemExit(code)


def settings() -> Settings:
    return load_settings()


def hasher_for(s: Settings) -> KeyHasher:
    return KeyHasher(
        Argon2Params(s.argon2_time_cost, s.argon2_memory_cost_kib, s.argon2_parallelism)
    )


def with_session(work: Callable[[AsyncSession, Settings], Awaitable[T]]) -> T:
    """Run ``work`` in a session on the migrated database that DATABASE_URL names."""
    s = settings()

    async def _run() -> T:
        engine = create_engine(
            s.database_url, pool_size=s.database_pool_size, pool_overflow=s.database_pool_overflow
        )
        try:
            await upgrade(s.database_url, engine=engine)
            async with session_factory(engine)() as session:
                return await work(session, s)
        finally:
            await engine.dispose()

    return asyncio.run(_run())


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
