"""An Ollama stand-in that answers model calls with exactly the bytes a test scripts:
cut lines, broken UTF-8, endless lines, frames after the end. ``/api/tags`` lists one
model so discovery routes to it. Raw asyncio, no HTTP library to tidy the bytes up."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import orjson

TAGS = orjson.dumps({"models": [{"name": "llama3.2:latest", "model": "llama3.2:latest"}]})


@dataclass
class Script:
    """What a model call gets: ``parts`` written one by one (``pause_s`` apart) as a
    close-delimited body, or as HTTP chunks when ``chunked``; then the connection closes
    (for ``chunked``, without the last-chunk marker unless ``finish``)."""

    parts: list[bytes] = field(default_factory=list)
    chunked: bool = False
    finish: bool = False
    pause_s: float = 0.0


class ScriptedUpstream:
    def __init__(self) -> None:
        self.script = Script()
        self.calls = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            if head.startswith(b"GET /api/tags") or head.startswith(b"GET /api/ps"):
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + b"Content-Length: " + str(len(TAGS)).encode() + b"\r\n\r\n" + TAGS
                )  # fmt: skip
                await writer.drain()
                return
            self.calls += 1
            script = self.script
            framing = b"Transfer-Encoding: chunked\r\n" if script.chunked else b""
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n"
                + framing + b"\r\n"
            )  # fmt: skip
            for part in script.parts:
                if script.chunked:
                    writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                else:
                    writer.write(part)
                await writer.drain()
                if script.pause_s:
                    await asyncio.sleep(script.pause_s)
            if script.chunked and script.finish:
                writer.write(b"0\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def start(self) -> ScriptedUpstream:
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=serve, daemon=True, name="scripted-upstream").start()
        assert ready.wait(10)
        return self

    def stop(self) -> None:
        def close() -> None:
            if self._server is not None:
                self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(close)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def scripted_upstream() -> Iterator[ScriptedUpstream]:
    upstream = ScriptedUpstream().start()
    try:
        yield upstream
    finally:
        upstream.stop()
