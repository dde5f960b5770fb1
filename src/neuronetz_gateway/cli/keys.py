"""Key commands: create-key, update-key, list-keys, revoke-key."""

from __future__ import annotations

from typing import Annotated

import typer

from neuronetz_gateway.cli.context import (
    JsonOpt,
    console,
    err_console,
    hasher_for,
    print_json,
    print_table,
    with_session,
)
from neuronetz_gateway.tenancy import service
from neuronetz_gateway.tenancy.values import parse_duration, parse_limit_changes

app = typer.Typer()

Limit = Annotated[
    int | None, typer.Option(min=0, show_default=False, help="Override the tenant's value.")
]
LimitText = Annotated[
    str | None,
    typer.Option(help="A number, or 'inherit' to use the tenant's value.", show_default=False),
]


@app.command("create-key")
def create_key(
    tenant: Annotated[str, typer.Option("--tenant", help="Owning tenant.")],
    name: Annotated[str, typer.Option("--name", help="Key name, unique per tenant.")],
    rpm: Limit = None,
    tpm: Limit = None,
    concurrent: Limit = None,
    daily_budget: Limit = None,
    monthly_budget: Limit = None,
    total_budget: Limit = None,
    expires_in: Annotated[
        str | None, typer.Option(help="Lifetime, e.g. 90d, 12h, 2w.", show_default=False)
    ] = None,
    log_prompts: Annotated[
        bool, typer.Option("--log-prompts", help="Store this key's prompts and responses.")
    ] = False,
    prompt_retention_days: Annotated[
        int | None, typer.Option(min=1, max=3650, show_default=False)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key. The full key is printed once and cannot be shown again."""
    lifetime = parse_duration(expires_in) if expires_in else None
    limits = service.LimitValues(rpm, tpm, concurrent, daily_budget, monthly_budget, total_budget)
    created = with_session(
        lambda s, cfg: service.create_key(
            s,
            hasher_for(cfg),
            tenant=tenant,
            name=name,
            limits=limits,
            expires_in=lifetime,
            log_prompts=log_prompts,
            prompt_retention_days=prompt_retention_days,
        )
    )
    if as_json:
        print_json({"key": created.key, **created.view.as_dict()})
        return
    console.print(f"created key [bold]{created.view.name}[/bold] for tenant {tenant}")
    console.print(f"prefix: {created.view.prefix}")
    console.print(created.key, markup=False)
    err_console.print("This key is shown once. Store it now; only its hash is kept.")


@app.command("update-key")
def update_key(
    prefix: Annotated[str, typer.Option("--prefix", help="The key's 12-character prefix.")],
    rpm: LimitText = None,
    tpm: LimitText = None,
    concurrent: LimitText = None,
    daily_budget: LimitText = None,
    monthly_budget: LimitText = None,
    total_budget: LimitText = None,
    expires_in: Annotated[str | None, typer.Option(show_default=False)] = None,
    no_expiry: Annotated[bool, typer.Option("--no-expiry")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Change a key's overrides or expiry; running gateways pick it up within ~1 s."""
    limits = parse_limit_changes(rpm, tpm, concurrent, daily_budget, monthly_budget, total_budget)
    lifetime = parse_duration(expires_in) if expires_in else None
    view = with_session(
        lambda s, _: service.update_key(
            s, prefix, limits=limits, expires_in=lifetime, clear_expiry=no_expiry
        )
    )
    if as_json:
        print_json(view.as_dict())
    else:
        console.print(f"updated key {view.prefix} ({view.name}, tenant {view.tenant})")


@app.command("list-keys")
def list_keys(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's keys.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List keys by prefix (the keys themselves are never stored, so never shown)."""
    views = with_session(lambda s, _: service.list_keys(s, tenant))
    if as_json:
        print_json([v.as_dict() for v in views])
        return
    print_table(
        "keys",
        ["prefix", "tenant", "name", "status", "created", "expires", "last used", "prompts"],
        [
            (
                v.prefix,
                v.tenant,
                v.name,
                v.status,
                v.created_at[:19],
                (v.expires_at or "-")[:19],
                (v.last_used_at or "-")[:19],
                "logged" if v.log_prompts else "-",
            )
            for v in views
        ],
    )


@app.command("revoke-key")
def revoke_key(
    prefix: Annotated[str, typer.Option("--prefix", help="The key's 12-character prefix.")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key; running gateways refuse it within about a second."""
    view = with_session(lambda s, _: service.revoke_key(s, prefix))
    if as_json:
        print_json(view.as_dict())
    else:
        console.print(f"revoked key {view.prefix} ({view.name}, tenant {view.tenant})")
