"""Tenant commands: create-tenant, update-tenant, list-tenants, enable/disable-tenant."""

from __future__ import annotations

from typing import Annotated

import typer

from neuronetz_gateway.cli.context import (
    JsonOpt,
    console,
    print_json,
    print_table,
    with_session,
)
from neuronetz_gateway.tenancy import service
from neuronetz_gateway.tenancy.values import parse_limit_changes, parse_seconds_or_none

app = typer.Typer()

Limit = Annotated[int | None, typer.Option(min=0, show_default=False)]
LimitText = Annotated[
    str | None,
    typer.Option(help="A number, or 'none' to use the DEFAULT_* setting.", show_default=False),
]


def _show(view: service.TenantView, as_json: bool, verb: str) -> None:
    if as_json:
        print_json(view.as_dict())
        return
    models = "all discovered" if view.allow_all_models else (", ".join(view.allowed_models) or "-")
    console.print(
        f"{verb} tenant [bold]{view.name}[/bold] (id {view.id}, "
        f"{'enabled' if view.enabled else 'disabled'}); models: {models}"
    )


def parse_queue_timeout(text: str | None) -> float | service.Unset | None:
    if text is None:
        return service.UNSET
    return parse_seconds_or_none("--queue-timeout", text)


@app.command("create-tenant")
def create_tenant(
    name: Annotated[str, typer.Option("--name", help="Unique tenant name.")],
    rpm: Limit = None,
    tpm: Limit = None,
    concurrent: Limit = None,
    daily_budget: Limit = None,
    monthly_budget: Limit = None,
    total_budget: Limit = None,
    allow_model: Annotated[
        list[str] | None, typer.Option("--allow-model", help="Allowed model (repeatable).")
    ] = None,
    allow_all_models: Annotated[
        bool, typer.Option("--allow-all-models", help="Every discovered model is allowed.")
    ] = False,
    weight: Annotated[int, typer.Option(min=1, max=1000, help="Fair-share weight.")] = 1,
    queue_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds a request may wait for a backend slot (default: setting).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a tenant. Unset limits fall back to the DEFAULT_* settings."""
    limits = service.LimitValues(rpm, tpm, concurrent, daily_budget, monthly_budget, total_budget)
    view = with_session(
        lambda s, _: service.create_tenant(
            s,
            name=name,
            limits=limits,
            allowed_models=allow_model or [],
            allow_all_models=allow_all_models,
            weight=weight,
            queue_timeout_s=queue_timeout,
        )
    )
    _show(view, as_json, "created")


@app.command("update-tenant")
def update_tenant(
    name: Annotated[str, typer.Option("--name", help="The tenant to change.")],
    rpm: LimitText = None,
    tpm: LimitText = None,
    concurrent: LimitText = None,
    daily_budget: LimitText = None,
    monthly_budget: LimitText = None,
    total_budget: LimitText = None,
    allow_model: Annotated[
        list[str] | None, typer.Option("--allow-model", help="Add an allowed model.")
    ] = None,
    disallow_model: Annotated[
        list[str] | None, typer.Option("--disallow-model", help="Remove an allowed model.")
    ] = None,
    allow_all_models: Annotated[
        bool | None,
        typer.Option("--allow-all-models/--no-allow-all-models", show_default=False),
    ] = None,
    weight: Annotated[int | None, typer.Option(min=1, max=1000)] = None,
    queue_timeout: Annotated[
        str | None,
        typer.Option(
            help="Seconds, or 'none' for the QUEUE_WAIT_TIMEOUT_S setting.", show_default=False
        ),
    ] = None,
    rename: Annotated[str | None, typer.Option(help="New name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a tenant's limits, budgets or models; running gateways pick it up within ~1 s."""
    limits = parse_limit_changes(rpm, tpm, concurrent, daily_budget, monthly_budget, total_budget)
    view = with_session(
        lambda s, _: service.update_tenant(
            s,
            name,
            limits=limits,
            allow_models=allow_model or [],
            disallow_models=disallow_model or [],
            allow_all_models=allow_all_models,
            weight=weight,
            queue_timeout_s=parse_queue_timeout(queue_timeout),
            rename=rename,
        )
    )
    _show(view, as_json, "updated")


@app.command("list-tenants")
def list_tenants(as_json: JsonOpt = False) -> None:
    """List tenants with their limits and models."""
    views = with_session(lambda s, _: service.list_tenants(s))
    if as_json:
        print_json([v.as_dict() for v in views])
        return
    print_table(
        "tenants",
        ["name", "enabled", "rpm", "tpm", "conc", "day", "month", "total", "models"],
        [
            (
                v.name,
                "yes" if v.enabled else "no",
                v.rpm,
                v.tpm,
                v.concurrent,
                v.daily_budget,
                v.monthly_budget,
                v.total_budget,
                "*" if v.allow_all_models else ",".join(v.allowed_models),
            )
            for v in views
        ],
    )


@app.command("disable-tenant")
def disable_tenant(name: Annotated[str, typer.Option("--name")], as_json: JsonOpt = False) -> None:
    """Disable a tenant: all its keys get 401 within about a second."""
    _show(
        with_session(lambda s, _: service.set_tenant_enabled(s, name, False)), as_json, "disabled"
    )


@app.command("enable-tenant")
def enable_tenant(name: Annotated[str, typer.Option("--name")], as_json: JsonOpt = False) -> None:
    """Enable a tenant again."""
    _show(with_session(lambda s, _: service.set_tenant_enabled(s, name, True)), as_json, "enabled")
