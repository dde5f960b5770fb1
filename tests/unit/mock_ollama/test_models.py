"""GET /api/tags, /api/ps, /api/version and POST /api/show."""

from __future__ import annotations

import aiohttp
import ollama
import pytest

from neuronetz_gateway.mock_ollama import SYSTEM_PROMPT, MockOllama
from tests.unit.mock_ollama.ndjson import get, post


async def test_tags_lists_the_default_models_newest_first(client: ollama.AsyncClient) -> None:
    listed = await client.list()

    assert [m.model for m in listed.models] == [
        "llama3.2:latest",
        "qwen2.5:0.5b",
        "nomic-embed-text:latest",
    ]
    modified = [m.modified_at for m in listed.models]
    assert modified == sorted(modified, reverse=True)  # type: ignore[type-var]
    llama = listed.models[0]
    assert llama.size == 2019393189
    assert llama.digest is not None
    assert len(llama.digest) == 64
    assert llama.details is not None
    assert (llama.details.family, llama.details.parameter_size) == ("llama", "3.2B")


async def test_tags_entries_have_ollamas_keys(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    mock_server.configure(models=["mistral:7b", {"name": "custom", "size": 12345}])

    answer = await get(http, f"{mock_server.url}/api/tags")

    assert answer.content_type == "application/json; charset=utf-8"
    first, second = answer.json["models"]
    assert list(first) == ["name", "model", "modified_at", "size", "digest", "details"]
    assert first["name"] == "mistral:7b"
    assert first["details"]["parameter_size"] == "7B"
    assert (second["name"], second["size"]) == ("custom:latest", 12345)


async def test_no_models_is_an_empty_list(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    mock_server.configure(models=[])

    assert (await get(http, f"{mock_server.url}/api/tags")).json == {"models": []}


async def test_ps_reports_the_configured_loaded_models(
    mock_server: MockOllama, client: ollama.AsyncClient
) -> None:
    assert (await client.ps()).models == []

    mock_server.configure(loaded_models=["llama3.2"])
    (loaded,) = (await client.ps()).models

    assert loaded.model == "llama3.2:latest"
    assert loaded.expires_at is not None
    assert loaded.size_vram


async def test_version(mock_server: MockOllama, http: aiohttp.ClientSession) -> None:
    answer = await get(http, f"{mock_server.url}/api/version")

    assert answer.json == {"version": "0.12.6"}


async def test_root_says_ollama_is_running(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    answer = await get(http, f"{mock_server.url}/")

    assert (answer.status, answer.body) == (200, b"Ollama is running")


async def test_show_carries_everything_the_gateway_must_strip(client: ollama.AsyncClient) -> None:
    shown = await client.show("llama3.2")

    assert shown.modelfile is not None
    assert "FROM /root/.ollama/models/blobs/sha256-" in shown.modelfile
    assert (shown.license or "").startswith("LLAMA 3.2 COMMUNITY LICENSE")
    assert "<|start_header_id|>" in (shown.template or "")
    assert "stop" in (shown.parameters or "")
    assert shown.capabilities == ["completion", "tools"]
    assert shown.modelinfo is not None
    assert shown.modelinfo["llama.context_length"] == 131072
    assert shown.modified_at is not None
    assert shown.details is not None
    assert shown.details.family == "llama"


async def test_show_leaks_the_system_prompt_in_two_places(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    shown = (await post(http, f"{mock_server.url}/api/show", {"model": "llama3.2"})).json

    assert shown["system"] == SYSTEM_PROMPT
    assert SYSTEM_PROMPT in shown["modelfile"]
    assert list(shown) == [
        "license",
        "modelfile",
        "parameters",
        "template",
        "system",
        "details",
        "model_info",
        "tensors",
        "capabilities",
        "modified_at",
    ]


async def test_show_verbose_fills_long_model_info_arrays(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    url = f"{mock_server.url}/api/show"
    terse = (await post(http, url, {"model": "qwen2.5:0.5b"})).json
    verbose = (await post(http, url, {"name": "qwen2.5:0.5b", "verbose": True})).json

    assert terse["model_info"]["tokenizer.ggml.tokens"] == []
    assert len(verbose["model_info"]["tokenizer.ggml.tokens"]) > 5


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [({}, 400, "model is required"), ({"model": "ghost"}, 404, "model 'ghost' not found")],
)
async def test_show_errors(
    mock_server: MockOllama,
    http: aiohttp.ClientSession,
    body: dict[str, str],
    status: int,
    error: str,
) -> None:
    answer = await post(http, f"{mock_server.url}/api/show", body)

    assert (answer.status, answer.json) == (status, {"error": error})
