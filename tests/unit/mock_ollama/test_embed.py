"""POST /api/embed and the legacy POST /api/embeddings."""

from __future__ import annotations

import math

import aiohttp
import ollama
import pytest

from neuronetz_gateway.mock_ollama import MockOllama
from tests.unit.mock_ollama.ndjson import post


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


async def test_embed_a_string_gives_one_normalised_vector(client: ollama.AsyncClient) -> None:
    reply = await client.embed("nomic-embed-text", input="the sky is blue")

    (vector,) = reply.embeddings
    assert len(vector) == 768
    assert norm(list(vector)) == pytest.approx(1.0)
    assert reply.prompt_eval_count == 4


async def test_embed_a_list_is_deterministic_per_text(client: ollama.AsyncClient) -> None:
    first = await client.embed("nomic-embed-text", input=["alpha", "beta"])
    again = await client.embed("nomic-embed-text", input=["beta"])

    assert len(first.embeddings) == 2
    assert first.embeddings[1] == again.embeddings[0]
    assert first.embeddings[0] != first.embeddings[1]


async def test_dimensions_slice_then_renormalise(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    url = f"{mock_server.url}/api/embed"
    full = (await post(http, url, {"model": "nomic-embed-text", "input": "x"})).json
    short = (
        await post(http, url, {"model": "nomic-embed-text", "input": "x", "dimensions": 8})
    ).json

    (vector,) = short["embeddings"]
    assert len(vector) == 8
    assert norm(vector) == pytest.approx(1.0)
    prefix = full["embeddings"][0][:8]
    assert vector == pytest.approx([x / norm(prefix) for x in prefix])
    assert list(full) == [
        "model",
        "embeddings",
        "total_duration",
        "load_duration",
        "prompt_eval_count",
    ]


@pytest.mark.parametrize("empty", ["", []])
async def test_empty_input_loads_and_returns_no_vectors(
    mock_server: MockOllama, http: aiohttp.ClientSession, empty: object
) -> None:
    answer = await post(
        http, f"{mock_server.url}/api/embed", {"model": "nomic-embed-text", "input": empty}
    )

    assert answer.json == {"model": "nomic-embed-text", "embeddings": []}


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"model": "nomic-embed-text", "input": 3}, 400, "invalid input type"),
        ({"model": "nomic-embed-text", "input": ["a", 1]}, 400, "invalid input type"),
        ({"model": "ghost", "input": "a"}, 404, "model 'ghost' not found"),
        ({"input": "a"}, 400, "model is required"),
    ],
)
async def test_invalid_embed_requests(
    mock_server: MockOllama,
    http: aiohttp.ClientSession,
    body: dict[str, object],
    status: int,
    error: str,
) -> None:
    answer = await post(http, f"{mock_server.url}/api/embed", body)

    assert (answer.status, answer.json) == (status, {"error": error})


async def test_legacy_embeddings_are_not_normalised(client: ollama.AsyncClient) -> None:
    reply = await client.embeddings("nomic-embed-text", prompt="the sky is blue")

    assert len(reply.embedding) == 768
    assert norm(list(reply.embedding)) > 1.5


async def test_legacy_embeddings_of_an_empty_prompt_are_empty(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    answer = await post(http, f"{mock_server.url}/api/embeddings", {"model": "nomic-embed-text"})

    assert answer.json == {"embedding": []}
