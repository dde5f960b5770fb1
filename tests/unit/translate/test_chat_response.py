from __future__ import annotations

import re
from typing import Any

import openai
import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from neuronetz_gateway.translate.chat_response import (
    ChatStreamTranslator,
    chat_response_from_native,
    new_tool_call_id,
)
from neuronetz_gateway.translate.usage import TokenUsage

from .openai_sdk import sdk_client, sse_body

CREATED = 1761499281
TOOL_CALL_ID = re.compile(r"^call_[a-z0-9]{8}$")


def native(message: dict[str, Any], **final: Any) -> dict[str, Any]:
    return {
        "model": "qwen3:8b",
        "created_at": "2025-10-26T17:21:21.196249Z",
        "message": {"role": "assistant", **message},
        "done": bool(final),
        **final,
    }


FINAL = {
    "done_reason": "stop",
    "total_duration": 2_210_000_000,
    "load_duration": 12_000_000,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 130_000_000,
    "eval_count": 41,
    "eval_duration": 2_000_000_000,
}
WEATHER_CALL = {
    "id": "call_k3j4h5g6",
    "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris", "days": 2}},
}


# --- non-streamed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("native_response", "message", "finish_reason"),
    [
        pytest.param(
            native({"content": "Hello!"}, **FINAL),
            {"role": "assistant", "content": "Hello!"},
            "stop",
            id="plain",
        ),
        pytest.param(
            native({"content": "Paris.", "thinking": "Capital of France."}, **FINAL),
            {"role": "assistant", "content": "Paris.", "reasoning": "Capital of France."},
            "stop",
            id="thinking-is-reasoning",
        ),
        pytest.param(
            native({"content": "", "tool_calls": [WEATHER_CALL]}, **FINAL),
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_k3j4h5g6",
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": '{"city":"Paris","days":2}',
                        },
                    }
                ],
            },
            "tool_calls",
            id="tool-calls",
        ),
        pytest.param(
            native({"content": "It was a dark and"}, **{**FINAL, "done_reason": "length"}),
            {"role": "assistant", "content": "It was a dark and"},
            "length",
            id="length",
        ),
        pytest.param(
            native({"content": ""}, done=True, done_reason="load"),
            {"role": "assistant", "content": ""},
            "stop",
            id="load-is-stop",
        ),
        pytest.param(
            {"done": True},
            {"role": "assistant", "content": ""},
            "stop",
            id="no-message",
        ),
    ],
)
def test_chat_response_from_native(
    native_response: dict[str, Any], message: dict[str, Any], finish_reason: str
) -> None:
    body = chat_response_from_native(
        native_response, model="qwen3", completion_id="chatcmpl-1", created=CREATED
    )
    assert body["choices"] == [
        {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
    ]
    assert (body["id"], body["object"], body["created"], body["model"]) == (
        "chatcmpl-1",
        "chat.completion",
        CREATED,
        "qwen3",
    )
    ChatCompletion.model_validate(body)


@pytest.mark.parametrize(
    ("counts", "usage"),
    [
        ({"prompt_eval_count": 26, "eval_count": 41}, (26, 41, 67)),
        ({"eval_count": 3}, (0, 3, 3)),
        ({}, (0, 0, 0)),
        ({"prompt_eval_count": "9", "eval_count": -2}, (0, 0, 0)),
    ],
)
def test_usage_always_present(counts: dict[str, Any], usage: tuple[int, int, int]) -> None:
    body = chat_response_from_native(
        native({"content": "x"}, done=True, **counts),
        model="m",
        completion_id="c",
        created=0,
    )
    assert body["usage"] == dict(
        zip(("prompt_tokens", "completion_tokens", "total_tokens"), usage, strict=True)
    )


def test_tool_calls_without_id_get_one() -> None:
    call = {"function": {"index": 0, "name": "now", "arguments": {}}}
    body = chat_response_from_native(
        native({"content": "", "tool_calls": [call, call]}, **FINAL),
        model="m",
        completion_id="c",
        created=0,
    )
    calls = body["choices"][0]["message"]["tool_calls"]
    assert [c["function"] for c in calls] == [{"name": "now", "arguments": "{}"}] * 2
    assert all(TOOL_CALL_ID.match(c["id"]) for c in calls)
    assert calls[0]["id"] != calls[1]["id"]


def test_new_tool_call_id_shape() -> None:
    assert TOOL_CALL_ID.match(new_tool_call_id())


def test_logprobs_mapped() -> None:
    logprobs = [
        {
            "token": "Hi",
            "logprob": -0.25,
            "bytes": [72, 105],
            "top_logprobs": [{"token": "Hi", "logprob": -0.25}, {"token": "Hey", "logprob": -1.5}],
        },
        {"token": "!"},
    ]
    body = chat_response_from_native(
        {**native({"content": "Hi!"}, **FINAL), "logprobs": logprobs},
        model="m",
        completion_id="c",
        created=0,
    )
    assert body["choices"][0]["logprobs"] == {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.25,
                "bytes": [72, 105],
                "top_logprobs": [
                    {"token": "Hi", "logprob": -0.25, "bytes": None},
                    {"token": "Hey", "logprob": -1.5, "bytes": None},
                ],
            },
            {"token": "!", "logprob": 0.0, "bytes": None, "top_logprobs": []},
        ]
    }
    ChatCompletion.model_validate(body)


