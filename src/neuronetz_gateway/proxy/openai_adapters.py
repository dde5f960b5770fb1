"""Response adapters for the OpenAI surface: native output → OpenAI JSON or SSE frames."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import orjson

from neuronetz_gateway.translate import (
    ChatStreamTranslator,
    CompletionStreamTranslator,
    chat_response_from_native,
    completion_response_from_native,
    embeddings_response_from_native,
)


def _completion_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


class _SseAdapter:
    """Whole responses and SSE streams for one completion, through a stream translator."""

    media_type = "text/event-stream"
    passthrough = False
    prefix: str
    translator: type[ChatStreamTranslator] | type[CompletionStreamTranslator]
    to_whole: Callable[..., Mapping[str, Any]]

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.id = _completion_id(self.prefix)
        self.created = int(time.time())
        self._stream = self.translator(model, self.id, self.created, include_usage)

    def whole(self, native: dict[str, Any], raw: bytes) -> bytes:
        return orjson.dumps(
            type(self).to_whole(
                native, model=self.model, completion_id=self.id, created=self.created
            )
        )

    def feed(self, native: dict[str, Any], raw_line: bytes) -> list[bytes]:
        return self._stream.feed(native)

    def finish(self) -> list[bytes]:
        return self._stream.finish()

    def error_frame(self, message: str) -> bytes:
        return self._stream.error_frame(message)


class ChatAdapter(_SseAdapter):
    prefix = "chatcmpl"
    translator = ChatStreamTranslator
    to_whole = chat_response_from_native


class CompletionAdapter(_SseAdapter):
    prefix = "cmpl"
    translator = CompletionStreamTranslator
    to_whole = completion_response_from_native


class EmbeddingsAdapter:
    media_type = "application/json"
    passthrough = False

    def __init__(self, model: str, encoding_format: Literal["float", "base64"]) -> None:
        self.model = model
        self.encoding_format = encoding_format

    def whole(self, native: dict[str, Any], raw: bytes) -> bytes:
        return orjson.dumps(
            embeddings_response_from_native(
                native, model=self.model, encoding_format=self.encoding_format
            )
        )

    def feed(self, native: dict[str, Any], raw_line: bytes) -> list[bytes]:
        raise RuntimeError("embeddings are never streamed")

    def finish(self) -> list[bytes]:
        return []

    def error_frame(self, message: str) -> bytes:
        return b""
