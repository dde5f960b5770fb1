"""Read-only endpoints: /, /api/version, /api/status, /api/tags, /api/ps, /api/show."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from neuronetz_gateway.mock_ollama import decoding
from neuronetz_gateway.mock_ollama.catalog import model_spec, ps_entry, show_payload, tags_entry
from neuronetz_gateway.mock_ollama.state import MockState, Received
from neuronetz_gateway.mock_ollama.wire import OllamaError, json_response, text_response

OLLAMA_VERSION = "0.12.6"


async def root(received: Received, state: MockState) -> web.StreamResponse:
    return text_response(200, "Ollama is running")


async def version(received: Received, state: MockState) -> web.StreamResponse:
    return json_response({"version": OLLAMA_VERSION})


async def status(received: Received, state: MockState) -> web.StreamResponse:
    return json_response({"cloud": {"disabled": False, "source": "default"}})


async def tags(received: Received, state: MockState) -> web.StreamResponse:
    return json_response({"models": [tags_entry(spec) for spec in state.config.models]})


async def ps(received: Received, state: MockState) -> web.StreamResponse:
    now = datetime.now(UTC)
    config = state.config
    specs = [config.find_model(name) or model_spec(name) for name in config.loaded_models]
    return json_response({"models": [ps_entry(spec, now) for spec in specs]})


async def show(received: Received, state: MockState) -> web.StreamResponse:
    body = received.decode("ShowRequest")
    name = decoding.text(body, "model", "ShowRequest") or decoding.text(body, "name", "ShowRequest")
    if not name:
        raise OllamaError(400, "model is required")
    spec = state.config.find_model(name)
    if spec is None:
        raise OllamaError(404, f"model '{name}' not found")
    verbose = decoding.flag(body, "verbose", "ShowRequest") is True
    return json_response(show_payload(spec, verbose=verbose))