# --- streamed ----------------------------------------------------------------------------

HEAD = (
    b'data: {"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1761499281,'
    b'"model":"qwen3","choices":['
)

REALISTIC_STREAM = [
    native({"content": "", "thinking": "The user wants"}),
    native({"content": "", "thinking": " the weather."}),
    native({"content": "Let me"}),
    native({"content": " check"}),
    native({"content": " Paris."}),
    native({"content": "", "tool_calls": [WEATHER_CALL]}),
    native({"content": ""}, **FINAL),
]


def delta_frame(delta: bytes, finish: bytes = b"null") -> bytes:
    return (
        HEAD
        + b'{"index":0,"delta":'
        + delta
        + b',"finish_reason":'
        + finish
        + b',"logprobs":null}]}\n\n'
    )


REALISTIC_FRAMES = [
    delta_frame(b'{"role":"assistant","content":""}'),
    delta_frame(b'{"reasoning":"The user wants"}'),
    delta_frame(b'{"reasoning":" the weather."}'),
    delta_frame(b'{"content":"Let me"}'),
    delta_frame(b'{"content":" check"}'),
    delta_frame(b'{"content":" Paris."}'),
    delta_frame(
        b'{"tool_calls":[{"id":"call_k3j4h5g6","type":"function",'
        b'"function":{"name":"get_weather","arguments":"{\\"city\\":\\"Paris\\",\\"days\\":2}"},'
        b'"index":0}]}'
    ),
    delta_frame(b"{}", finish=b'"tool_calls"'),
    HEAD + b'],"usage":{"prompt_tokens":26,"completion_tokens":41,"total_tokens":67}}\n\n',
    b"data: [DONE]\n\n",
]


def run_stream(chunks: list[dict[str, Any]], *, include_usage: bool = True) -> list[bytes]:
    translator = ChatStreamTranslator("qwen3", "chatcmpl-abc", CREATED, include_usage)
    frames = [frame for chunk in chunks for frame in translator.feed(chunk)]
    return frames + translator.finish()


def payloads(frames: list[bytes]) -> list[dict[str, Any]]:
    return [orjson.loads(frame.removeprefix(b"data: ")) for frame in frames[:-1]]


def test_realistic_stream_exact_frames() -> None:
    translator = ChatStreamTranslator("qwen3", "chatcmpl-abc", CREATED, include_usage=True)
    frames = [frame for chunk in REALISTIC_STREAM for frame in translator.feed(chunk)]
    assert translator.done
    assert translator.usage == TokenUsage(prompt=26, completion=41)
    frames += translator.finish()
    assert frames == REALISTIC_FRAMES
    assert translator.finish() == []
    assert translator.feed(native({"content": "late"})) == []
    for payload in payloads(frames):
        ChatCompletionChunk.model_validate(payload)


def test_realistic_stream_through_the_openai_sdk() -> None:
    client = sdk_client(200, sse_body(REALISTIC_FRAMES), "text/event-stream")
    chunks = list(
        client.chat.completions.create(
            model="qwen3", messages=[{"role": "user", "content": "weather?"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Let me check Paris."
    )
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 67
    with client.chat.completions.stream(
        model="qwen3", messages=[{"role": "user", "content": "weather?"}]
    ) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    assert [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls] == [
        ("call_k3j4h5g6", "get_weather", '{"city":"Paris","days":2}')
    ]


def test_thinking_and_content_in_one_chunk_are_split_reasoning_first() -> None:
    frames = run_stream([native({"content": "Hi", "thinking": "greet"}, **FINAL)])
    deltas = [p["choices"][0]["delta"] for p in payloads(frames) if p["choices"]]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"reasoning": "greet"},
        {"content": "Hi"},
        {},
    ]


def test_tool_call_indexes_count_across_the_stream() -> None:
    call = {"function": {"index": 0, "name": "f", "arguments": {"n": 1}}}
    frames = run_stream(
        [
            native({"content": "", "tool_calls": [call]}),
            native({"content": "", "tool_calls": [call, call]}),
            native({"content": ""}, **FINAL),
        ]
    )
    calls = [
        tool_call
        for p in payloads(frames)
        if p["choices"]
        for tool_call in p["choices"][0]["delta"].get("tool_calls", [])
    ]
    assert [c["index"] for c in calls] == [0, 1, 2]
    assert all(TOOL_CALL_ID.match(c["id"]) for c in calls)
    assert len({c["id"] for c in calls}) == 3


@pytest.mark.parametrize(
    ("chunks", "finish_reason"),
    [
        ([native({"content": "a"}, **FINAL)], "stop"),
        ([native({"content": "a"}, **{**FINAL, "done_reason": "length"})], "length"),
        ([native({"content": "a"}, done=True, done_reason="")], "stop"),
        ([native({"content": "a"})], "stop"),
        ([], "stop"),
    ],
)
def test_finish_reason(chunks: list[dict[str, Any]], finish_reason: str) -> None:
    frames = run_stream(chunks, include_usage=False)
    finishes = [p["choices"][0]["finish_reason"] for p in payloads(frames)]
    assert finishes[-1] == finish_reason
    assert finishes[:-1] == [None] * (len(finishes) - 1)
    assert frames[-1] == b"data: [DONE]\n\n"


def test_empty_completion_still_opens_with_a_role_chunk() -> None:
    frames = run_stream([native({"content": ""}, **FINAL)], include_usage=False)
    assert [p["choices"][0]["delta"] for p in payloads(frames)] == [
        {"role": "assistant", "content": ""},
        {},
    ]


def test_stream_without_final_frame_reports_no_usage() -> None:
    translator = ChatStreamTranslator("qwen3", "chatcmpl-abc", CREATED, include_usage=True)
    translator.feed(native({"content": "partial"}))
    frames = translator.finish()
    assert not translator.done
    assert translator.usage == TokenUsage(0, 0)
    assert payloads(frames)[-1]["usage"] == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
    }


