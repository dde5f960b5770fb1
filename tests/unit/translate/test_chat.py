from __future__ import annotations

from typing import Any

import pytest

from neuronetz_gateway.errors import BadRequest
from neuronetz_gateway.translate.chat import chat_request_to_native

CAP = 4096
MESSAGES = [{"role": "user", "content": "hi"}]
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": True,
    },
}
NATIVE_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
DEFAULT_OPTIONS = {"num_predict": CAP, "temperature": 1.0, "top_p": 1.0}


def translate(fields: dict[str, Any]) -> dict[str, Any]:
    body = {"model": "llama3.2", "messages": MESSAGES, **fields}
    return dict(chat_request_to_native(body, max_num_predict=CAP).body)


def test_minimal_request_is_bounded_and_not_streamed() -> None:
    request = chat_request_to_native(
        {"model": "llama3.2", "messages": MESSAGES}, max_num_predict=CAP
    )
    assert request.body == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": False,
        "options": DEFAULT_OPTIONS,
    }
    assert (request.model, request.stream, request.include_usage, request.num_predict) == (
        "llama3.2",
        False,
        False,
        CAP,
    )


@pytest.mark.parametrize(
    ("fields", "options"),
    [
        ({"max_tokens": 100}, {"num_predict": 100}),
        ({"max_completion_tokens": 200}, {"num_predict": 200}),
        ({"max_tokens": 100, "max_completion_tokens": 50}, {"num_predict": 50}),
        ({"max_tokens": 50, "max_completion_tokens": 100}, {"num_predict": 50}),
        ({"max_tokens": CAP}, {"num_predict": CAP}),
        ({"max_tokens": 100.0}, {"num_predict": 100}),
        ({"max_tokens": None}, {"num_predict": CAP}),
        ({"temperature": 0.2, "top_p": 0.5}, {"temperature": 0.2, "top_p": 0.5}),
        ({"temperature": 0}, {"temperature": 0.0}),
        ({"temperature": 2}, {"temperature": 2.0}),
        ({"seed": 42}, {"seed": 42}),
        ({"frequency_penalty": 0.5}, {"frequency_penalty": 0.5}),
        ({"presence_penalty": -1}, {"presence_penalty": -1.0}),
        ({"stop": "END"}, {"stop": ["END"]}),
        ({"stop": ["a", "b"]}, {"stop": ["a", "b"]}),
        ({"stop": ["", "x"]}, {"stop": ["x"]}),
        ({"stop": ""}, {}),
        ({"stop": []}, {}),
    ],
)
def test_options_mapping(fields: dict[str, Any], options: dict[str, Any]) -> None:
    assert translate(fields)["options"] == {**DEFAULT_OPTIONS, **options}


@pytest.mark.parametrize(
    ("fields", "native"),
    [
        ({"response_format": {"type": "text"}}, {}),
        ({"response_format": {"type": "json_object"}}, {"format": "json"}),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "strict": True, "schema": {"type": "object"}},
                }
            },
            {"format": {"type": "object"}},
        ),
        ({"reasoning_effort": "none"}, {"think": False}),
        ({"reasoning_effort": "minimal"}, {"think": "low"}),
        ({"reasoning_effort": "low"}, {"think": "low"}),
        ({"reasoning_effort": "medium"}, {"think": "medium"}),
        ({"reasoning_effort": "high"}, {"think": "high"}),
        ({"reasoning_effort": "max"}, {"think": "max"}),
        ({"reasoning_effort": "xhigh"}, {"think": "max"}),
        ({"reasoning_effort": "ultra"}, {"think": "max"}),
        ({"reasoning_effort": ""}, {}),
        ({"reasoning": {"effort": "low"}, "reasoning_effort": "high"}, {"think": "low"}),
        ({"reasoning": {"summary": "auto"}, "reasoning_effort": "medium"}, {"think": "medium"}),
        ({"logprobs": True}, {"logprobs": True}),
        ({"logprobs": True, "top_logprobs": 5}, {"logprobs": True, "top_logprobs": 5}),
        ({"logprobs": False}, {}),
        ({"tools": [TOOL]}, {"tools": [NATIVE_TOOL]}),
        ({"tools": [TOOL], "tool_choice": "auto"}, {"tools": [NATIVE_TOOL]}),
        ({"tools": [TOOL], "tool_choice": "none"}, {}),
        ({"tools": []}, {}),
        ({"stream": True}, {"stream": True}),
        ({"stream": False}, {}),
        # Accepted as harmless values of otherwise refused fields.
        ({"n": 1, "logit_bias": {}, "modalities": ["text"], "audio": None}, {}),
        ({"functions": [], "function_call": "auto", "prediction": None}, {}),
        # Ignored, documented in the chat module.
        ({"user": "u-1", "safety_identifier": "s", "parallel_tool_calls": False}, {}),
        ({"store": True, "metadata": {"k": "v"}, "service_tier": "flex"}, {}),
        ({"prompt_cache_key": "k", "prompt_cache_retention": "24h", "verbosity": "low"}, {}),
        ({"stream_options": {"include_obfuscation": False}}, {}),
        # Native-only fields never leak through the OpenAI surface.
        ({"options": {"num_predict": -1}, "keep_alive": 0, "think": True, "format": "json"}, {}),
    ],
)
def test_request_mapping(fields: dict[str, Any], native: dict[str, Any]) -> None:
    expected = {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": False,
        "options": DEFAULT_OPTIONS,
        **native,
    }
    assert translate(fields) == expected


