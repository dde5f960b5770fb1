"""POST /api/generate."""

from __future__ import annotations

import aiohttp
import ollama
import pytest

from neuronetz_gateway.mock_ollama import MockOllama
from tests.unit.mock_ollama.ndjson import post


async def test_non_streamed_generate_returns_response_and_context(
    client: ollama.AsyncClient,
) -> None:
    reply = await client.generate("qwen2.5:0.5b", prompt="tell me a story", system="be nice")

    assert reply.response == "Echo: tell me a story"
    assert reply.done_reason == "stop"
    assert reply.prompt_eval_count == 6  # system + prompt words
    assert reply.eval_count == 5
    assert reply.context is not None
    assert len(reply.context) == 4 + 5


async def test_streamed_generate_sends_response_chunks(client: ollama.AsyncClient) -> None:
    parts = [part async for part in await client.generate("llama3.2", prompt="a b", stream=True)]

    assert [part.response for part in parts] == ["Echo:", " a", " b", ""]
    assert parts[-1].done is True
    assert parts[-1].eval_count == 3
    assert parts[-1].total_duration


async def test_raw_mode_has_no_context(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    body = {"model": "llama3.2", "prompt": "a b", "raw": True, "stream": False}

    answer = await post(http, f"{mock_server.url}/api/generate", body)

    assert answer.status == 200
    assert "context" not in answer.json
    assert answer.json["response"] == "Echo: a b"


async def test_num_predict_gives_done_reason_length(client: ollama.AsyncClient) -> None:
    reply = await client.generate("llama3.2", prompt="one two three", options={"num_predict": 1})

    assert reply.response == "Echo:"
    assert reply.done_reason == "length"
    assert reply.eval_count == 1


async def test_empty_prompt_loads_with_one_json_object_even_when_streaming(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    answer = await post(http, f"{mock_server.url}/api/generate", {"model": "llama3.2"})

    assert answer.content_type == "application/json; charset=utf-8"
    assert answer.json["done_reason"] == "load"
    assert answer.json["response"] == ""
    assert answer.json["done"] is True


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"prompt": "hi"}, 404, "model '' not found"),
        ({"model": "ghost", "prompt": "hi"}, 404, "model 'ghost' not found"),
        (
            {"model": "llama3.2", "prompt": "hi", "raw": True, "system": "x"},
            400,
            "raw mode does not support template, system, or context",
        ),
        (
            {"model": "nomic-embed-text", "prompt": "hi"},
            400,
            '"nomic-embed-text" does not support generate',
        ),
        (
            {"model": "llama3.2", "prompt": "hi", "suffix": "end"},
            400,
            "llama3.2:latest does not support insert",
        ),
        (
            {"model": "llama3.2", "prompt": 7},
            400,
            "json: cannot unmarshal number into Go struct field GenerateRequest.prompt "
            "of type string",
        ),
    ],
)
async def test_invalid_generate_requests(
    mock_server: MockOllama,
    http: aiohttp.ClientSession,
    body: dict[str, object],
    status: int,
    error: str,
) -> None:
    answer = await post(http, f"{mock_server.url}/api/generate", body)

    assert (answer.status, answer.json) == (status, {"error": error})
