from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types import Completion

from neuronetz_gateway.errors import BadRequest
from neuronetz_gateway.translate.completions import completion_request_to_native
from neuronetz_gateway.translate.completions_response import (
    CompletionStreamTranslator,
    completion_response_from_native,
)
from neuronetz_gateway.translate.usage import TokenUsage

from .openai_sdk import sdk_client, sse_body

CAP = 2048
CREATED = 1761499281
DEFAULT_OPTIONS = {"num_predict": CAP, "temperature": 1.0, "top_p": 1.0}


def translate(fields: dict[str, Any]) -> dict[str, Any]:
    body = {"model": "codellama", "prompt": "def fib(n):", **fields}
    return dict(completion_request_to_native(body, max_num_predict=CAP).body)


@pytest.mark.parametrize(
    ("fields", "native"),
    [
        ({}, {}),
        ({"prompt": ["def fib(n):"]}, {}),
        ({"prompt": ""}, {"prompt": ""}),
        ({"suffix": "    return x"}, {"suffix": "    return x"}),
        ({"suffix": ""}, {}),
        ({"max_tokens": 16}, {"options": {**DEFAULT_OPTIONS, "num_predict": 16}}),
        (
            {"temperature": 0, "top_p": 0},
            {"options": {**DEFAULT_OPTIONS, "temperature": 0.0, "top_p": 0.0}},
        ),
        (
            {"seed": 7, "frequency_penalty": 0.1, "presence_penalty": 0.2},
            {
                "options": {
                    **DEFAULT_OPTIONS,
                    "seed": 7,
                    "frequency_penalty": 0.1,
                    "presence_penalty": 0.2,
                }
            },
        ),
        ({"stop": "\n\n"}, {"options": {**DEFAULT_OPTIONS, "stop": ["\n\n"]}}),
        ({"stop": ["\n", "#"]}, {"options": {**DEFAULT_OPTIONS, "stop": ["\n", "#"]}}),
        ({"logprobs": 3}, {"logprobs": True, "top_logprobs": 3}),
        ({"logprobs": 0}, {"logprobs": True, "top_logprobs": 0}),
        ({"logprobs": None}, {}),
        ({"stream": True}, {"stream": True}),
        ({"n": 1, "best_of": 1, "echo": False, "logit_bias": {}, "user": "u"}, {}),
    ],
)
def test_request_mapping(fields: dict[str, Any], native: dict[str, Any]) -> None:
    expected = {
        "model": "codellama",
        "prompt": "def fib(n):",
        "stream": False,
        "options": DEFAULT_OPTIONS,
        **native,
    }
    assert translate(fields) == expected


