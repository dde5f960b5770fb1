"""Audit commands: usage, prompts, purge."""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from neuronetz_gateway.audit import reports
from neuronetz_gateway.audit.retention import purge as run_purge
from neuronetz_gateway.cli.context import console, print_json, print_table, with_session
from neuronetz_gateway.db.engine import session_factory
from neuronetz_gateway.tenancy.values import InvalidValue

app = typer.Typer()


def parse_since(text: str | None) -> datetime | None:
    """``2026-11-01`` or ``2026-11-01T12:00`` (UTC) → an aware datetime."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValue(f"--since {text!r} is not a date like 2026-11-01") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@app.command("usage")
def usage(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant to report on.")],
    key: Annotated[str | None, typer.Option("--key", help="Only this key (prefix).")] = None,
    since: Annotated[str | None, typer.Option(help="From this UTC date or time.")] = None,
    by: Annotated[str, typer.Option(help="Group by day, model or key.")] = "day",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    as_csv: Annotated[bool, typer.Option("--csv")] = False,
) -> None:
    """Requests and tokens of a tenant, from the audit log."""
    if by not in ("day", "model", "key"):
        raise InvalidValue("--by must be day, model or key")
    start = parse_since(since)
    rows = with_session(
        lambda s, _: reports.usage(s, tenant=tenant, key_prefix=key, since=start, by=by)  # type: ignore[arg-type]
    )
    if as_json:
        print_json([r.as_dict() for r in rows])
    elif as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow([by, "requests", "tokens_in", "tokens_out", "tokens"])
        for r in rows:
            writer.writerow([r.group, r.requests, r.tokens_in, r.tokens_out, r.tokens])
    else:
        print_table(
            f"usage of {tenant} by {by}",
            [by, "requests", "tokens in", "tokens out", "tokens"],
            [(r.group, r.requests, r.tokens_in, r.tokens_out, r.tokens) for r in rows],
        )


@app.command("prompts")
def prompts(
    key: Annotated[str, typer.Option("--key", help="The key's prefix.")],
    since: Annotated[str | None, typer.Option(help="From this UTC date or time.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Logged prompts and responses of a key that opted in (--log-prompts), newest first."""
    start = parse_since(since)
    rows = with_session(
        lambda s, _: reports.prompt_logs(s, key_prefix=key, since=start, limit=limit)
    )
    if as_json:
        print_json(rows)
        return
    for row in rows:
        console.print(
            f"--- {row['created_at'][:19]}  {row['model']}  {row['request_id']}", markup=False
        )
        console.print(f"prompt:   {row['prompt']}", markup=False)
        console.print(f"response: {row['response']}", markup=False)
    if not rows:
        console.print("no logged prompts", markup=False)


@app.command("purge")
def purge() -> None:
    """Delete expired prompt logs and audit rows past AUDIT_LOG_DEFAULT_RETENTION_DAYS now."""
    result = with_session(
        lambda s, cfg: run_purge(
            session_factory(s.bind),  # type: ignore[arg-type]
            audit_retention_days=cfg.audit_log_default_retention_days,
        )
    )
    console.print(
        f"purged {result.prompt_rows} prompt log rows and {result.request_rows} audit rows",
        markup=False,
    )
