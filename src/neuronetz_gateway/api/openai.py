"""The OpenAI-compatible surface (`/v1/*`), translated to the native API by the gateway.

Same keys, model policy, limits, budgets and audit as `/api/*`: each handler turns the
OpenAI body into a native ``ModelCall`` and hands it to the same pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from neuronetz_gateway.api.dependencies import authenticate, gateway, read_body
from neuronetz_gateway.api.openapi import (
    OPENAI_CHAT,
    OPENAI_COMPLETION,
    OPENAI_EMBEDDINGS,
    openai_route,
)
from neuronetz_gateway.errors import Forbidden
from neuronetz_gateway.proxy.native import (
    ModelCall,
    UpstreamPath,
    estimate_text_tokens,
    model_name_key,
)
from neuronetz_gateway.proxy.openai_adapters import (
    ChatAdapter,
    CompletionAdapter,
    EmbeddingsAdapter,
)
from neuronetz_gateway.proxy.responses import json_response
from neuronetz_gateway.translate import (
    NativeRequest,
    chat_request_to_native,
    completion_request_to_native,
    embeddings_request_to_native,
    model_from_tag,
    models_list_from_tags,
)

router = APIRouter(tags=["openai"])


def _prompt_tokens(value: Any) -> int:
    return estimate_text_tokens(orjson.dumps(value).decode())


async def _completion(
    request: Request,
    translate: Callable[..., NativeRequest[Any]],
    upstream_path: UpstreamPath,
    prompt_of: Callable[[dict[str, Any]], Any],
    adapter_class: type[ChatAdapter] | type[CompletionAdapter],
) -> Response:
    """Both completion endpoints: translate, reserve, and hand to the shared pipeline."""
    state = gateway(request)
    ctx = await authenticate(request)
    body = await read_body(request)
    native = translate(body, max_num_predict=state.settings.max_num_predict)
    payload: dict[str, Any] = dict(native.body)
    prompt = prompt_of(payload)
    call = ModelCall(
        upstream_path=upstream_path,
        payload=payload,
        model=native.model,
        stream=native.stream,
        reserve_tokens=_prompt_tokens(prompt) + native.num_predict,
        prompt_log=prompt,
    )
    adapter = adapter_class(native.model, native.include_usage)
    return await state.pipeline.run(request, ctx, call, adapter)


@router.post(
    "/v1/chat/completions",
    summary="Chat completion (SSE when stream=true)",
    **openai_route(OPENAI_CHAT, streams=True),
)
async def chat_completions(request: Request) -> Response:
    return await _completion(
        request,
        chat_request_to_native,
        "/api/chat",
        lambda payload: payload.get("messages", []),
        ChatAdapter,
    )


@router.post(
    "/v1/completions",
    summary="Text completion (SSE when stream=true)",
    **openai_route(OPENAI_COMPLETION, streams=True),
)
async def completions(request: Request) -> Response:
    return await _completion(
        request,
        completion_request_to_native,
        "/api/generate",
        lambda payload: (
            [payload.get("prompt"), payload["suffix"]]
            if payload.get("suffix")
            else payload.get("prompt")
        ),
        CompletionAdapter,
    )


@router.post(
    "/v1/embeddings", summary="Embeddings (float or base64)", **openai_route(OPENAI_EMBEDDINGS)
)
async def embeddings(request: Request) -> Response:
    state = gateway(request)
    ctx = await authenticate(request)
    body = await read_body(request)
    native_body, encoding = embeddings_request_to_native(body)
    payload: dict[str, Any] = dict(native_body)
    model = str(payload["model"])
    call = ModelCall(
        upstream_path="/api/embed",
        payload=payload,
        model=model,
        stream=False,
        reserve_tokens=_prompt_tokens(payload.get("input")) + 1,
        prompt_log=payload.get("input"),
    )
    return await state.pipeline.run(request, ctx, call, EmbeddingsAdapter(model, encoding))


@router.get("/v1/models", summary="The models this key may use", **openai_route(None))
async def list_models(request: Request) -> Response:
    state = gateway(request)
    ctx = await authenticate(request)
    assert ctx.principal is not None
    return json_response(
        orjson.dumps(models_list_from_tags(state.effective_models(ctx.principal))), 200, {}
    )


@router.get("/v1/models/{model}", summary="One model, if this key may use it", **openai_route(None))
async def retrieve_model(request: Request, model: str) -> Response:
    state = gateway(request)
    ctx = await authenticate(request)
    assert ctx.principal is not None
    wanted = model_name_key(model)
    for entry in state.effective_models(ctx.principal):
        if model_name_key(entry.get("name") or entry.get("model") or "") == wanted:
            return json_response(orjson.dumps({**model_from_tag(entry), "id": model}), 200, {})
    raise Forbidden("model not available", reason="model_forbidden")
