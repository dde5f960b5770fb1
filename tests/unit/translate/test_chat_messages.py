from __future__ import annotations

import base64
from typing import Any

import pytest

from neuronetz_gateway.errors import BadRequest
from neuronetz_gateway.translate.chat_messages import messages_to_native

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
WAV = base64.b64encode(b"RIFF....WAVEfmt ").decode()

CALL = {
    "id": "call_abc12345",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris", "days": 2}'},
}
NATIVE_CALL = {
    "id": "call_abc12345",
    "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris", "days": 2}},
}


def image(url: Any) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, "detail": "high"}}


@pytest.mark.parametrize(
    ("messages", "native"),
    [
        pytest.param(
            [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            id="strings",
        ),
        pytest.param(
            [{"role": "developer", "content": "rules"}],
            [{"role": "system", "content": "rules"}],
            id="developer-is-system",
        ),
        pytest.param(
            [{"role": "user", "content": "hi", "name": "alice"}],
            [{"role": "user", "content": "hi"}],
            id="participant-name-ignored",
        ),
        pytest.param(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        image(f"data:image/png;base64,{PNG}"),
                    ],
                }
            ],
            [
                {"role": "user", "content": "what is this?"},
                {"role": "user", "content": "", "images": [PNG]},
            ],
            id="parts-become-messages",
        ),
        pytest.param(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": f"data:image/jpeg;base64,{PNG}"}
                    ],
                }
            ],
            [{"role": "user", "content": "", "images": [PNG]}],
            id="image-url-as-string",
        ),
        pytest.param(
            [
                {
                    "role": "user",
                    "content": [
                        image(f"data:image/jpg;base64,{PNG}"),
                        image(f"data:image/webp;base64,{PNG}"),
                    ],
                }
            ],
            [
                {"role": "user", "content": "", "images": [PNG]},
                {"role": "user", "content": "", "images": [PNG]},
            ],
            id="jpg-and-webp",
        ),
        pytest.param(
            [{"role": "user", "content": [image(f"data:;base64,{PNG[:8]}\r\n{PNG[8:]}")]}],
            [{"role": "user", "content": "", "images": [PNG]}],
            id="bare-base64-line-breaks-dropped",
        ),
        pytest.param(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}}
                    ],
                }
            ],
            [{"role": "user", "content": "", "images": [WAV]}],
            id="input-audio-as-ollama-does",
        ),
        pytest.param(
            [{"role": "user", "content": []}],
            [{"role": "user", "content": ""}],
            id="empty-parts",
        ),
        pytest.param(
            [{"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]}],
            [{"role": "assistant", "content": "I can't."}],
            id="refusal-part-is-text",
        ),
        pytest.param(
            [{"role": "assistant", "content": None, "tool_calls": [CALL]}],
            [{"role": "assistant", "content": "", "tool_calls": [NATIVE_CALL]}],
            id="tool-call-arguments-parsed",
        ),
        pytest.param(
            [
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"type": "function", "function": {"name": "now", "arguments": ""}},
                        {"id": "c2", "function": {"name": "ping", "arguments": {"host": "a"}}},
                    ],
                }
            ],
            [
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {"function": {"index": 0, "name": "now", "arguments": {}}},
                        {
                            "id": "c2",
                            "function": {"index": 1, "name": "ping", "arguments": {"host": "a"}},
                        },
                    ],
                }
            ],
            id="tool-call-lenient-arguments",
        ),
        pytest.param(
            [{"role": "assistant", "content": "Paris.", "reasoning": "The user asks..."}],
            [{"role": "assistant", "content": "Paris.", "thinking": "The user asks..."}],
            id="reasoning-is-thinking",
        ),
        pytest.param(
            [
                {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                    "tool_calls": [CALL],
                },
            ],
            [
                {"role": "assistant", "content": "a"},
                {"role": "assistant", "content": "b", "tool_calls": [NATIVE_CALL]},
            ],
            id="tool-calls-on-last-part",
        ),
        pytest.param(
            [
                {"role": "assistant", "content": None, "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "call_abc12345", "content": "18C"},
            ],
            [
                {"role": "assistant", "content": "", "tool_calls": [NATIVE_CALL]},
                {
                    "role": "tool",
                    "content": "18C",
                    "tool_call_id": "call_abc12345",
                    "tool_name": "get_weather",
                },
            ],
            id="tool-name-looked-up",
        ),
        pytest.param(
            [{"role": "tool", "tool_call_id": "call_x", "name": "lookup", "content": "42"}],
            [{"role": "tool", "content": "42", "tool_call_id": "call_x", "tool_name": "lookup"}],
            id="tool-name-given",
        ),
        pytest.param(
            [{"role": "tool", "tool_call_id": "call_unknown", "content": "42"}],
            [{"role": "tool", "content": "42", "tool_call_id": "call_unknown"}],
            id="tool-name-unknown",
        ),
        pytest.param(
            [
                {"role": "assistant", "content": None, "tool_calls": [CALL]},
                {
                    "role": "tool",
                    "tool_call_id": "call_abc12345",
                    "content": [{"type": "text", "text": "18C"}],
                },
            ],
            [
                {"role": "assistant", "content": "", "tool_calls": [NATIVE_CALL]},
                {
                    "role": "tool",
                    "content": "18C",
                    "tool_call_id": "call_abc12345",
                    "tool_name": "get_weather",
                },
            ],
            id="tool-result-parts-keep-their-call",
        ),
    ],
)
def test_messages_mapping(messages: list[Any], native: list[dict[str, Any]]) -> None:
    assert messages_to_native(messages) == native


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ("hi", "messages[0]"),
        ({"content": "hi"}, "messages[0].role"),
        ({"role": "wizard", "content": "hi"}, "messages[0].role"),
        ({"role": "User", "content": "hi"}, "messages[0].role"),
        ({"role": "function", "content": "hi"}, "messages[0].role"),
        ({"role": 5, "content": "hi"}, "messages[0].role"),
        ({"role": "user"}, "messages[0].content"),
        ({"role": "user", "content": None}, "messages[0].content"),
        ({"role": "assistant", "content": None}, "messages[0].content"),
        ({"role": "user", "content": 5}, "messages[0].content"),
        ({"role": "user", "content": {"type": "text", "text": "hi"}}, "messages[0].content"),
        ({"role": "user", "content": ["hi"]}, "messages[0].content[0]"),
        (
            {"role": "user", "content": [{"type": "file", "file": {}}]},
            "messages[0].content[0].type",
        ),
        ({"role": "user", "content": [{"text": "hi"}]}, "messages[0].content[0].type"),
        ({"role": "user", "content": [{"type": "text", "text": 5}]}, "messages[0].content[0].text"),
        (
            {"role": "user", "content": [image("https://example.com/cat.png")]},
            "messages[0].content[0].image_url.url",
        ),
        (
            {"role": "user", "content": [image("http://10.0.0.1/cat.png")]},
            "messages[0].content[0].image_url.url",
        ),
        (
            {"role": "user", "content": [image(f"data:image/gif;base64,{PNG}")]},
            "messages[0].content[0].image_url.url",
        ),
        (
            {"role": "user", "content": [image("data:image/png;base64,not base64!")]},
            "messages[0].content[0].image_url.url",
        ),
        (
            {"role": "user", "content": [image("data:image/png;base64,QUJ")]},
            "messages[0].content[0].image_url.url",
        ),
        (
            {"role": "user", "content": [image("data:image/png;base64,")]},
            "messages[0].content[0].image_url.url",
        ),
        ({"role": "user", "content": [image(5)]}, "messages[0].content[0].image_url.url"),
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": 5}]},
            "messages[0].content[0].image_url",
        ),
        (
            {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "%%"}}]},
            "messages[0].content[0].input_audio.data",
        ),
        (
            {"role": "user", "content": [{"type": "input_audio", "input_audio": "x"}]},
            "messages[0].content[0].input_audio",
        ),
        ({"role": "user", "content": "hi", "tool_calls": [CALL]}, "messages[0].tool_calls"),
        ({"role": "assistant", "content": None, "tool_calls": "x"}, "messages[0].tool_calls"),
        ({"role": "assistant", "content": None, "tool_calls": ["x"]}, "messages[0].tool_calls[0]"),
        (
            {"role": "assistant", "content": None, "tool_calls": [{**CALL, "type": "custom"}]},
            "messages[0].tool_calls[0].type",
        ),
        (
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]},
            "messages[0].tool_calls[0].function",
        ),
        (
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": 5, "function": {"name": "f"}}],
            },
            "messages[0].tool_calls[0].id",
        ),
        (
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"function": {"arguments": "{}"}}],
            },
            "messages[0].tool_calls[0].function.name",
        ),
        (
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"function": {"name": "f", "arguments": "{bad"}}],
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"function": {"name": "f", "arguments": "[1, 2]"}}],
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"function": {"name": "f", "arguments": 5}}],
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        ({"role": "assistant", "content": "x", "reasoning": 5}, "messages[0].reasoning"),
        ({"role": "tool", "content": "x", "tool_call_id": 5}, "messages[0].tool_call_id"),
        ({"role": "tool", "content": "x", "name": 5}, "messages[0].name"),
    ],
)
def test_message_refusals_name_the_field(message: Any, param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        messages_to_native([message])
    assert caught.value.param == param


def test_http_image_refusal_explains_the_alternative() -> None:
    with pytest.raises(BadRequest, match="base64 data URL"):
        messages_to_native([{"role": "user", "content": [image("https://example.com/a.png")]}])


def test_refusal_points_at_the_right_message() -> None:
    with pytest.raises(BadRequest) as caught:
        messages_to_native([{"role": "user", "content": "ok"}, {"role": "user", "content": 1}])
    assert caught.value.param == "messages[1].content"
