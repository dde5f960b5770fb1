"""POST /api/chat, driven by the official client and by plain HTTP."""

from __future__ import annotations

import re

import aiohttp
import ollama
import orjson
import pytest

from neuronetz_gateway.mock_ollama import MockOllama
from tests.unit.mock_ollama.ndjson import post

RFC3339_NANO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
METRICS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)
USER = [{"role": "user", "content": "hello mock world"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {
            "type": "object",
            "required": ["city", "unit"],
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
        },
    },
}


async def test_non_streamed_chat_echoes_the_last_user_message(client: ollama.AsyncClient) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "hello mock world"},
    ]
    reply = await client.chat(model="llama3.2", messages=messages, stream=False)

    assert reply.message.role == "assistant"
    assert reply.message.content == "Echo: hello mock world"
    assert reply.done is True
    assert reply.done_reason == "stop"
    assert reply.prompt_eval_count == 9  # words of all four messages
    assert reply.eval_count == 4
    assert reply.model == "llama3.2"


async def test_streamed_chat_sends_one_chunk_per_word_then_a_final_frame(
    client: ollama.AsyncClient,
) -> None:
    parts = [part async for part in await client.chat("llama3.2", messages=USER, stream=True)]

    contents = [part.message.content for part in parts[:-1]]
    assert contents == ["Echo:", " hello", " mock", " world"]
    assert all(part.done is False for part in parts[:-1])
    final = parts[-1]
    assert final.done is True
    assert final.message.content == ""
    assert final.done_reason == "stop"
    assert final.eval_count == len(contents)
    assert final.prompt_eval_count == 3


@pytest.mark.parametrize("stream", ["missing", None, True])
async def test_stream_missing_null_or_true_means_ndjson(
    mock_server: MockOllama, http: aiohttp.ClientSession, stream: object
) -> None:
    body: dict[str, object] = {"model": "llama3.2", "messages": USER}
    if stream != "missing":
        body["stream"] = stream

    answer = await post(http, f"{mock_server.url}/api/chat", body)

    assert answer.status == 200
    assert answer.content_type == "application/x-ndjson"
    lines = answer.lines
    assert [line["done"] for line in lines] == [False] * 4 + [True]
    assert all(RFC3339_NANO_UTC.match(line["created_at"]) for line in lines)
    assert list(lines[0]) == ["model", "created_at", "message", "done"]
    assert list(lines[-1]) == ["model", "created_at", "message", "done", "done_reason", *METRICS]
    assert all(isinstance(lines[-1][key], int) and lines[-1][key] > 0 for key in METRICS)


async def test_stream_false_is_one_json_object(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    answer = await post(
        http,
        f"{mock_server.url}/api/chat",
        {"model": "llama3.2", "messages": USER, "stream": False},
    )

    assert answer.status == 200
    assert answer.content_type == "application/json; charset=utf-8"
    assert answer.json["message"] == {"role": "assistant", "content": "Echo: hello mock world"}
    assert answer.json["total_duration"] > answer.json["eval_duration"] > 0


@pytest.mark.parametrize("stream", [True, False])
async def test_num_predict_stops_early_with_reason_length(
    client: ollama.AsyncClient, stream: bool
) -> None:
    if stream:
        parts = [
            part
            async for part in await client.chat(
                "llama3.2", messages=USER, options={"num_predict": 2}, stream=True
            )
        ]
        content = "".join(part.message.content or "" for part in parts)
        final = parts[-1]
        assert len(parts) == 3
    else:
        final = await client.chat("llama3.2", messages=USER, options={"num_predict": 2})
        content = final.message.content or ""

    assert content == "Echo: hello"
    assert final.done_reason == "length"
    assert final.eval_count == 2


async def test_num_predict_above_the_reply_length_changes_nothing(
    client: ollama.AsyncClient,
) -> None:
    reply = await client.chat("llama3.2", messages=USER, options={"num_predict": 50})

    assert reply.done_reason == "stop"
    assert reply.eval_count == 4


async def test_configured_chunks_force_the_number_of_content_chunks(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    mock_server.configure(chunks=1000)

    answer = await post(
        http, f"{mock_server.url}/api/chat", {"model": "llama3.2", "messages": USER}
    )

    lines = answer.lines
    assert len(lines) == 1001
    assert lines[-1]["eval_count"] == 1000
    assert all(line["message"]["content"] for line in lines[:-1])


async def test_a_weather_question_with_tools_gets_a_whole_tool_call(
    client: ollama.AsyncClient,
) -> None:
    messages = [{"role": "user", "content": "What is the weather in Paris today?"}]

    parts = [
        part
        async for part in await client.chat(
            "llama3.2", messages=messages, tools=[WEATHER_TOOL], stream=True
        )
    ]

    assert len(parts) == 2
    call_chunk, final = parts
    assert call_chunk.message.content == ""
    assert call_chunk.message.tool_calls is not None
    (call,) = call_chunk.message.tool_calls
    assert call.function.name == "get_weather"
    assert call.function.arguments == {"city": "Paris", "unit": "celsius"}
    assert final.done_reason == "stop"
    assert final.eval_count == 1


async def test_tool_call_arguments_are_a_json_object_with_an_id(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    body = {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "weather please"}],
        "tools": [WEATHER_TOOL],
        "stream": False,
    }

    message = (await post(http, f"{mock_server.url}/api/chat", body)).json["message"]

    (call,) = message["tool_calls"]
    assert re.fullmatch(r"call_[0-9a-z]{8}", call["id"])
    assert call["function"] == {
        "index": 0,
        "name": "get_weather",
        "arguments": {"city": "Berlin", "unit": "celsius"},
    }
    assert message["content"] == ""


async def test_tools_are_not_called_when_the_message_does_not_ask(
    client: ollama.AsyncClient,
) -> None:
    reply = await client.chat("llama3.2", messages=USER, tools=[WEATHER_TOOL])

    assert reply.message.tool_calls is None
    assert reply.message.content == "Echo: hello mock world"


async def test_format_json_gives_valid_json_content(client: ollama.AsyncClient) -> None:
    reply = await client.chat("llama3.2", messages=USER, format="json")

    assert orjson.loads(reply.message.content or "") == {"echo": "Echo: hello mock world"}


async def test_format_schema_gives_an_object_of_that_shape(client: ollama.AsyncClient) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "words": {"type": "integer"}},
        "required": ["answer", "words"],
    }

    reply = await client.chat("llama3.2", messages=USER, format=schema)

    assert orjson.loads(reply.message.content or "") == {
        "answer": "Echo: hello mock world",
        "words": 4,
    }


