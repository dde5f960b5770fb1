"""The native Ollama surface (`/api/*`): the model endpoints a tenant's key may use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from neuronetz_gateway import __version__
from neuronetz_gateway.api.dependencies import authenticate, gateway, read_body
from neuronetz_gateway.api.openapi import (
    CHAT,
    EMBED,
    EMBEDDINGS,
    GENERATE,
    SHOW,
    native_route,
)
from neuronetz_gateway.errors import BadRequest
from neuronetz_gateway.proxy.adapters import NATIVE
from neuronetz_gateway.proxy.native import (
    CallPolicy,
    ModelCall,
    prepare_chat,
    prepare_embed,
    prepare_embeddings,
    prepare_generate,
)
from neuronetz_gateway.proxy.responses import json_response
from neuronetz_gateway.upstream.show import sanitize_show

router = APIRouter(tags=["native"])

Preparer = Callable[[dict[str, Any], CallPolicy], ModelCall]


async def _proxy(request: Request, prepare: Preparer) -> Response:
    state = gateway(request)
    ctx = await authenticate(request)
    body = await read_body(request)
    call = prepare(body, state.call_policy)
    return await state.pipeline.run(request, ctx, call, NATIVE)


@router.post(
    "/api/chat",
    summary="Chat with a model (NDJSON stream unless stream=false)",
    **native_route(CHAT, streams=True),
)
async def chat(request: Request) -> Response:
    return await _proxy(request, prepare_chat)


@router.post(
    "/api/generate",
    summary="Complete a prompt (NDJSON stream unless stream=false)",
    **native_route(GENERATE, streams=True),
)
async def generate(request: Request) -> Response:
    return await _proxy(request, prepare_generate)


@router.post("/api/embed", summary="Embed one or more inputs", **native_route(EMBED))
async def embed(request: Request) -> Response:
    return await _proxy(request, prepare_embed)


@router.post(
    "/api/embeddings", summary="Embed one prompt (legacy endpoint)", **native_route(EMBEDDINGS)
)
async def embeddings(request: Request) -> Response:
    return await _proxy(request, prepare_embeddings)


@router.get("/api/tags", summary="The models this key may use", **native_route(None))
async def tags(request: Request) -> Response:
    state = gateway(request)
    ctx = await authenticate(request)
    assert ctx.principal is not None
    models = state.effective_models(ctx.principal)
    return json_response(orjson.dumps({"models": models}), 200, {})


@router.post(
    "/api/show",
    summary="Model details, without system prompt, template or paths",
    **native_route(SHOW),
)
async def show(request: Request) -> Response:
    state = gateway(request)
    ctx = await authenticate(request)
    body = await read_body(request)
    model = body.get("model") if body.get("model") is not None else body.get("name")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("model is required", param="model")
    verbose = body.get("verbose") is True
    ctx.model = model
    assert ctx.principal is not None
    backends = state.pipeline.candidates(ctx.principal, model)
    payload = orjson.dumps({"model": model, "verbose": verbose})
    upstream = await state.pipeline.router.call(backends, "/api/show", payload, stream=False)
    ctx.backend = upstream.backend.name
    ctx.attempts = upstream.attempts
    try:
        data = orjson.loads(upstream.body or b"{}")
    except orjson.JSONDecodeError:
        data = {}
    finally:
        upstream.release()
    return json_response(
        orjson.dumps(sanitize_show(data if isinstance(data, dict) else {})), 200, {}
    )


@router.get("/api/version", summary="The gateway's version (never the backend's)")
async def version() -> Response:
    return json_response(orjson.dumps({"version": __version__}), 200, {})
