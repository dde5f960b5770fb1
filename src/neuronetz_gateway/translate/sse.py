"""Server-sent events for the ``/v1`` streams, and the life cycle both streams share.

Frames are ``data: <compact json>\\n\\n`` with no ``event:`` lines, ended by
``data: [DONE]\\n\\n`` — or by an error frame, after which nothing follows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import orjson

from neuronetz_gateway.translate.error_body import OpenAIError
from neuronetz_gateway.translate.usage import TokenUsage, usage_from_native

DONE_FRAME = b"data: [DONE]\n\n"

# Ollama's own error text never reaches the client (security invariant 4).
UPSTREAM_FAILED = "the backend failed while generating the response"


def sse_frame(payload: Mapping[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def sse_frame_head(fields: Mapping[str, Any], rest: bytes) -> bytes:
    """``data: {<fields>,<rest>``: the constant start of every frame of one stream, so
    a frame costs one ``orjson.dumps`` of its only changing value and a join."""
    return b"data: " + orjson.dumps(fields)[:-1] + b"," + rest


def sse_error_frame(message: str, type_: str = "api_error", code: str | None = None) -> bytes:
    """An in-stream error, which the ``openai`` SDK raises as ``APIError``."""
    error: OpenAIError = {"message": message, "type": type_, "param": None, "code": code}
    return sse_frame({"error": error})


class StreamTranslator(ABC):
    """Turns native NDJSON chunks (parsed to dicts) into SSE frames, one chunk at a time.

    Contract for the caller: ``feed`` every native chunk in order, then either
    ``finish()`` when the upstream ended, or ``error_frame()`` when it failed after the
    first byte was sent. ``finish`` closes the stream with ``[DONE]``; ``error_frame``
    closes it without, so no client mistakes a failed answer for a complete one (Ollama's
    layer turns such failures into an empty delta). Once closed, both return nothing.
    A native ``{"error": ...}`` line fed in closes the stream with a generic error frame.

    ``usage`` holds the counts of the final native frame (zeros until it arrives),
    ``done`` tells whether that frame arrived, ``failed`` whether an error frame was sent.
    """

    def __init__(self, model: str, completion_id: str, created: int, include_usage: bool) -> None:
        self.model = model
        self.completion_id = completion_id
        self.created = created
        self.include_usage = include_usage
        self.usage = TokenUsage(0, 0)
        self.done = False
        self.failed = False
        self._started = False
        self._finish_sent = False
        self._closed = False

    def feed(self, native_chunk: Mapping[str, Any]) -> list[bytes]:
        if self._closed or self.done:
            return []
        if native_chunk.get("error") is not None:
            return [self.error_frame(UPSTREAM_FAILED, code="upstream_error")]
        frames = self._content_frames(native_chunk)
        if not self._started:
            frames[:0] = self._start()
        if native_chunk.get("done") is True:
            self.done = True
            self.usage = usage_from_native(native_chunk)
            frames.append(self._finish(native_chunk.get("done_reason")))
        return frames

    def finish(self) -> list[bytes]:
        if self._closed:
            return []
        frames = self._start()
        if not self._finish_sent:
            frames.append(self._finish(None))
        if self.include_usage:
            frames.append(sse_frame(self._usage_chunk()))
        frames.append(DONE_FRAME)
        self._closed = True
        return frames

    def error_frame(self, message: str, type_: str = "api_error", code: str | None = None) -> bytes:
        self._closed = True
        self.failed = True
        return sse_error_frame(message, type_, code)

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        return self._opening_frames()

    def _finish(self, done_reason: object) -> bytes:
        self._finish_sent = True
        return self._finish_frame(done_reason)

    def _opening_frames(self) -> list[bytes]:
        return []

    @abstractmethod
    def _content_frames(self, native_chunk: Mapping[str, Any]) -> list[bytes]: ...

    @abstractmethod
    def _finish_frame(self, done_reason: object) -> bytes: ...

    @abstractmethod
    def _usage_chunk(self) -> Mapping[str, Any]: ...
