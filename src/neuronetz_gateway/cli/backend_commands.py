"""Backend commands: add-backend, remove-backend, list-backends, probe-ollama, list-models.

The current list is the one the gateway would use: ``OLLAMA_BACKENDS`` from the
environment and the ``.env`` file (``--write-env``/``--env-file`` name another file),
or the single ``default`` backend from ``OLLAMA_BASE_URL``. The editing is done by the
pure helpers of ``cli.backends``; these commands only parse, probe and print.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from neuronetz_gateway.cli import backends as edit
from neuronetz_gateway.cli.context import err_console, print_json, print_table
from neuronetz_gateway.proxy.native import model_name_key
from neuronetz_gateway.settings import BackendSpec, load_settings
from neuronetz_gateway.upstream.probe import ProbeResult, probe, probe_all

app = typer.Typer()

WriteEnv = Annotated[
    Path | None,
    typer.Option(
        "--write-env",
        metavar="PATH",
        help="Rewrite OLLAMA_BACKENDS in this .env file (atomically) instead of printing it.",
    ),
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Show the result (tokens redacted); write nothing.")
]
EnvFile = Annotated[
    Path | None,
    typer.Option("--env-file", metavar="PATH", help="Read settings from this .env file."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
Timeout = Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds per backend.")]


def current_backends(env_file: Path | None) -> list[BackendSpec]:
    s = load_settings(_env_file=env_file) if env_file is not None else load_settings()
    return s.effective_backends()


def _note(message: str) -> None:
    err_console.print(message, markup=False)


def _emit(specs: list[BackendSpec], write_env: Path | None, dry_run: bool) -> None:
    """Print the line to paste, or write it; with ``dry_run``, only describe it."""
    names = ", ".join(s.name for s in specs)
    if dry_run:
        if write_env is not None:
            change = edit.env_file_would_change(write_env, edit.ENV_KEY, edit.env_line(specs))
            _note(f"dry run: {write_env} would {'change' if change else 'stay as it is'}")
        else:
            _note("dry run: nothing written")
        typer.echo(edit.redacted_line(specs))
        return
    if write_env is None:
        typer.echo(edit.env_line(specs))
        return
    changed = edit.update_env_file(write_env, edit.ENV_KEY, edit.env_line(specs))
    state = "wrote" if changed else "unchanged:"
    count = f"{len(specs)} backend{'s' if len(specs) != 1 else ''}"
    _note(f"{state} {edit.ENV_KEY} in {write_env} ({count}: {names})")


@app.command("add-backend")
def add_backend(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Unique name (letters, digits, '.', '_', '-').")
    ],
    url: Annotated[str, typer.Argument(metavar="URL", help="Base URL, e.g. http://ollama:11434")],
    token: Annotated[
        str | None, typer.Option("--token", help="Sent as '<scheme> <token>'.")
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", metavar="NAME=VALUE", help="Extra header; repeatable."),
    ] = None,
    scheme: Annotated[str, typer.Option("--scheme", help="Authorization scheme.")] = "Bearer",
    replace: Annotated[
        bool, typer.Option("--replace", help="Update an existing backend in place.")
    ] = False,
    no_validate: Annotated[
        bool, typer.Option("--no-validate", help="Do not probe the backend's /api/tags first.")
    ] = False,
    write_env: WriteEnv = None,
    dry_run: DryRun = False,
    timeout: Timeout = 5.0,
) -> None:
    """Add a backend (lowest priority) and print the new OLLAMA_BACKENDS line."""
    spec = edit.make_spec(name, url, token=token, headers=header or (), scheme=scheme)
    specs = edit.add_or_replace(current_backends(write_env), spec, replace=replace)
    if not no_validate:
        result = asyncio.run(probe(spec, timeout_s=timeout))
        if not result.ok:
            raise edit.BackendConfigError(
                f"backend {name!r} failed the probe of {result.url}/api/tags: {result.error} "
                "(--no-validate adds it anyway)"
            )
        _note(f"probe: {name} answers, {len(result.models)} models, {_ms(result)} ms")
    _emit(specs, write_env, dry_run)


@app.command("remove-backend")
def remove_backend(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The backend to remove.")],
    write_env: WriteEnv = None,
    dry_run: DryRun = False,
) -> None:
    """Remove a backend and print the new OLLAMA_BACKENDS line."""
    _emit(edit.remove(current_backends(write_env), name), write_env, dry_run)


@app.command("list-backends")
def list_backends(env_file: EnvFile = None, as_json: AsJson = False) -> None:
    """The configured backends in priority order (tokens and header values as ***)."""
    specs = current_backends(env_file)
    items = edit.redact(specs)
    if as_json:
        print_json(items)
        return
    rows = [
        (
            i + 1,
            item["name"],
            item["url"],
            f"{item.get('scheme', edit.DEFAULT_SCHEME)} ***" if "token" in item else "-",
            ", ".join(f"{k}: ***" for k in item.get("headers", {})) or "-",
            item.get("parallel", "-"),
        )
        for i, item in enumerate(items)
    ]
    print_table("backends", ["priority", "name", "url", "auth", "headers", "parallel"], rows)


def _ms(result: ProbeResult) -> int:
    return round(result.latency_s * 1000)


@app.command("probe-ollama")
def probe_ollama(env_file: EnvFile = None, as_json: AsJson = False, timeout: Timeout = 5.0) -> None:
    """Probe every backend's /api/tags; exit 1 when one of them does not answer."""
    results = asyncio.run(probe_all(current_backends(env_file), timeout_s=timeout))
    if as_json:
        print_json(
            [
                {
                    "name": r.name,
                    "url": r.url,
                    "reachable": r.ok,
                    "models": len(r.models),
                    "latency_ms": _ms(r),
                    "error": r.error,
                }
                for r in results
            ]
        )
    else:
        print_table(
            "backends",
            ["name", "url", "status", "models", "latency ms"],
            [
                (r.name, r.url, "ok" if r.ok else f"down: {r.error}", len(r.models), _ms(r))
                for r in results
            ],
        )
    if not all(r.ok for r in results):
        raise SystemExit(1)


@app.command("list-models")
def list_models(env_file: EnvFile = None, as_json: AsJson = False, timeout: Timeout = 5.0) -> None:
    """The models of each backend, and the deduplicated union the gateway offers."""
    results = asyncio.run(probe_all(current_backends(env_file), timeout_s=timeout))
    union: dict[str, str] = {}  # as discovery dedups: by Ollama's name, first in priority
    for r in results:
        for model in r.models:
            union.setdefault(model_name_key(model), model)
    if as_json:
        print_json(
            {
                "backends": {
                    r.name: ({"models": list(r.models)} if r.ok else {"error": r.error})
                    for r in results
                },
                "union": list(union.values()),
            }
        )
        return
    for r in results:
        if not r.ok:
            typer.echo(f"{r.name}: unreachable ({r.error})")
            continue
        typer.echo(f"{r.name}: {len(r.models)} models")
        for model in r.models:
            typer.echo(f"  {model}")
    reachable = sum(r.ok for r in results)
    typer.echo(f"union: {len(union)} models from {reachable} of {len(results)} backends")
