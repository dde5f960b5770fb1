"""Lean ASGI responses for proxied traffic.

``StreamResponse`` watches for the client's disconnect while it streams, so a client
that goes away cancels the upstream request at once (Starlette's own streaming
response notices only at the next write, which may be a long way off).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import TypeVar

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from neuronetz_gateway.server.protocol import DISCONNECT_SIGNAL, DisconnectSignal

T = TypeVar("T")


async def wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class ClientGone(Exception):
    """The client disconnected before the answer was ready."""


async def unless_disconnected(scope: Scope, receive: Receive, work: Awaitable[T]) -> T:
    """Run ``work``; if the client disconnects first, cancel it and raise ``ClientGone``.

    ``work`` runs in the calling task. The gateway's server protocol signals a lost
    connection directly (``DisconnectSignal`` in the scope); under another server, one
    helper task watches ``receive``."""
    current = asyncio.current_task()
    assert current is not None
    gone = False
    finished = False

    def on_disconnect() -> None:
        nonlocal gone
        if finished:  # a late callback must not cancel what the task does next
            return
        gone = True
        current.cancel()

    signal: DisconnectSignal | None = scope.get(DISCONNECT_SIGNAL)
    watch: asyncio.Future[None] | None = None
    if signal is not None:
        if not signal.add(on_disconnect):
            raise ClientGone()
    else:
        watch = asyncio.ensure_future(wait_for_disconnect(receive))

        def on_watch(task: asyncio.Future[None]) -> None:
            if not task.cancelled() and task.exception() is None:
                on_disconnect()

        watch.add_done_callback(on_watch)
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            current.uncancel()
            raise ClientGone() from None
        raise
    finally:
        finished = True
        if signal is not None:
            signal.discard(on_disconnect)
        elif watch is not None:
            watch.cancel()


class StreamResponse(Response):
    def __init__(
        self,
        chunks: AsyncGenerator[bytes, None],
        *,
        media_type: str,
        headers: dict[str, str],
        on_first_byte: Callable[[], None] | None = None,
        after: list[asyncio.Future[None]] | None = None,
    ) -> None:
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.body = b""
        self._chunks = chunks
        self._on_first_byte = on_first_byte
        # Work the stream started and the response waits for after its last write.
        self._after = after if after is not None else []
        self.raw_headers = [
            (b"content-type", media_type.encode("latin-1")),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The chunks are pumped in the calling task, cancelled the moment the client
        # leaves (``unless_disconnected``); the generator then closes and settles.
        try:
            await unless_disconnected(scope, receive, self._pump(send))
        except (ClientGone, OSError):
            pass
        finally:
            await self._chunks.aclose()
            for pending in self._after:
                await pending

    async def _pump(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        first = True
        async for chunk in self._chunks:
            if first and self._on_first_byte is not None:
                self._on_first_byte()
                first = False
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class JsonResponse(Response):
    """A JSON body with its headers encoded once, directly (Starlette's ``Response``
    normalises a header mapping on every construction). ``headers`` must not carry
    Content-Type or Content-Length."""

    media_type = "application/json"

    def __init__(self, body: bytes, status: int, headers: Mapping[str, str] | None = None) -> None:
        self.status_code = status
        self.body = body
        self.background = None
        raw = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("latin-1")),
        ]
        if headers:
            raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.raw_headers = raw


def json_response(body: bytes, status: int, headers: Mapping[str, str]) -> Response:
    return JsonResponse(body, status, headers)