def test_error_frame_ends_the_stream_without_done() -> None:
    translator = ChatStreamTranslator("qwen3", "chatcmpl-abc", CREATED, include_usage=True)
    frames = translator.feed(native({"content": "Once upon"}))
    error = translator.error_frame("the backend went away", code="upstream_error")
    assert error == (
        b'data: {"error":{"message":"the backend went away","type":"api_error",'
        b'"param":null,"code":"upstream_error"}}\n\n'
    )
    assert translator.failed
    assert translator.finish() == []
    assert translator.feed(native({"content": " a time"})) == []

    client = sdk_client(200, sse_body([*frames, error]), "text/event-stream")
    stream = client.chat.completions.create(
        model="qwen3", messages=[{"role": "user", "content": "story"}], stream=True
    )
    received: list[str] = []

    def consume() -> None:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    with pytest.raises(openai.APIError, match="the backend went away"):
        consume()
    assert received == ["", "Once upon"]


def test_native_error_line_becomes_a_generic_error_frame() -> None:
    translator = ChatStreamTranslator("qwen3", "chatcmpl-abc", CREATED, include_usage=False)
    translator.feed(native({"content": "Once"}))
    frames = translator.feed({"error": "llama runner process has terminated: /models/blob"})
    assert len(frames) == 1
    error = orjson.loads(frames[0].removeprefix(b"data: "))["error"]
    assert error["type"] == "api_error"
    assert "runner" not in error["message"]
    assert "/models" not in error["message"]
    assert translator.failed
    assert translator.finish() == []


def test_stream_logprobs_ride_on_the_content_chunk() -> None:
    chunk = {
        **native({"content": "Hi", "thinking": "t"}),
        "logprobs": [{"token": "Hi", "logprob": -0.5}],
    }
    choices = [p["choices"][0] for p in payloads(run_stream([chunk], include_usage=False))]
    assert [c["logprobs"] for c in choices] == [
        None,
        None,
        {"content": [{"token": "Hi", "logprob": -0.5, "bytes": None, "top_logprobs": []}]},
        None,
    ]


AWKWARD_TEXT = ['a"b\\c', "line\nbreak", "data: [DONE]\n\n", "\u2028\u2029", "é😀\x00", "}]}\n"]


@pytest.mark.parametrize("text", AWKWARD_TEXT)
def test_plain_content_frames_are_the_bytes_of_the_whole_chunk(text: str) -> None:
    """Plain-text chunks are rendered from a precomputed head; the bytes must be those
    of the whole chunk rendered by ``orjson``, whatever the model name and text hold."""
    model = 'we"ird\\model\u2028é'
    translator = ChatStreamTranslator(model, 'chatcmpl-"x', CREATED, include_usage=False)
    frames = translator.feed(native({"content": "a"}))[1:] + translator.feed(
        native({"content": text})
    )
    expected = [
        b"data: "
        + orjson.dumps(
            {
                "id": 'chatcmpl-"x',
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": content},
                        "finish_reason": None,
                        "logprobs": None,
                    }
                ],
            }
        )
        + b"\n\n"
        for content in ("a", text)
    ]
    assert frames == expected
    assert [payloads([f, b""])[0]["choices"][0]["delta"]["content"] for f in frames] == ["a", text]


@pytest.mark.parametrize(
    "message",
    [{"content": 5}, {"content": "x", "thinking": 7}, {"content": "x", "tool_calls": "no"}],
)
def test_odd_chunks_take_the_general_path(message: dict[str, Any]) -> None:
    translator = ChatStreamTranslator("m", "chatcmpl-1", CREATED, include_usage=False)
    frames = translator.feed(native(message))[1:]
    assert [p["choices"][0]["delta"] for p in payloads([*frames, b""])] == (
        [] if message["content"] == 5 else [{"content": "x"}]
    )
