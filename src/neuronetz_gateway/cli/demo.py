"""The demo: mock Ollama + gateway + a tenant and key, in one process, no Docker.

Everything lives in a throwaway directory that Ctrl-C removes again.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import tempfile
import urllib.request
from pathlib import Path
from typing import Annotated

import typer

from neuronetz_gateway.cli.context import console, hasher_for
from neuronetz_gateway.db.engine import create_engine, session_factory
from neuronetz_gateway.db.migrate import upgrade
from neuronetz_gateway.server import uvicorn_config
from neuronetz_gateway.settings import Settings, load_settings
from neuronetz_gateway.tenancy import service

app = typer.Typer()


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _first_model(backend_url: str) -> str:
    try:
        with urllib.request.urlopen(backend_url.rstrip("/") + "/api/tags", timeout=5) as resp:  # noqa: S310
            models = json.load(resp).get("models") or []
        return str(models[0].get("name") or models[0]["model"]) if models else "llama3.2"
    except (OSError, ValueError, KeyError, IndexError):
        return "llama3.2"


async def _provision(settings: Settings) -> str:
    await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            await service.create_tenant(session, name="demo", allow_all_models=True)
            created = await service.create_key(
                session, hasher_for(settings), tenant="demo", name="demo-key"
            )
            return created.key
    finally:
        await engine.dispose()


def demo_commands(base: str, key: str, model: str) -> list[tuple[str, str]]:
    """The five ready-to-paste commands the demo prints (also used by its test)."""
    chat = json.dumps(
        {"model": model, "stream": True, "messages": [{"role": "user", "content": "Say hello"}]}
    )
    auth = f'-H "Authorization: Bearer {key}"'
    json_type = '-H "Content-Type: application/json"'
    return [
        ("streamed chat over SSE (OpenAI /v1)",
         f"curl -N {base}/v1/chat/completions {auth} {json_type} -d '{chat}'"),
        ("streamed chat over NDJSON (native /api)",
         f"curl -N {base}/api/chat {auth} {json_type} -d '{chat}'"),
        ("the models this key may use", f"curl {base}/v1/models {auth}"),
        ("a wrong key: 401", f'curl -i {base}/api/tags -H "Authorization: Bearer nz_wrong"'),
        ("a management endpoint: always 403",
         f"curl -i -X POST {base}/api/pull {auth} {json_type} -d '{{\"model\": \"{model}\"}}'"),
    ]  # fmt: skip


def _banner(settings: Settings, key: str, backend_url: str, mocked: bool, workdir: Path) -> None:
    base = f"http://{settings.gateway_bind_host}:{settings.gateway_bind_port}"
    model = _first_model(backend_url)
    console.print("\nneuronetz-gateway demo", style="bold", markup=False)
    console.print(f"  backend     {'mock Ollama at ' if mocked else ''}{backend_url}", markup=False)
    console.print(f"  gateway     {base}", markup=False)
    console.print(f"  playground  {base}/playground", markup=False)
    console.print(f"  API key     {key}", markup=False)
    console.print(f"  data        {workdir} (removed on exit)", markup=False)
    console.print("\nTry:", markup=False)
    for title, command in demo_commands(base, key, model):
        console.print(f"\n# {title}\n{command}", markup=False, soft_wrap=True)
    console.print("\nCtrl-C stops the demo and removes its data.\n", markup=False)


@app.command("demo")
def demo(
    port: Annotated[int, typer.Option(help="Gateway port.")] = 8080,
    host: Annotated[str, typer.Option(help="Gateway address.")] = "127.0.0.1",
    backend: Annotated[
        str | None, typer.Option(help="A real Ollama URL to use instead of the mock.")
    ] = None,
) -> None:
    """Start the mock Ollama and the gateway with a demo tenant and key (Ctrl-C stops all)."""
    import uvicorn

    from neuronetz_gateway.app import create_app
    from neuronetz_gateway.mock_ollama import MockOllamaThread

    if not _port_free(host, port):
        raise typer.BadParameter(
            f"port {port} is in use; pick another with --port", param_hint="--port"
        )
    workdir = Path(tempfile.mkdtemp(prefix="neuronetz-demo-"))
    mock: MockOllamaThread | None = None
    try:
        if backend is None:
            mock = MockOllamaThread().start()
            backend_url = mock.url
        else:
            backend_url = backend
        settings = load_settings(
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{workdir / 'demo.db'}",
            redis_url=None,
            ollama_base_url=backend_url,
            ollama_backends=[],
            gateway_bind_host=host,
            gateway_bind_port=port,
            playground_enabled=True,
            model_discovery_refresh_s=5,
            gateway_log_level="WARNING",
        )
        key = asyncio.run(_provision(settings))
        server = uvicorn.Server(uvicorn_config(create_app(settings), host=host, port=port))

        async def serve() -> None:
            task = asyncio.create_task(server.serve())
            while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has a flag
                await asyncio.sleep(0.05)
            if server.started:  # the commands are printed once they work
                _banner(settings, key, backend_url, mock is not None, workdir)
            await task

        asyncio.run(serve())
    finally:
        if mock is not None:
            mock.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        console.print("demo stopped; its data is removed.", markup=False)
