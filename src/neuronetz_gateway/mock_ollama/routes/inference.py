"""The model requests: /api/chat, /api/generate, /api/embed, /api/embeddings.

Each validates like Ollama (same order, statuses and messages), then waits
``delay_s``, draws its fault, and answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Literal

import orjson
from aiohttp import web

from neuronetz_gateway.mock_ollama import decoding, frames
from neuronetz_gateway.mock_ollama.catalog import ModelSpec
from neuronetz_gateway.mock_ollama.faults import early_failure, stream_fault
from neuronetz_gateway.mock_ollama.generation import (
    context_ids,
    count_prompt_tokens,
    embedding,
    pick_tool_call,
    plan_completion,
)
from neuronetz_gateway.mock_ollama.state import MockState, Received
from neuronetz_gateway.mock_ollama.wire import (
    OllamaError,
    StreamFault,
    send_stream,
    send_whole,
)

_THINK_LEVELS = ("low", "medium", "high", "max")


async def chat(received: Received, state: MockState) -> web.StreamResponse:
    body = received.decode("ChatRequest")
    name = decoding.text(body, "model", "ChatRequest")
    if not name:
        raise OllamaError(400, "model is required")
    spec = _installed(state, name)
    messages = _messages(body)
    tools = [
        t for t in decoding.items(body, "tools", "ChatRequest", "api.Tools") if isinstance(t, dict)
    ]
    stream = decoding.flag(body, "stream", "ChatRequest") is not False
    if "completion" not in spec.capabilities:
        raise OllamaError(400, f'"{name}" does not support chat')
    if tools and "tools" not in spec.capabilities:
        raise OllamaError(400, f"{spec.name} does not support tools")
    think = _think(body, spec, name)
    json_format = _format(body)
    num_predict, stops = _options(body, "ChatRequest")

    early, fault = await _admit(received, state)
    if early is not None:
        return early
    if not messages:
        return await send_whole(received.request, frames.load_chat(name, _load_reason(body)), fault)
    prompt = _last_user_text(messages)
    completion = plan_completion(
        prompt,
        prompt_eval_count=count_prompt_tokens(m["content"] for m in messages),
        think=think,
        json_format=json_format,
        tool_call=pick_tool_call(prompt, tools) if tools else None,
        forced_chunks=state.config.chunks,
        num_predict=num_predict,
        stops=stops,
    )
    if not stream:
        return await send_whole(received.request, frames.chat_whole(name, completion), fault)
    return await _stream(received, state, frames.chat_lines(name, completion), fault)


async def generate(received: Received, state: MockState) -> web.StreamResponse:
    body = received.decode("GenerateRequest")
    name = decoding.text(body, "model", "GenerateRequest")
    spec = _installed(state, name)
    prompt = decoding.text(body, "prompt", "GenerateRequest")
    system = decoding.text(body, "system", "GenerateRequest")
    template = decoding.text(body, "template", "GenerateRequest")
    suffix = decoding.text(body, "suffix", "GenerateRequest")
    context = decoding.items(body, "context", "GenerateRequest", "[]int")
    raw = decoding.flag(body, "raw", "GenerateRequest") is True
    stream = decoding.flag(body, "stream", "GenerateRequest") is not False
    if raw and (template or system or context):
        raise OllamaError(400, "raw mode does not support template, system, or context")
    if "completion" not in spec.capabilities:
        raise OllamaError(400, f'"{name}" does not support generate')
    if suffix and "insert" not in spec.capabilities:
        raise OllamaError(400, f"{spec.name} does not support insert")
    think = _think(body, spec, name)
    json_format = _format(body)
    num_predict, stops = _options(body, "GenerateRequest")

    early, fault = await _admit(received, state)
    if early is not None:
        return early
    if not prompt:
        return await send_whole(
            received.request, frames.load_generate(name, _load_reason(body)), fault
        )
    completion = plan_completion(
        prompt,
        prompt_eval_count=count_prompt_tokens([system, prompt]),
        think=think,
        json_format=json_format,
        forced_chunks=state.config.chunks,
        num_predict=num_predict,
        stops=stops,
    )
    ids = None if raw else context_ids([prompt, completion.text("content")])
    if not stream:
        return await send_whole(
            received.request, frames.generate_whole(name, completion, ids), fault
        )
    return await _stream(received, state, frames.generate_lines(name, completion, ids), fault)


async def embed(received: Received, state: MockState) -> web.StreamResponse:
    body = received.decode("EmbedRequest")
    name = decoding.text(body, "model", "EmbedRequest")
    if not name:
        raise OllamaError(400, "model is required")
    spec = _installed(state, name)
    inputs = _embed_inputs(body.get("input"))
    dimensions = body.get("dimensions")
    size = spec.embedding_length
    if isinstance(dimensions, int) and not isinstance(dimensions, bool) and 0 < dimensions < size:
        size = dimensions
    if body.get("truncate") is False and any(len(t.split()) > spec.context_length for t in inputs):
        raise OllamaError(400, "the input length exceeds the context length")

    early, fault = await _admit(received, state)
    if early is not None:
        return early
    if not inputs:
        return await send_whole(received.request, {"model": name, "embeddings": []}, fault)
    prompt_eval_count = count_prompt_tokens(inputs)
    payload = {
        "model": name,
        "embeddings": [embedding(f"{spec.name}\0{text}", size) for text in inputs],
        "total_duration": frames.metrics(prompt_eval_count, 0)["total_duration"],
        "load_duration": frames.LOAD_DURATION_NS,
        "prompt_eval_count": prompt_eval_count,
    }
    return await send_whole(received.request, payload, fault)


async def embeddings(received: Received, state: MockState) -> web.StreamResponse:
    body = received.decode("EmbeddingRequest")
    name = decoding.text(body, "model", "EmbeddingRequest")
    if not name:
        raise OllamaError(400, "model is required")
    spec = _installed(state, name)
    prompt = decoding.text(body, "prompt", "EmbeddingRequest")

    early, fault = await _admit(received, state)
    if early is not None:
        return early
    vector = embedding(f"{spec.name}\0{prompt}", spec.embedding_length, normalised=False)
    return await send_whole(received.request, {"embedding": vector if prompt else []}, fault)


async def _admit(
    received: Received, state: MockState
) -> tuple[web.StreamResponse | None, StreamFault | None]:
    """The configured delay, then this request's fault: an early answer or a stream fault."""
    if state.config.delay_s:
        await asyncio.sleep(state.config.delay_s)
    mode = state.faults.draw()
    return early_failure(received.request, mode), stream_fault(mode)


