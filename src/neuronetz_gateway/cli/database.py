"""Database commands: migrate."""

from __future__ import annotations

import asyncio

import typer

from neuronetz_gateway.cli.context import console, settings
from neuronetz_gateway.db.migrate import current_revision, upgrade

app = typer.Typer()


@app.command("migrate")
def migrate() -> None:
    """Apply the database migrations (the server also does this at start)."""
    s = settings()
    asyncio.run(upgrade(s.database_url))
    console.print(f"database at revision {asyncio.run(current_revision(s.database_url))}")
