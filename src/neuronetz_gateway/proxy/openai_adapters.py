"""Response adapters for the OpenAI surface: native output → OpenAI JSON or SSE frames."""

from __future__ import annotations

import os
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


class _RandomHex:
    """Hex strings from the OS's CSPRNG, read 256 at a time (one system call per 256
    answers, not one each). Unpredictable like ``secrets.token_hex``: an id says nothing
    about the answers other clients got before or after it."""

    def __init__(self, nbytes: int, batch: int = 256) -> None:
        self._size = nbytes * 2
        self._batch = batch
        self._hex = ""
        self._at = 0

    def next(self) -> str:
        at = self._at
        if at >= len(self._hex):
            self._hex = os.urandom(self._batch * self._size // 2).hex()
            at = 0
        self._at = at + self._size
        return self._hex[at : at + self._size]


_ids = _RandomHex(12)


def _completion_id(prefix: str) -> str:
    return f"{prefix}-{_ids.next()}"


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
        self._include_usage = include_usage
        self._translator: ChatStreamTranslator | CompletionStreamTranslator | None = None

    @property
    def _stream(self) -> ChatStreamTranslator | CompletionStreamTranslator:
        # Made on first use: a whole answer never needs one.
        if self._translator is None:
            self._translator = self.translator(
                self.model, self.id, self.created, self._include_usage
            )
        return self._translator

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
