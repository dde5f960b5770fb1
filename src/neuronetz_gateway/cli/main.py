"""The `neuronetz-gateway` command: one Typer group per file, assembled here."""

from __future__ import annotations

import sys

import typer
from sqlalchemy.exc import SQLAlchemyError
from typer._click import exceptions as click_exc

from neuronetz_gateway import __version__
from neuronetz_gateway.cli import (
    audit_commands,
    backend_commands,
    database,
    demo,
    keys,
    server,
    tenants,
)
from neuronetz_gateway.cli.backends import BackendConfigError
from neuronetz_gateway.cli.context import fail
from neuronetz_gateway.settings import ConfigError
from neuronetz_gateway.tenancy.service import TenancyError
from neuronetz_gateway.tenancy.values import InvalidValue

GROUPS: list[typer.Typer] = [
    server.app,
    demo.app,
    tenants.app,
    keys.app,
    database.app,
    audit_commands.app,
    backend_commands.app,
]


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="neuronetz-gateway",
        help="Secure, multi-tenant API gateway in front of Ollama.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )

    @app.callback(invoke_without_command=True)
    def _root(
        version: bool = typer.Option(False, "--version", help="Print the version and exit."),
    ) -> None:
        if version:
            print(__version__)
            raise typer.Exit()

    for group in GROUPS:
        app.add_typer(group)
    return app


def main(argv: list[str] | None = None) -> None:
    app = build_app()
    try:
        app(args=argv, standalone_mode=False, prog_name="neuronetz-gateway")
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        fail("aborted", 130)
    except click_exc.NoArgsIsHelpError as exc:
        exc.show()
        raise SystemExit(2) from None
    except click_exc.ClickException as exc:
        fail(exc.format_message().replace("\n", " "), 2)
    except (TenancyError, InvalidValue) as exc:
        fail(str(exc))
    except ConfigError as exc:
        fail(str(exc))
    except BackendConfigError as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"database error: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    except OSError as exc:
        fail(f"{type(exc).__name__}: {exc}")
    except KeyboardInterrupt:
        fail("interrupted", 130)
    sys.exit(0)
