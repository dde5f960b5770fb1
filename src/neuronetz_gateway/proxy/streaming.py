"""Reading upstream NDJSON line by line, with a bound on line length.

The reader hands out every complete line of one upstream read at once, so the caller
can answer a whole read with one write to its client instead of one write per line.
"""

from __future__ import annotations

from typing import Protocol


class ByteStream(Protocol):
    async def readany(self) -> bytes: ...


class TruncatedStream(Exception):
    """The upstream stream was cut, broke its framing, or a line was too long."""


class LineReader:
    __slots__ = ("_content", "_max", "_partial", "_partial_len", "_ready", "_too_long")

    def __init__(self, content: ByteStream, max_line: int) -> None:
        self._content = content
        self._max = max_line
        self._partial: list[bytes] = []  # the pieces of a line whose newline has not come
        self._partial_len = 0
        self._ready: list[bytes] = []  # complete lines not handed out yet
        self._too_long = False  # a complete line past the bound came in: refuse it next

    async def next_line(self) -> bytes | None:
        """The next non-empty line without its newline; None at a clean end of stream."""
        if not self._ready:
            self._ready = await self.next_lines()
            if not self._ready:
                return None
        return self._ready.pop(0)

    def buffered_lines(self) -> list[bytes]:
        """The complete lines already read and not handed out yet, without waiting."""
        lines, self._ready = self._ready, []
        return lines

    async def next_lines(self) -> list[bytes]:
        """Every complete non-empty line available, without their newlines, waiting for
        at least one; an empty list at a clean end of stream."""
        if self._ready:
            return self.buffered_lines()
        while True:
            if self._partial_len > self._max or self._too_long:
                raise TruncatedStream("line too long")
            chunk = await self._content.readany()
            if not chunk:
                rest = b"".join(self._partial)
                self._partial.clear()
                self._partial_len = 0
                # A last line without a newline is returned; if the stream was cut in the
                # middle of it, it will not parse as JSON and the caller says so.
                return [rest] if rest and not rest.isspace() else []
            lines = self._split(chunk)
            if lines:
                return lines

    def _split(self, chunk: bytes) -> list[bytes]:
        if chunk.rfind(b"\n") < 0:
            self._partial.append(chunk)
            self._partial_len += len(chunk)
            return []
        if self._partial:
            self._partial.append(chunk)
            chunk = b"".join(self._partial)
            self._partial.clear()
            self._partial_len = 0
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if tail:
            self._partial.append(tail)
            self._partial_len = len(tail)
        if len(chunk) > self._max:
            for index, line in enumerate(lines):
                if len(line) > self._max:
                    # The lines before it are handed out; the next call refuses the stream.
                    del lines[index:]
                    self._too_long = True
                    break
        # Whitespace-only lines (a blank line, a stray CR) carry no frame.
        return [line for line in lines if line and not line.isspace()]
