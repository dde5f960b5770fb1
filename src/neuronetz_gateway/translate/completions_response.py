"""Ollama ``/api/generate`` responses → OpenAI ``text_completion`` objects and chunks.

Thinking, which ``/api/generate`` returns apart from the text, is passed on as the
choice's ``reasoning`` (as chat does) rather than dropped while still being billed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict

import orjson

from neuronetz_gateway.translate.logprobs import CompletionLogprobs, completion_logprobs
from neuronetz_gateway.translate.sse import StreamTranslator, sse_frame, sse_frame_head
from neuronetz_gateway.translate.usage import UsageBody, usage_body, usage_from_native

CompletionFinishReason = Literal["stop", "length"]


class CompletionChoice(TypedDict):
    text: str
    index: int
    finish_reason: CompletionFinishReason | None
    logprobs: CompletionLogprobs | None
    reasoning: NotRequired[str]


class TextCompletion(TypedDict):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: NotRequired[UsageBody]


def _text(native: Mapping[str, Any], key: str) -> str:
    value = native.get(key)
    return value if isinstance(value, str) else ""


def _finish_reason(done_reason: object) -> CompletionFinishReason:
    return "length" if done_reason == "length" else "stop"


def _choice(
    native: Mapping[str, Any], finish: CompletionFinishReason | None, text_offset: int = 0
) -> CompletionChoice:
    choice: CompletionChoice = {
        "text": _text(native, "response"),
        "index": 0,
        "finish_reason": finish,
        "logprobs": None,
    }
    if native.get("logprobs"):
        choice["logprobs"] = completion_logprobs(native["logprobs"], text_offset=text_offset)
    thinking = _text(native, "thinking")
    if thinking:
        choice["reasoning"] = thinking
    return choice


def completion_response_from_native(
    native: Mapping[str, Any], *, model: str, completion_id: str, created: int
) -> TextCompletion:
    """A non-streamed ``/api/generate`` response as a ``text_completion``."""
    return {
        "id": completion_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [_choice(native, _finish_reason(native.get("done_reason")))],
        "usage": usage_body(usage_from_native(native)),
    }


_PLAIN_TAIL = b',"index":0,"finish_reason":null,"logprobs":null}]}\n\n'


class CompletionStreamTranslator(StreamTranslator):
    """Native ``/api/generate`` NDJSON chunks → ``text_completion`` SSE frames.

    One frame per native chunk with text (or thinking), then a finish frame with empty
    text and the ``finish_reason``; usage only in the final ``choices: []`` chunk.
    """

    def __init__(self, model: str, completion_id: str, created: int, include_usage: bool) -> None:
        super().__init__(model, completion_id, created, include_usage)
        self._text_offset = 0
        self._text_head = sse_frame_head(
            {"id": completion_id, "object": "text_completion", "created": created, "model": model},
            b'"choices":[{"text":',
        )

    def _chunk(self, choices: list[CompletionChoice]) -> TextCompletion:
        return {
            "id": self.completion_id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    def _content_frames(self, native_chunk: Mapping[str, Any]) -> list[bytes]:
        text = native_chunk.get("response")
        if (
            isinstance(text, str)
            and not native_chunk.get("thinking")
            and not native_chunk.get("logprobs")
        ):
            # Almost every chunk: plain text. Same bytes as ``_chunk([_choice(...)])``.
            if not text:
                return []
            return [b"".join((self._text_head, orjson.dumps(text), _PLAIN_TAIL))]
        choice = _choice(native_chunk, None, self._text_offset)
        if not (choice["text"] or choice.get("reasoning") or choice["logprobs"]):
            return []
        if choice["logprobs"] is not None:
            self._text_offset += sum(len(token) for token in choice["logprobs"]["tokens"])
        return [sse_frame(self._chunk([choice]))]

    def _finish_frame(self, done_reason: object) -> bytes:
        choice: CompletionChoice = {
            "text": "",
            "index": 0,
            "finish_reason": _finish_reason(done_reason),
            "logprobs": None,
        }
        return sse_frame(self._chunk([choice]))

    def _usage_chunk(self) -> TextCompletion:
        return {**self._chunk([]), "usage": usage_body(self.usage)}
