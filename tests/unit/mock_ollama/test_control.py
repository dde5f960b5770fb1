"""The request log and the ``/_mock/`` control endpoints."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest

from neuronetz_gateway.mock_ollama import MockConfigError, MockOllama
from tests.unit.mock_ollama.ndjson import get, post


async def test_every_request_is_recorded_with_its_details(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    body = {"model": "llama3.2", "messages": [], "stream": False}
    async with http.post(
        f"{mock_server.url}/api/chat?trace=1",
        data=orjson.dumps(body),
        headers={"X-Custom": "yes", "Authorization": "Bearer t"},
    ):
        pass
    await get(http, f"{mock_server.url}/api/pull")

    chat, pull = mock_server.requests
    assert (chat["method"], chat["path"], chat["query"]) == ("POST", "/api/chat", {"trace": "1"})
    assert chat["raw_path"] == "/api/chat?trace=1"
    assert chat["headers"]["x-custom"] == "yes"
    assert chat["headers"]["authorization"] == "Bearer t"
    assert chat["body"] == body
    assert chat["raw_body"] == orjson.dumps(body)
    assert (pull["method"], pull["path"], pull["body"]) == ("GET", "/api/pull", None)


async def test_control_requests_are_not_recorded(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    await get(http, f"{mock_server.url}/api/version")
    await get(http, f"{mock_server.url}/_mock/requests")
    await post(http, f"{mock_server.url}/_mock/config", {"delay_s": 0})
    await get(http, f"{mock_server.url}/_mock/stats")

    assert [r["path"] for r in mock_server.requests] == ["/api/version"]


async def test_get_requests_returns_the_log_as_json(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    await post(http, f"{mock_server.url}/api/show", b"not json")

    (record,) = (await get(http, f"{mock_server.url}/_mock/requests")).json

    assert record["path"] == "/api/show"
    assert record["body"] is None
    assert record["raw_body"] == "not json"
    assert record["disconnected"] is False


async def test_delete_requests_clears_the_log(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    await get(http, f"{mock_server.url}/api/tags")
    await get(http, f"{mock_server.url}/api/tags")

    cleared = await get(http, f"{mock_server.url}/_mock/requests", "DELETE")

    assert cleared.json == {"cleared": 2}
    assert mock_server.requests == []


async def test_the_log_keeps_the_newest_records(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    mock_server.configure(request_log_size=2)
    for path in ("/", "/api/version", "/api/tags"):
        await get(http, f"{mock_server.url}{path}")

    assert [r["path"] for r in mock_server.requests] == ["/api/version", "/api/tags"]


async def test_post_config_changes_only_the_named_keys(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    answer = await post(
        http,
        f"{mock_server.url}/_mock/config",
        {"models": ["phi3"], "fail": "busy", "fail_count": 1},
    )

    assert answer.status == 200
    assert answer.json["models"] == ["phi3:latest"]
    assert (answer.json["fail"], answer.json["fail_count"]) == ("busy", 1)
    assert answer.json["delay_s"] == 0.0
    assert mock_server.config.fail == "busy"
    tags = (await get(http, f"{mock_server.url}/api/tags")).json
    assert [m["name"] for m in tags["models"]] == ["phi3:latest"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"nope": 1}, "unknown config key 'nope'"),
        ({"fail": "explode"}, "fail: expected null or one of"),
        ({"delay_s": -1}, "delay_s: expected a number of seconds >= 0"),
        ({"chunks": 1.5}, "chunks: expected an integer >= 0"),
        ({"models": [{"size": 1}]}, "models: each model needs a string 'name'"),
        ({"models": ["a", "a:latest"]}, "models: model names must be unique"),
        ({"require_token": ""}, "require_token: expected null or a non-empty string"),
    ],
)
async def test_invalid_config_is_refused_whole(
    mock_server: MockOllama,
    http: aiohttp.ClientSession,
    changes: dict[str, object],
    message: str,
) -> None:
    before = mock_server.config

    answer = await post(http, f"{mock_server.url}/_mock/config", {"delay_s": 3, **changes})

    assert answer.status == 400
    assert message in answer.json["error"]
    assert mock_server.config == before


async def test_python_configure_validates_the_same_way(mock_server: MockOllama) -> None:
    with pytest.raises(MockConfigError, match="fail_count"):
        mock_server.configure(fail_count=-1)
    with pytest.raises(MockConfigError, match="unknown config key"):
        MockOllama(**{"colour": "red"})  # type: ignore[arg-type]


async def test_reset_restores_the_start_configuration_and_clears_the_log(
    http: aiohttp.ClientSession,
) -> None:
    async with MockOllama(models=["phi3"]) as server:
        server.configure(models=["other"], fail="busy", delay_s=1)
        await get(http, f"{server.url}/api/version")

        answer = await post(http, f"{server.url}/_mock/reset", b"")

        assert answer.json["models"] == ["phi3:latest"]
        assert answer.json["fail"] is None
        assert answer.json["delay_s"] == 0.0
        assert server.requests == []


async def test_a_client_that_leaves_mid_stream_is_marked_disconnected(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    mock_server.configure(chunks=200, chunk_delay_s=0.01)
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "go"}]}

    async with http.post(f"{mock_server.url}/api/chat", data=orjson.dumps(body)) as response:
        await response.content.readline()
        response.close()

    for _ in range(100):
        if mock_server.requests[-1]["disconnected"]:
            break
        await asyncio.sleep(0.02)
    assert mock_server.requests[-1]["disconnected"] is True
    assert mock_server.stats()["in_flight"] == 0


async def test_unknown_control_path_is_404(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    assert (await get(http, f"{mock_server.url}/_mock/nothing")).status == 404