async def test_stop_option_cuts_the_reply_before_the_stop_sequence(
    client: ollama.AsyncClient,
) -> None:
    reply = await client.chat("llama3.2", messages=USER, options={"stop": [" mock"]})

    assert reply.message.content == "Echo: hello"
    assert reply.done_reason == "stop"


async def test_thinking_model_thinks_first(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    mock_server.configure(models=["qwen3:0.6b"])

    lines = (
        await post(http, f"{mock_server.url}/api/chat", {"model": "qwen3:0.6b", "messages": USER})
    ).lines

    thinking = "".join(line["message"].get("thinking", "") for line in lines)
    content = "".join(line["message"]["content"] for line in lines)
    assert thinking == "Thinking about: hello mock world"
    assert content == "Echo: hello mock world"
    assert lines[-1]["eval_count"] == len(lines) - 1


@pytest.mark.parametrize(("keep_alive", "reason"), [(None, "load"), (0, "unload")])
async def test_empty_messages_load_the_model(
    mock_server: MockOllama, http: aiohttp.ClientSession, keep_alive: int | None, reason: str
) -> None:
    body: dict[str, object] = {"model": "llama3.2", "messages": [], "keep_alive": keep_alive}

    answer = await post(http, f"{mock_server.url}/api/chat", body)

    assert answer.content_type == "application/json; charset=utf-8"
    assert answer.json == {
        "model": "llama3.2",
        "created_at": answer.json["created_at"],
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": reason,
    }


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"model": "nope", "messages": USER}, 404, "model 'nope' not found"),
        ({"messages": USER}, 400, "model is required"),
        ({"model": "", "messages": USER}, 400, "model is required"),
        (
            {"model": "nomic-embed-text", "messages": USER},
            400,
            '"nomic-embed-text" does not support chat',
        ),
        (
            {"model": "llama3.2", "messages": USER, "think": True},
            400,
            '"llama3.2" does not support thinking',
        ),
        (
            {"model": "llama3.2", "messages": USER, "format": "xml"},
            400,
            'invalid format: "xml"; expected "json" or a valid JSON Schema object',
        ),
        (
            {"model": "llama3.2", "messages": "hi"},
            400,
            "json: cannot unmarshal string into Go struct field ChatRequest.messages "
            "of type []api.Message",
        ),
        (
            {"model": "llama3.2", "messages": USER, "options": {"stop": "x"}},
            500,
            'option "stop" must be of type array',
        ),
        ([1, 2], 400, "json: cannot unmarshal array into Go value of type api.ChatRequest"),
        (b"", 400, "missing request body"),
        (b"{not json", 400, "invalid character 'n' looking for beginning of value"),
        (b'{"model": "llama3.2"', 400, "unexpected EOF"),
    ],
)
async def test_invalid_requests_get_ollamas_status_and_message(
    mock_server: MockOllama,
    http: aiohttp.ClientSession,
    body: object,
    status: int,
    error: str,
) -> None:
    answer = await post(http, f"{mock_server.url}/api/chat", body)

    assert (answer.status, answer.json) == (status, {"error": error})
    assert answer.content_type == "application/json; charset=utf-8"


async def test_unknown_model_raises_response_error_in_the_official_client(
    client: ollama.AsyncClient,
) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        await client.chat("missing-model", messages=USER)

    assert caught.value.status_code == 404
    assert caught.value.error == "model 'missing-model' not found"


async def test_keys_match_case_insensitively_last_spelling_wins(
    mock_server: MockOllama, http: aiohttp.ClientSession
) -> None:
    body = (
        b'{"model": "nope", "MODEL": "qwen2.5:0.5b",'
        b' "Messages": [{"role": "user", "content": "hi"}]}'
    )

    answer = await post(http, f"{mock_server.url}/api/chat", body)

    assert answer.status == 200
    assert answer.lines[-1]["model"] == "qwen2.5:0.5b"


async def test_model_names_are_normalised_and_echoed_as_given(
    client: ollama.AsyncClient,
) -> None:
    reply = await client.chat("library/LLAMA3.2:latest", messages=USER)

    assert reply.model == "library/LLAMA3.2:latest"
