"""Lean ASGI responses for proxied traffic.

``StreamResponse`` watches for the client's disconnect while it streams, so a client
that goes away cancels the upstream request at once (Starlette's own streaming
response notices only at the next write, which may be a long way off).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

T = TypeVar("T")


async def wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class ClientGone(Exception):
    """The client disconnected before the answer was ready."""


async def unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """Run ``work``; if the client disconnects first, cancel it and raise ``ClientGone``.

    ``work`` runs in the calling task (one helper task watches the connection), so a
    request pays for one task, not two."""
    current = asyncio.current_task()
    assert current is not None
    watch = asyncio.ensure_future(wait_for_disconnect(receive))
    gone = False

    def on_disconnect(task: asyncio.Future[None]) -> None:
        nonlocal gone
        if not task.cancelled() and task.exception() is None:
            gone = True
            current.cancel()

    watch.add_done_callback(on_disconnect)
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            current.uncancel()
            raise ClientGone() from None
        raise
    finally:
        watch.remove_done_callback(on_disconnect)
        watch.cancel()


class StreamResponse(Response):
    def __init__(
        self,
        chunks: AsyncGenerator[bytes, None],
        *,
        media_type: str,
        headers: dict[str, str],
        on_first_byte: Callable[[], None] | None = None,
    ) -> None:
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.body = b""
        self._chunks = chunks
        self._on_first_byte = on_first_byte
        self.raw_headers = [
            (b"content-type", media_type.encode("latin-1")),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The chunks are pumped in the calling task; one helper task watches the
        # connection and cancels the pump the moment the client leaves.
        current = asyncio.current_task()
        assert current is not None
        watch = asyncio.ensure_future(wait_for_disconnect(receive))
        pumping = True
        gone = False

        def on_disconnect(task: asyncio.Future[None]) -> None:
            nonlocal gone
            # A callback already scheduled when the pump ends must not cancel what follows.
            if pumping and not task.cancelled() and task.exception() is None:
                gone = True
                current.cancel()

        watch.add_done_callback(on_disconnect)
        try:
            try:
                await self._pump(send)
            finally:
                pumping = False
                watch.remove_done_callback(on_disconnect)
                watch.cancel()
                await self._chunks.aclose()  # the upstream is closed and settled by now
        except asyncio.CancelledError:
            if not gone:
                raise
            current.uncancel()
        except OSError:
            pass

    async def _pump(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        first = True
        async for chunk in self._chunks:
            if first and self._on_first_byte is not None:
                self._on_first_byte()
                first = False
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def json_response(body: bytes, status: int, headers: dict[str, Any]) -> Response:
    return Response(
        content=body, status_code=status, headers=headers, media_type="application/json"
    )