def test_stream_flags() -> None:
    request = completion_request_to_native(
        {"model": "m", "prompt": "p", "stream": True, "stream_options": {"include_usage": True}},
        max_num_predict=CAP,
    )
    assert (request.stream, request.include_usage, request.num_predict) == (True, True, CAP)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": None}, "model"),
        ({"prompt": None}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"prompt": ["a", "b"]}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": [[1, 2]]}, "prompt"),
        ({"suffix": 5}, "suffix"),
        ({"max_tokens": CAP + 1}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"stop": ["a", 1]}, "stop"),
        ({"stop": 1}, "stop"),
        ({"logprobs": True}, "logprobs"),
        ({"logprobs": 21}, "logprobs"),
        ({"n": 2}, "n"),
        ({"best_of": 3}, "best_of"),
        ({"echo": True}, "echo"),
        ({"echo": "yes"}, "echo"),
        ({"logit_bias": {"1": 5}}, "logit_bias"),
        ({"stream": 1}, "stream"),
    ],
)
def test_refusals_name_the_field(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        translate(fields)
    assert caught.value.param == param


def generate(response: str, **final: Any) -> dict[str, Any]:
    return {
        "model": "codellama",
        "created_at": "2025-10-26T17:21:21.196249Z",
        "response": response,
        "done": bool(final),
        **final,
    }


FINAL = {"done_reason": "stop", "prompt_eval_count": 5, "eval_count": 9, "context": [1, 2, 3]}


@pytest.mark.parametrize(
    ("native", "choice"),
    [
        (
            generate("    return n", **FINAL),
            {"text": "    return n", "index": 0, "finish_reason": "stop", "logprobs": None},
        ),
        (
            generate("    if", **{**FINAL, "done_reason": "length"}),
            {"text": "    if", "index": 0, "finish_reason": "length", "logprobs": None},
        ),
        (
            {**generate("4", **FINAL), "thinking": "2+2"},
            {
                "text": "4",
                "index": 0,
                "finish_reason": "stop",
                "logprobs": None,
                "reasoning": "2+2",
            },
        ),
        (
            {
                **generate("ab", **FINAL),
                "logprobs": [
                    {
                        "token": "a",
                        "logprob": -0.1,
                        "top_logprobs": [{"token": "a", "logprob": -0.1}],
                    },
                    {
                        "token": "b",
                        "logprob": -0.2,
                        "top_logprobs": [{"token": "c", "logprob": -2.0}],
                    },
                ],
            },
            {
                "text": "ab",
                "index": 0,
                "finish_reason": "stop",
                "logprobs": {
                    "tokens": ["a", "b"],
                    "token_logprobs": [-0.1, -0.2],
                    "top_logprobs": [{"a": -0.1}, {"c": -2.0}],
                    "text_offset": [0, 1],
                },
            },
        ),
    ],
)
def test_completion_response_from_native(native: dict[str, Any], choice: dict[str, Any]) -> None:
    body = completion_response_from_native(
        native, model="codellama", completion_id="cmpl-1", created=CREATED
    )
    assert body == {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": CREATED,
        "model": "codellama",
        "choices": [choice],
        "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
    }
    Completion.model_validate(body)


HEAD = (
    b'data: {"id":"cmpl-abc","object":"text_completion","created":1761499281,'
    b'"model":"codellama","choices":['
)


def test_realistic_stream_exact_frames() -> None:
    translator = CompletionStreamTranslator("codellama", "cmpl-abc", CREATED, include_usage=True)
    frames: list[bytes] = []
    for chunk in [generate("    if"), generate(" n < 2:"), generate(""), generate("", **FINAL)]:
        frames += translator.feed(chunk)
    assert translator.usage == TokenUsage(5, 9)
    frames += translator.finish()
    assert frames == [
        HEAD + b'{"text":"    if","index":0,"finish_reason":null,"logprobs":null}]}\n\n',
        HEAD + b'{"text":" n < 2:","index":0,"finish_reason":null,"logprobs":null}]}\n\n',
        HEAD + b'{"text":"","index":0,"finish_reason":"stop","logprobs":null}]}\n\n',
        HEAD + b'],"usage":{"prompt_tokens":5,"completion_tokens":9,"total_tokens":14}}\n\n',
        b"data: [DONE]\n\n",
    ]
    # Ollama repeats an all-zero usage on every chunk; only the last chunk has one here.
    assert [b'"usage"' in frame for frame in frames] == [False, False, False, True, False]

    client = sdk_client(200, sse_body(frames), "text/event-stream")
    chunks = list(client.completions.create(model="codellama", prompt="def fib(n):", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "    if n < 2:"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 9


def test_stream_without_usage_and_logprob_offsets_continue() -> None:
    translator = CompletionStreamTranslator("m", "cmpl-1", CREATED, include_usage=False)
    frames = translator.feed({**generate("ab"), "logprobs": [{"token": "a"}, {"token": "b"}]})
    frames += translator.feed({**generate("c"), "logprobs": [{"token": "c", "logprob": -1}]})
    frames += translator.feed(generate("", **FINAL)) + translator.finish()
    payloads = [orjson.loads(f.removeprefix(b"data: ")) for f in frames[:-1]]
    assert [p["choices"][0]["logprobs"] for p in payloads[:2]] == [
        {
            "tokens": ["a", "b"],
            "token_logprobs": [0.0, 0.0],
            "top_logprobs": [{}, {}],
            "text_offset": [0, 1],
        },
        {"tokens": ["c"], "token_logprobs": [-1.0], "top_logprobs": [{}], "text_offset": [2]},
    ]
    assert all("usage" not in p for p in payloads)
    assert frames[-1] == b"data: [DONE]\n\n"


def test_error_frame_ends_the_stream() -> None:
    translator = CompletionStreamTranslator("m", "cmpl-1", CREATED, include_usage=True)
    translator.feed(generate("x"))
    assert translator.feed({"error": "CUDA out of memory"})[0].startswith(b'data: {"error":')
    assert translator.failed
    assert translator.finish() == []


@pytest.mark.parametrize("text", ['a"b\\c', "line\nbreak", "data: [DONE]\n\n", "\u2028é😀\x00"])
def test_plain_text_frames_are_the_bytes_of_the_whole_chunk(text: str) -> None:
    model = 'we"ird\\model\u2028é'
    translator = CompletionStreamTranslator(model, 'cmpl-"x', CREATED, include_usage=False)
    assert translator.feed(generate(text)) == [
        b"data: "
        + orjson.dumps(
            {
                "id": 'cmpl-"x',
                "object": "text_completion",
                "created": CREATED,
                "model": model,
                "choices": [{"text": text, "index": 0, "finish_reason": None, "logprobs": None}],
            }
        )
        + b"\n\n"
    ]
    assert translator.feed({**generate("x"), "thinking": 3}) == [  # odd field: general path
        b"data: "
        + orjson.dumps(
            {
                "id": 'cmpl-"x',
                "object": "text_completion",
                "created": CREATED,
                "model": model,
                "choices": [{"text": "x", "index": 0, "finish_reason": None, "logprobs": None}],
            }
        )
        + b"\n\n"
    ]
