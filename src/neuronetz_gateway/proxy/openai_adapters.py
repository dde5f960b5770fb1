"""Response adapters for the OpenAI surface: native output → OpenAI JSON or SSE frames."""

from __future__ import annotations

import secrets
import time
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


class ChatAdapter:
    media_type = "text/event-stream"

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.id = _completion_id("chatcmpl")
        self.created = int(time.time())
        self._stream = ChatStreamTranslator(model, self.id, self.created, include_usage)

    def whole(self, native: dict[str, Any], raw: bytes) -> bytes:
        return orjson.dumps(
            chat_response_from_native(
                native, model=self.model, completion_id=self.id, created=self.created
            )
        )

    def feed(self, native: dict[str, Any], raw_line: bytes) -> list[bytes]:
        return self._stream.feed(native)

    def finish(self) -> list[bytes]:
        return self._stream.finish()

    def error_frame(self, message: str) -> bytes:
        return self._stream.error_frame(message)


class CompletionAdapter:
    media_type = "text/event-stream"

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.id = _completion_id("cmpl")
        self.created = int(time.time())
        self._stream = CompletionStreamTranslator(model, self.id, self.created, include_usage)

    def whole(self, native: dict[str, Any], raw: bytes) -> bytes:
        return orjson.dumps(
            completion_response_from_native(
                native, model=self.model, completion_id=self.id, created=self.created
            )
        )

    def feed(self, native: dict[str, Any], raw_line: bytes) -> list[bytes]:
        return self._stream.feed(native)

    def finish(self) -> list[bytes]:
        return self._stream.finish()

    def error_frame(self, message: str) -> bytes:
        return self._stream.error_frame(message)


class EmbeddingsAdapter:
    media_type = "application/json"

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
