"""Every fault mode, as a client observes it."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import ollama
import orjson
import pytest

from neuronetz_gateway.mock_ollama import MockOllama
from tests.unit.mock_ollama.ndjson import get, post

USER = [{"role": "user", "content": "one two three"}]
CHAT = {"model": "llama3.2", "messages": USER}
WHOLE_CHAT = {**CHAT, "stream": False}
BUSY = "server busy, please try again.  maximum pending requests exceeded"


@pytest.mark.parametrize("body", [CHAT, WHOLE_CHAT])
async def test_busy_is_503_with_ollamas_message(
    mock_server: MockOllama, http: aiohttp.ClientSession, body: dict[str, object]
) -> None:
    mock_server.configure(fail="busy")

    answer = await post(http, f"{mock_server.url}/api/chat", body)

    assert (answer.status, answer.json) == (503, {"error": BUSY})


async def test_busy_raises_response_error_in_the_official_client(
    mock_server: MockOllama, client: ollama.AsyncClient
) -> None:
    mock_server.configure(fail="busy")

    with pytest.raises(ollama.ResponseError) as caught:
        await client.generate("llama3.2", prompt="hi")

    assert caught.value.status_code == 503


@pytest.mark.parametrize("body", [CHAT, WHOLE_CHAT])
async def test_before_first_chunk_is_a_json_500_before_any_output(
    mock_server: MockOllama, http: aiohttp.ClientSession, body: dict[str, object]
) -> None:
    mock_server.configure(fail="before_first_chunk")

    answer = await post(http, f"{mock_server.url}/api/chat", body)

    assert answer.status == 500
    assert answer.content_type == "application/json; charset=utf-8"
    assert "llama runner process has terminated" in answer.json["error"]


async def test_error_500_with_trace_leaks_a_go_stack_and_local_paths(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    mock_server.configure(fail="error_500_with_trace")

    answer = await post(
        http, f"{mock_server.url}/api/embed", {"model": "nomic-embed-text", "input": "x"}
    )

    assert answer.status == 500
    error = answer.json["error"]
    assert "goroutine" in error
    assert "/usr/lib/ollama" in error


@pytest.mark.parametrize("body", [CHAT, WHOLE_CHAT])
async def test_reset_before_first_byte_sends_no_response(
    mock_server: MockOllama, http: aiohttp.ClientSession, body: dict[str, object]
) -> None:
    mock_server.configure(fail="reset_before_first_byte")

    with pytest.raises(aiohttp.ClientConnectionError):
        await post(http, f"{mock_server.url}/api/chat", body)


async def test_after_first_chunk_cuts_the_stream_after_one_line(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    mock_server.configure(fail="after_first_chunk")
    received: list[bytes] = []

    async def read_lines(response: aiohttp.ClientResponse) -> None:
        async for line in response.content:
            received.append(line)

    async with http.post(f"{mock_server.url}/api/chat", data=orjson.dumps(CHAT)) as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await read_lines(response)

    assert len(received) == 1
    assert orjson.loads(received[0])["message"]["content"] == "Echo:"


async def test_after_first_chunk_truncates_a_non_streamed_body(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    mock_server.configure(fail="after_first_chunk")

    with pytest.raises(aiohttp.ClientPayloadError):
        await post(http, f"{mock_server.url}/api/chat", WHOLE_CHAT)


async def test_error_after_first_chunk_appends_an_error_line(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    mock_server.configure(fail="error_after_first_chunk")

    answer = await post(http, f"{mock_server.url}/api/chat", CHAT)

    assert answer.status == 200
    first, error = answer.lines
    assert first["done"] is False
    assert list(error) == ["error"]


async def test_error_after_first_chunk_raises_mid_stream_in_the_official_client(
    mock_server: MockOllama, client: ollama.AsyncClient
) -> None:
    mock_server.configure(fail="error_after_first_chunk")
    contents: list[str] = []

    async def read_parts() -> None:
        async for part in await client.chat("llama3.2", messages=USER, stream=True):
            contents.append(part.message.content or "")

    with pytest.raises(ollama.ResponseError):
        await read_parts()

    assert contents == ["Echo:"]


async def test_error_after_first_chunk_without_streaming_is_a_plain_500(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    mock_server.configure(fail="error_after_first_chunk")

    answer = await post(
        http,
        f"{mock_server.url}/api/generate",
        {"model": "llama3.2", "prompt": "x", "stream": False},
    )

    assert answer.status == 500
    assert "error" in answer.json


async def test_fail_count_limits_the_fault_to_the_next_model_requests(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    mock_server.configure(fail="busy", fail_count=2)
    url = mock_server.url

    statuses = [
        (await post(http, f"{url}/api/chat", WHOLE_CHAT)).status,
        (await get(http, f"{url}/api/tags")).status,  # not a model request: no fault drawn
        (await post(http, f"{url}/api/embed", {"model": "nomic-embed-text", "input": "a"})).status,
        (await post(http, f"{url}/api/chat", WHOLE_CHAT)).status,
    ]

    assert statuses == [503, 200, 503, 200]


async def test_invalid_requests_keep_their_own_error_and_do_not_use_up_a_fault(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    mock_server.configure(fail="busy", fail_count=1)

    unknown = await post(http, f"{mock_server.url}/api/chat", {"model": "ghost", "messages": []})
    busy = await post(http, f"{mock_server.url}/api/chat", WHOLE_CHAT)

    assert (unknown.status, busy.status) == (404, 503)


async def test_delay_holds_the_answer(mock_server: MockOllama, http: aiohttp.ClientSession) -> None:
    mock_server.configure(delay_s=0.2)

    started = time.monotonic()
    answer = await post(http, f"{mock_server.url}/api/chat", WHOLE_CHAT)

    assert answer.status == 200
    assert time.monotonic() - started >= 0.2


async def test_chunk_delay_spaces_the_stream(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    mock_server.configure(chunk_delay_s=0.05)

    started = time.monotonic()
    answer = await post(http, f"{mock_server.url}/api/chat", CHAT)

    assert len(answer.lines) == 5
    assert time.monotonic() - started >= 4 * 0.05


async def test_concurrent_requests_are_counted(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    mock_server.configure(delay_s=0.2)

    answers = await asyncio.gather(
        *(post(http, f"{mock_server.url}/api/chat", WHOLE_CHAT) for _ in range(3))
    )

    assert [a.status for a in answers] == [200, 200, 200]
    assert mock_server.stats()["peak_in_flight"] == 3
    assert mock_server.stats()["in_flight"] == 0


async def test_require_token_refuses_requests_without_the_bearer_token(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    mock_server.configure(require_token="secret")
    url = f"{mock_server.url}/api/tags"

    missing = await get(http, url)
    async with http.get(url, headers={"Authorization": "Bearer wrong"}) as wrong:
        wrong_status = wrong.status
    async with http.get(url, headers={"Authorization": "Bearer secret"}) as right:
        right_status = right.status

    assert (missing.status, missing.json) == (401, {"error": "unauthorized"})
    assert (wrong_status, right_status) == (401, 200)
    assert (await get(http, f"{mock_server.url}/_mock/config")).status == 200
