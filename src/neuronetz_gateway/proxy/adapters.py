"""Response adapters for the native surface: upstream NDJSON passes through line by line."""

from __future__ import annotations

from typing import Any

import orjson


class NativeAdapter:
    """Forwards each validated upstream line as it arrives (no buffering)."""

    media_type = "application/x-ndjson"
    passthrough = True

    def whole(self, native: dict[str, Any], raw: bytes) -> bytes:
        return raw

    def feed(self, native: dict[str, Any], raw_line: bytes) -> list[bytes]:
        # The line was parsed as one JSON object, so it holds no raw newline: forwarding
        # it cannot forge a frame, whatever the model wrote.
        return [raw_line + b"\n"]

    def finish(self) -> list[bytes]:
        return []

    def error_frame(self, message: str) -> bytes:
        return orjson.dumps({"error": message}) + b"\n"


NATIVE = NativeAdapter()
