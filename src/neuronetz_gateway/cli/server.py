"""Server commands: serve, mock-ollama."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from neuronetz_gateway.cli.context import console, settings
from neuronetz_gateway.db.migrate import upgrade
from neuronetz_gateway.server import run, uvicorn_config

app = typer.Typer()


@app.command("serve")
def serve() -> None:
    """Apply migrations, then serve on GATEWAY_BIND_HOST:GATEWAY_BIND_PORT."""
    s = settings()
    asyncio.run(upgrade(s.database_url))
    console.print(
        f"neuronetz-gateway on http://{s.gateway_bind_host}:{s.gateway_bind_port} "
        f"({'scale-out' if s.scale_out else 'embedded'} mode, {s.gateway_workers} worker(s))",
        markup=False,
    )
    run(
        uvicorn_config(
            "neuronetz_gateway.app:app_from_env",
            host=s.gateway_bind_host,
            port=s.gateway_bind_port,
            workers=s.gateway_workers,
            factory=True,
            loop="uvloop",
        )
    )


@app.command("mock-ollama")
def mock_ollama(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 11434,
) -> None:
    """Run the project's mock Ollama (for demos, tests and benchmarks)."""
    from neuronetz_gateway.mock_ollama import run

    console.print(f"mock Ollama on http://{host}:{port}", markup=False)
    run(host=host, port=port)
