"""uvicorn's httptools protocol with deadlines for the request head and the request body.

uvicorn bounds only the idle time *between* requests (``timeout_keep_alive``), and only
once a first response was sent. A client may open a connection and send nothing, send a
header line every few seconds, send ``\\r\\n`` between requests (each byte cancels the
keep-alive timer), or trickle a body byte by byte: each holds a connection, a parser and,
for a body, a running request for as long as it likes.

Contract of ``DeadlineHttpToolsProtocol``:

- **Head deadline.** While the connection waits for a request head and no response is in
  progress on it, the head must be complete within ``header_timeout_s`` of the first
  byte (of connecting, for the first request). Otherwise the client gets
  ``408 Request Timeout`` with ``Connection: close`` and the connection is closed. A
  head that arrives while an earlier (pipelined) response is still being sent is timed
  from the end of that response, so a long stream is never cut because of it.
- **Body deadline.** Once a request is handed to the app, its body must be complete
  within ``body_timeout_s``. Otherwise the connection is closed; the app sees
  ``http.disconnect`` (the gateway records it as a client disconnect, never a 5xx).
- Normal keep-alive traffic is untouched: timers are armed and cancelled on parser
  events, and an idle connection between requests is still governed by uvicorn's
  keep-alive timeout alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

DISCONNECT_SIGNAL = "nz.disconnect"  # scope key of the connection's ``DisconnectSignal``

HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0

_TIMEOUT_BODY = b"request header timeout"


class DisconnectSignal:
    """Callbacks run once when the client's connection is lost.

    A request that waits on something else (the backend) learns of its client leaving
    without a task of its own listening on ``receive``: the protocol tells it directly."""

    __slots__ = ("_callbacks", "lost")

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []
        self.lost = False

    def add(self, callback: Callable[[], None]) -> bool:
        """Register ``callback``; False (not registered) if the connection is already lost."""
        if self.lost:
            return False
        self._callbacks.append(callback)
        return True

    def discard(self, callback: Callable[[], None]) -> None:
        try:
            self._callbacks.remove(callback)
        except ValueError:
            pass

    def fire(self) -> None:
        self.lost = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


class _HeadBuffer:
    """Stands in for the transport while uvicorn writes a response head: keeps it."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data


class _HeadFirst:
    """Stands in for the transport for a response's first body write: head + body in
    one write. Everything else goes to the real transport."""

    __slots__ = ("_head", "_transport")

    def __init__(self, transport: asyncio.Transport, head: bytes) -> None:
        self._transport = transport
        self._head = head

    def write(self, data: bytes) -> None:
        head, self._head = self._head, b""
        self._transport.write(head + data if head else data)

    def close(self) -> None:
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingCycle(RequestResponseCycle):
    """uvicorn's request cycle, writing a response's head together with its first body
    message: one socket write (one system call) per whole response instead of two.
    Every first body message writes (uvicorn writes even an empty body), except for HEAD
    requests, which are left alone."""

    _pending_head: bytes | None = None

    async def send(self, message: Any) -> None:
        kind = message["type"]
        # HEAD answers have no body message that writes: their head goes out at once.
        if (
            kind == "http.response.start"
            and not self.response_started
            and self.scope["method"] != "HEAD"
        ):
            transport = self.transport
            buffer = _HeadBuffer()
            self.transport = buffer  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = transport
            self._pending_head = buffer.data
            return
        head = self._pending_head
        if head is not None and kind == "http.response.body" and not self.disconnected:
            self._pending_head = None
            transport = self.transport
            self.transport = _HeadFirst(transport, head)  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = transport
            return
        await super().send(message)


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that enforces a head and a body deadline per request."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        header_timeout_s: float = HEADER_TIMEOUT_S,
        body_timeout_s: float = BODY_TIMEOUT_S,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self.disconnect = DisconnectSignal()

    # --- connection -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head()
        self._cancel_body()
        super().connection_lost(exc)
        self.disconnect.fire()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Bytes that start no message (e.g. bare CRLFs) cancel uvicorn's keep-alive timer
        # without arming anything else: the head deadline takes over.
        if (
            self._head_timer is None
            and self.timeout_keep_alive_task is None
            and not self._response_in_progress()
            and self.transport is not None
            and not self.transport.is_closing()
        ):
            self._arm_head()

    # --- parser events ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None and not self._response_in_progress():
            self._arm_head()

    def on_headers_complete(self) -> None:
        self._cancel_head()
        self.scope[DISCONNECT_SIGNAL] = self.disconnect  # type: ignore[literal-required]
        previous = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not previous and type(cycle) is RequestResponseCycle:
            # Created just now; its task has not run yet, so its class can still change.
            cycle.__class__ = CoalescingCycle

    def on_message_complete(self) -> None:
        self._cancel_body()
        super().on_message_complete()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        super()._start_asgi_task(cycle, app)
        if cycle.more_body:
            self._cancel_body()
            self._body_timer = self.loop.call_later(self.body_timeout_s, self._body_expired, cycle)

    # --- deadlines --------------------------------------------------------------------
    def _response_in_progress(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _arm_head(self) -> None:
        self._cancel_head()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_expired)

    def _cancel_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_body(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        if not self._response_in_progress():
            content = [STATUS_LINE[408]]
            for name, value in self.server_state.default_headers:
                content.extend([name, b": ", value, b"\r\n"])
            content.extend(
                [
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: " + str(len(_TIMEOUT_BODY)).encode("ascii") + b"\r\n",
                    b"connection: close\r\n\r\n",
                    _TIMEOUT_BODY,
                ]
            )
            self.transport.write(b"".join(content))
        self.logger.info(
            "request head not complete in %.0f s; connection closed", self.header_timeout_s
        )
        self.transport.close()

    def _body_expired(self, cycle: RequestResponseCycle) -> None:
        self._body_timer = None
        if not cycle.more_body or self.transport is None or self.transport.is_closing():
            return
        # The app owns the response: closing is all that is safe; it sees a disconnect.
        self.logger.info(
            "request body not complete in %.0f s; connection closed", self.body_timeout_s
        )
        self.transport.close()


@dataclass(frozen=True, slots=True)
class DeadlineProtocolFactory:
    """Builds ``DeadlineHttpToolsProtocol`` with other deadlines.

    uvicorn only ever calls ``Config.http`` with the protocol's constructor arguments, and
    pickles the config for worker processes: a frozen dataclass at module level is both
    callable and picklable, where a class made in a function would not be.
    """

    header_timeout_s: float = HEADER_TIMEOUT_S
    body_timeout_s: float = BODY_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.header_timeout_s <= 0 or self.body_timeout_s <= 0:
            raise ValueError("deadlines must be positive numbers of seconds")

    def __call__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> DeadlineHttpToolsProtocol:
        return DeadlineHttpToolsProtocol(
            config,
            server_state,
            app_state,
            _loop,
            header_timeout_s=self.header_timeout_s,
            body_timeout_s=self.body_timeout_s,
        )