async def _stream(
    received: Received, state: MockState, lines: Iterable[bytes], fault: StreamFault | None
) -> web.StreamResponse:
    record = received.record

    def disconnected() -> None:
        record["disconnected"] = True

    return await send_stream(
        received.request,
        lines,
        chunk_delay_s=state.config.chunk_delay_s,
        fault=fault,
        on_disconnect=disconnected,
    )


def _installed(state: MockState, name: str) -> ModelSpec:
    spec = state.config.find_model(name) if name else None
    if spec is None:
        raise OllamaError(404, f"model '{name}' not found")
    return spec


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = []
    for item in decoding.items(body, "messages", "ChatRequest", "[]api.Message"):
        if not isinstance(item, dict):
            raise OllamaError(
                400,
                f"json: cannot unmarshal {decoding.go_kind(item)} into Go struct field "
                "ChatRequest.messages of type api.Message",
            )
        message = decoding.fold_keys(item)
        role = decoding.text(message, "role", "Message").lower()
        content = decoding.text(message, "content", "Message")
        messages.append({**message, "role": role, "content": content})
    return messages


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message["role"] == "user":
            return str(message["content"])
    return str(messages[-1]["content"])


def _think(body: dict[str, Any], spec: ModelSpec, name: str) -> bool:
    value = body.get("think")
    if value is None:
        return "thinking" in spec.capabilities
    if isinstance(value, bool):
        enabled = value
    elif value in _THINK_LEVELS:
        enabled = True
    else:
        raise OllamaError(400, f"invalid think value: {orjson.dumps(value).decode()}")
    if enabled and "thinking" not in spec.capabilities:
        raise OllamaError(400, f'"{name}" does not support thinking')
    return enabled


def _format(body: dict[str, Any]) -> dict[str, Any] | Literal["json"] | None:
    value = body.get("format")
    if value is None or value == "":
        return None
    if value == "json":
        return "json"
    if isinstance(value, dict):
        return value
    raise OllamaError(
        400,
        f"invalid format: {orjson.dumps(value).decode()}; "
        'expected "json" or a valid JSON Schema object',
    )


def _options(body: dict[str, Any], go_type: str) -> tuple[int | None, list[str]]:
    options = decoding.mapping(body, "options", go_type)
    num_predict = options.get("num_predict")
    if num_predict is not None and (
        isinstance(num_predict, bool) or not isinstance(num_predict, int | float)
    ):
        raise OllamaError(500, 'option "num_predict" must be of type integer')
    stop = options.get("stop")
    if stop is not None and (
        not isinstance(stop, list) or not all(isinstance(s, str) for s in stop)
    ):
        raise OllamaError(500, 'option "stop" must be of type array')
    return (None if num_predict is None else int(num_predict)), (stop or [])


def _load_reason(body: dict[str, Any]) -> str:
    keep_alive = body.get("keep_alive")
    unload = keep_alive in (0, "0", "0s", "0m") and not isinstance(keep_alive, bool)
    return "unload" if unload else "load"


def _embed_inputs(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise OllamaError(400, "invalid input type")