@pytest.mark.parametrize(
    ("fields", "stream", "include_usage"),
    [
        ({}, False, False),
        ({"stream": None}, False, False),
        ({"stream": True}, True, False),
        ({"stream": True, "stream_options": {"include_usage": True}}, True, True),
        ({"stream": True, "stream_options": {"include_usage": False}}, True, False),
        ({"stream": False, "stream_options": {"include_usage": True}}, False, False),
    ],
)
def test_stream_flags(fields: dict[str, Any], stream: bool, include_usage: bool) -> None:
    request = chat_request_to_native(
        {"model": "m", "messages": MESSAGES, **fields}, max_num_predict=CAP
    )
    assert (request.stream, request.include_usage) == (stream, include_usage)
    assert request.body["stream"] is stream


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": None}, "model"),
        ({"model": ""}, "model"),
        ({"model": 5}, "model"),
        ({"messages": None}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": []}, "messages"),
        ({"n": 2}, "n"),
        ({"n": 0}, "n"),
        ({"n": "1"}, "n"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"logit_bias": [1]}, "logit_bias"),
        ({"audio": {"voice": "alloy", "format": "mp3"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"modalities": "text"}, "modalities"),
        ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"function_call": {"name": "f"}}, "function_call"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"moderation": {"mode": "block"}}, "moderation"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": "f"}}}, "tool_choice"),
        ({"tools": [TOOL], "tool_choice": "any"}, "tool_choice"),
        ({"max_tokens": CAP + 1}, "max_tokens"),
        ({"max_completion_tokens": CAP + 1}, "max_completion_tokens"),
        ({"max_tokens": 10, "max_completion_tokens": CAP + 1}, "max_completion_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_tokens": "100"}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": 10**400}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": float("inf")}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"frequency_penalty": 3}, "frequency_penalty"),
        ({"presence_penalty": "x"}, "presence_penalty"),
        ({"seed": 1.5}, "seed"),
        ({"seed": 2**63}, "seed"),
        ({"stop": 5}, "stop"),
        ({"stop": ["a", 1]}, "stop"),
        ({"stop": {"a": 1}}, "stop"),
        ({"response_format": "json"}, "response_format"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"response_format": {}}, "response_format.type"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema.schema"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "response_format.json_schema.schema",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": "x"}}},
            "response_format.json_schema.schema",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": "x"}},
            "response_format.json_schema",
        ),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"reasoning_effort": "HIGH"}, "reasoning_effort"),
        ({"reasoning_effort": 1}, "reasoning_effort"),
        ({"reasoning": {"effort": "turbo"}}, "reasoning.effort"),
        ({"reasoning": "high"}, "reasoning"),
        ({"logprobs": "yes"}, "logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": -1}, "top_logprobs"),
        ({"top_logprobs": 5}, "top_logprobs"),
        ({"stream": "yes"}, "stream"),
        ({"stream_options": "usage"}, "stream_options"),
        (
            {"stream": True, "stream_options": {"include_usage": "yes"}},
            "stream_options.include_usage",
        ),
        ({"tools": "get_weather"}, "tools"),
        ({"tools": ["get_weather"]}, "tools[0]"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0].type"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
        ({"tools": [{"type": "function", "function": "f"}]}, "tools[0].function"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]},
            "tools[0].function.parameters",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "description": 1}}]},
            "tools[0].function.description",
        ),
    ],
)
def test_refusals_name_the_field(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        translate(fields)
    assert caught.value.param == param
    assert caught.value.status == 400
    assert param.split("[")[0].split(".")[0] in caught.value.message


def test_output_cap_refusal_says_what_the_limit_is() -> None:
    with pytest.raises(BadRequest, match="exceeds this gateway's limit of 4096 tokens"):
        translate({"max_completion_tokens": 5000})


def test_translation_does_not_mutate_or_alias_the_client_body() -> None:
    body: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stop": ["x"],
    }
    native = chat_request_to_native(body, max_num_predict=CAP).body
    native["options"]["stop"] = ["changed"]
    assert body == {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stop": ["x"]}
