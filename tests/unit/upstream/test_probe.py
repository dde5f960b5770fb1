"""The operator's probe: one `/api/tags` with the gateway's own headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from pydantic import SecretStr

from neuronetz_gateway.mock_ollama import MockOllama
from neuronetz_gateway.settings import BackendSpec
from neuronetz_gateway.upstream.probe import probe, probe_all


def spec(name: str, url: str, token: str | None = None) -> BackendSpec:
    return BackendSpec(name=name, url=url, token=SecretStr(token) if token else None)  # type: ignore[arg-type]


@pytest.fixture
async def not_ollama() -> AsyncIterator[str]:
    app = web.Application()

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>hello</html>", content_type="text/html")

    app.router.add_get("/api/tags", page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_probe_reports_models_and_latency(mocks: list[MockOllama]) -> None:
    mocks[0].configure(require_token="t0k")
    result = await probe(spec("gpu", mocks[0].url, "t0k"))
    assert result.ok
    assert result.error is None
    assert result.models == ("llama3.2:latest", "qwen2.5:0.5b", "nomic-embed-text:latest")
    assert 0 < result.latency_s < 5
    (seen,) = mocks[0].requests
    assert seen["path"] == "/api/tags"
    assert seen["headers"]["authorization"] == "Bearer t0k"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("refused", "cannot connect (connection refused)"),
        ("token", "status 401"),
        ("html", "answer is not JSON (is this an Ollama server?)"),
    ],
)
async def test_probe_failures_are_short_and_secret_free(
    mocks: list[MockOllama], not_ollama: str, case: str, expected: str
) -> None:
    mocks[0].configure(require_token="right")
    url = {"refused": "http://127.0.0.1:9", "token": mocks[0].url, "html": not_ollama}[case]
    result = await probe(spec("gpu", url, "wrong-secret"), timeout_s=2)
    assert not result.ok
    assert result.error == expected
    assert "wrong-secret" not in repr(result)


async def test_probe_all_keeps_the_order(mocks: list[MockOllama]) -> None:
    results = await probe_all([spec("x", "http://127.0.0.1:9"), spec("y", mocks[1].url)])
    assert [(r.name, r.ok) for r in results] == [("x", False), ("y", True)]
