"""Reading upstream NDJSON line by line, with a bound on line length."""

from __future__ import annotations

from typing import Protocol


class ByteStream(Protocol):
    async def readany(self) -> bytes: ...


class TruncatedStream(Exception):
    """The upstream stream was cut, broke its framing, or a line was too long."""


class LineReader:
    def __init__(self, content: ByteStream, max_line: int) -> None:
        self._content = content
        self._max = max_line
        self._buf = bytearray()
        self._pos = 0

    async def next_line(self) -> bytes | None:
        """The next non-empty line without its newline; None at a clean end of stream."""
        while True:
            idx = self._buf.find(b"\n", self._pos)
            if idx >= 0:
                line = bytes(self._buf[self._pos : idx])
                self._pos = idx + 1
                if self._pos > 65536:
                    del self._buf[: self._pos]
                    self._pos = 0
                if line.strip():
                    return line
                continue
            if len(self._buf) - self._pos > self._max:
                raise TruncatedStream("line too long")
            chunk = await self._content.readany()
            if not chunk:
                rest = bytes(self._buf[self._pos :])
                self._buf.clear()
                self._pos = 0
                # A last line without a newline is returned; if the stream was cut in the
                # middle of it, it will not parse as JSON and the caller says so.
                return rest if rest.strip() else None
            self._buf += chunk
