"""Ollama ``/api/chat`` responses → OpenAI chat completions and chunks (reference §3.3).

Thinking goes to ``reasoning`` (as Ollama does, not ``reasoning_content``); tool-call
arguments become JSON strings; ``usage`` is always present on a non-streamed response.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict

import orjson

from neuronetz_gateway.translate.logprobs import TokenLogprob, chat_logprobs
from neuronetz_gateway.translate.sse import StreamTranslator, sse_frame, sse_frame_head
from neuronetz_gateway.translate.usage import UsageBody, usage_body, usage_from_native

FinishReason = Literal["stop", "length", "tool_calls"]

_ID_ALPHABET = string.ascii_lowercase + string.digits


class FunctionCall(TypedDict):
    name: str
    arguments: str


class ToolCall(TypedDict):
    id: str
    type: Literal["function"]
    function: FunctionCall


class ToolCallDelta(ToolCall):
    index: int


class ChoiceLogprobs(TypedDict):
    content: list[TokenLogprob]


class ChatMessage(TypedDict):
    role: Literal["assistant"]
    content: str
    reasoning: NotRequired[str]
    tool_calls: NotRequired[list[ToolCall]]


class ChatChoice(TypedDict):
    index: int
    message: ChatMessage
    finish_reason: FinishReason
    logprobs: ChoiceLogprobs | None


class ChatCompletion(TypedDict):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: UsageBody


class ChatDelta(TypedDict, total=False):
    role: Literal["assistant"]
    content: str
    reasoning: str
    tool_calls: list[ToolCallDelta]


class ChatChunkChoice(TypedDict):
    index: int
    delta: ChatDelta
    finish_reason: FinishReason | None
    logprobs: ChoiceLogprobs | None


class ChatCompletionChunk(TypedDict):
    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: NotRequired[UsageBody]


def new_tool_call_id() -> str:
    """``call_`` + 8 lowercase alphanumerics, the shape of Ollama's own ids."""
    return "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


def finish_reason(done_reason: object, *, tool_calls: bool) -> FinishReason:
    """``tool_calls`` whenever the answer called a tool (as Ollama does), else ``length``
    or ``stop``; Ollama's ``load``/``unload``/empty reasons are all a plain stop."""
    if tool_calls:
        return "tool_calls"
    return "length" if done_reason == "length" else "stop"


def _message(native: Mapping[str, Any]) -> Mapping[str, Any]:
    message = native.get("message")
    return message if isinstance(message, dict) else {}


def _text(message: Mapping[str, Any], key: str) -> str:
    value = message.get(key)
    return value if isinstance(value, str) else ""


def _tool_calls(message: Mapping[str, Any]) -> list[ToolCall]:
    raw_calls = message.get("tool_calls")
    calls: list[ToolCall] = []
    for raw in raw_calls if isinstance(raw_calls, list) else []:
        function = raw.get("function") if isinstance(raw, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            continue
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments if arguments is not None else {}).decode()
        call_id = raw.get("id")
        calls.append(
            {
                "id": call_id if isinstance(call_id, str) and call_id else new_tool_call_id(),
                "type": "function",
                "function": {"name": function["name"], "arguments": arguments},
            }
        )
    return calls


def _logprobs(native: Mapping[str, Any]) -> ChoiceLogprobs | None:
    content = chat_logprobs(native.get("logprobs"))
    return {"content": content} if content else None


def chat_response_from_native(
    native: Mapping[str, Any], *, model: str, completion_id: str, created: int
) -> ChatCompletion:
    """A non-streamed ``/api/chat`` response as a ``chat.completion``.

    ``model`` is echoed as the client asked for it, not as the backend names it.
    """
    native_message = _message(native)
    message: ChatMessage = {"role": "assistant", "content": _text(native_message, "content")}
    thinking = _text(native_message, "thinking")
    if thinking:
        message["reasoning"] = thinking
    tool_calls = _tool_calls(native_message)
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(
                    native.get("done_reason"), tool_calls=bool(tool_calls)
                ),
                "logprobs": _logprobs(native),
            }
        ],
        "usage": usage_body(usage_from_native(native)),
    }


_PLAIN_TAIL = b'},"finish_reason":null,"logprobs":null}]}\n\n'


class ChatStreamTranslator(StreamTranslator):
    """Native ``/api/chat`` NDJSON chunks → ``chat.completion.chunk`` SSE frames.

    The stream opens with a role chunk; a native chunk carrying thinking and content is
    split into a ``reasoning`` chunk and a content chunk; each tool call arrives whole,
    with an ``index`` counted across the stream (the SDK merges deltas by index, so two
    calls must never share one); the final native frame yields the finish chunk.
    """

    def __init__(self, model: str, completion_id: str, created: int, include_usage: bool) -> None:
        super().__init__(model, completion_id, created, include_usage)
        self._tool_call_count = 0
        self._content_head = sse_frame_head(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
            },
            b'"choices":[{"index":0,"delta":{"content":',
        )

    def _chunk(
        self,
        delta: ChatDelta,
        finish: FinishReason | None = None,
        logprobs: ChoiceLogprobs | None = None,
    ) -> bytes:
        chunk: ChatCompletionChunk = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": logprobs}
            ],
        }
        return sse_frame(chunk)

    def _opening_frames(self) -> list[bytes]:
        return [self._chunk({"role": "assistant", "content": ""})]

    def _content_frames(self, native_chunk: Mapping[str, Any]) -> list[bytes]:
        message = native_chunk.get("message")
        if (
            isinstance(message, dict)
            and not message.get("thinking")
            and not message.get("tool_calls")
            and not native_chunk.get("logprobs")
        ):
            # Almost every chunk: plain text. Same bytes as ``_chunk({"content": ...})``.
            content = message.get("content")
            if isinstance(content, str):
                if not content:
                    return []
                return [b"".join((self._content_head, orjson.dumps(content), _PLAIN_TAIL))]
        message = _message(native_chunk)
        deltas: list[ChatDelta] = []
        thinking = _text(message, "thinking")
        if thinking:
            deltas.append({"reasoning": thinking})
        content = _text(message, "content")
        calls = [
            ToolCallDelta(**call, index=self._tool_call_count + offset)
            for offset, call in enumerate(_tool_calls(message))
        ]
        self._tool_call_count += len(calls)
        if content or calls:
            delta: ChatDelta = {}
            if content:
                delta["content"] = content
            if calls:
                delta["tool_calls"] = calls
            deltas.append(delta)
        logprobs = _logprobs(native_chunk)
        return [
            self._chunk(delta, logprobs=logprobs if position == len(deltas) - 1 else None)
            for position, delta in enumerate(deltas)
        ]

    def _finish_frame(self, done_reason: object) -> bytes:
        return self._chunk(
            {}, finish=finish_reason(done_reason, tool_calls=self._tool_call_count > 0)
        )

    def _usage_chunk(self) -> ChatCompletionChunk:
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage_body(self.usage),
        }
