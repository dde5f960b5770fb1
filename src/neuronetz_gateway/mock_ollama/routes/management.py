"""Endpoints that mutate or leak server state (pull, push, create, copy, delete, blobs,
account, experimental). Minimal on purpose: they exist so that tests can prove the
gateway never lets a request reach them. Nothing here changes the mock's models.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from neuronetz_gateway.mock_ollama import decoding
from neuronetz_gateway.mock_ollama.catalog import model_spec
from neuronetz_gateway.mock_ollama.state import MockState, Received
from neuronetz_gateway.mock_ollama.wire import (
    OllamaError,
    empty_response,
    error_response,
    json_response,
    send_stream,
    send_whole,
)


def _model_name(body: dict[str, Any], go_type: str) -> str:
    name = decoding.text(body, "model", go_type) or decoding.text(body, "name", go_type)
    if not name:
        raise OllamaError(400, "invalid model name")
    return name


async def _progress(
    received: Received, body: dict[str, Any], go_type: str, statuses: list[dict[str, Any]]
) -> web.StreamResponse:
    if decoding.flag(body, "stream", go_type) is False:
        return await send_whole(received.request, statuses[-1], None)
    lines = (orjson.dumps(status, option=orjson.OPT_APPEND_NEWLINE) for status in statuses)
    return await send_stream(
        received.request, lines, chunk_delay_s=0.0, fault=None, on_disconnect=lambda: None
    )


def _layer(name: str) -> tuple[str, int]:
    spec = model_spec(name)
    return f"sha256:{spec.digest}", spec.size


async def pull(received: Received, state: MockState) -> web.StreamResponse:
    body = received.decode("PullRequest")
    digest, size = _layer(_model_name(body, "PullRequest"))
    short = f"pulling {digest[7:19]}"
    return await _progress(
        received,
        body,
        "PullRequest",
        [
            {"status": "pulling manifest"},
            {"status": short, "digest": digest, "total": size, "completed": 0},
            {"status": short, "digest": digest, "total": size, "completed": size},
            {"status": "verifying sha256 digest"},
            {"status": "writing manifest"},
            {"status": "success"},
        ],
    )


async def push(received: Received, state: MockState) -> web.StreamResponse:
    body = received.decode("PushRequest")
    digest, size = _layer(_model_name(body, "PushRequest"))
    return await _progress(
        received,
        body,
        "PushRequest",
        [
            {"status": "retrieving manifest"},
            {
                "status": f"pushing {digest[7:19]}",
                "digest": digest,
                "total": size,
                "completed": size,
            },
            {"status": "pushing manifest"},
            {"status": "success"},
        ],
    )


async def create(received: Received, state: MockState) -> web.StreamResponse:
    body = received.decode("CreateRequest")
    digest, _ = _layer(_model_name(body, "CreateRequest"))
    return await _progress(
        received,
        body,
        "CreateRequest",
        [
            {"status": "gathering model components"},
            {"status": f"using existing layer {digest}"},
            {"status": "writing manifest"},
            {"status": "success"},
        ],
    )


async def copy(received: Received, state: MockState) -> web.StreamResponse:
    body = received.decode("CopyRequest")
    source = decoding.text(body, "source", "CopyRequest")
    if not decoding.text(body, "destination", "CopyRequest"):
        raise OllamaError(400, "invalid destination name")
    if state.config.find_model(source) is None:
        raise OllamaError(404, f'model "{source}" not found')
    return empty_response()


async def delete(received: Received, state: MockState) -> web.StreamResponse:
    body = received.decode("DeleteRequest")
    name = _model_name(body, "DeleteRequest")
    if state.config.find_model(name) is None:
        raise OllamaError(404, f"model '{name}' not found")
    return empty_response()


async def blob_exists(received: Received, state: MockState) -> web.StreamResponse:
    return empty_response(404)


async def blob_upload(received: Received, state: MockState) -> web.StreamResponse:
    return empty_response(201)


async def me(received: Received, state: MockState) -> web.StreamResponse:
    return json_response(
        {"error": "unauthorized", "signin_url": "https://ollama.com/connect?name=mock-ollama"},
        401,
    )


async def signout(received: Received, state: MockState) -> web.StreamResponse:
    return error_response(401, "you are not currently signed in")


async def web_search(received: Received, state: MockState) -> web.StreamResponse:
    return json_response({"results": []})


async def web_fetch(received: Received, state: MockState) -> web.StreamResponse:
    return json_response({"title": "", "content": "", "links": []})


async def model_recommendations(received: Received, state: MockState) -> web.StreamResponse:
    return json_response(
        {"recommendations": [{"model": "llama3.2", "description": "Meta's Llama 3.2, 3B"}]}
    )
