"""A lean HTTP/1.1 client for the model calls: ``POST`` a JSON body, read the answer whole
or as a byte stream. Parsing is httptools (llhttp, the parser uvicorn uses on the client
side of the gateway); connections are kept alive in a per-backend pool.

Why not aiohttp here: a model call through ``aiohttp.ClientSession`` cost ~100 µs of CPU
(session bookkeeping, header multidicts, payload registry, tracing hooks, a
``StreamReader`` per response) — a quarter of the gateway's whole per-request budget.
This client does only what a model call needs, in ~25 µs. aiohttp still serves the
discovery, probe and ``/api/show`` calls.

Contract:
- Requests carry only the gateway's own headers (Host, Content-Type, Content-Length and
  the backend's configured auth headers); no ``Accept-Encoding`` is sent and a compressed
  answer is refused, like a malformed one.
- Errors are ``OSError`` subclasses (``UpstreamConnectionError``) or ``TimeoutError``:
  connect failures, resets, malformed or cut answers. ``connect_s`` bounds connecting;
  ``read_s`` bounds every wait for the next bytes (the answer's head included).
- A kept-alive connection that turns out closed before any byte of the answer arrived
  is replaced by a fresh one once (the request never reached the server's handler).
- A response is ``release``d (connection back to the pool if the answer was read to the
  end, closed otherwise) or ``close``d (connection closed: the server stops working on it).
- Back-pressure: past ``HIGH_WATER`` unread bytes the socket stops being read, so a slow
  client cannot make the gateway buffer a fast backend's whole answer.
- Burst coalescing (streams only, ``coalesce_bursts``): bytes that arrive less than
  ``BURST_GAP_S`` after the previous bytes do not wake the reader at once; they are handed
  over together when ``COALESCE_BYTES`` have gathered, when the answer ends or fails, or
  ``LINGER_S`` after the first of them, whichever comes first. A model that decodes at
  any human-visible speed (a token every millisecond or slower) is never held; a backend
  that writes a thousand lines in a few milliseconds costs the gateway one wake-up, one
  parse pass and one client write per batch instead of per line.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import ssl
import time
from collections.abc import Mapping

import httptools
from yarl import URL

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
BURST_GAP_S = 0.0005  # bytes closer than this to the previous bytes are part of a burst
COALESCE_BYTES = 16 * 1024  # a burst is handed over once this much has gathered
LINGER_S = 0.001  # ... or this long after its first held bytes (uvloop: whole ms)
_now = time.perf_counter  # the clock of burst detection (tests replace it)
MAX_HEAD_BYTES = 64 * 1024
_FORBIDDEN_IN_HEADERS = ("\r", "\n", "\0")


class UpstreamConnectionError(ConnectionError):
    """The backend could not be reached, or its answer was cut or malformed."""


def _header_bytes(name: str, value: str) -> bytes:
    if (
        not name
        or any(c in name for c in (*_FORBIDDEN_IN_HEADERS, ":", " ", "\t"))
        or any(c in value for c in _FORBIDDEN_IN_HEADERS)
    ):
        raise ValueError(f"invalid upstream header {name!r}")
    return f"{name}: {value}\r\n".encode("latin-1")


class UpstreamResponse:
    """One answer on one connection. ``content`` is the response itself (``readany``)."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_coalesce",
        "_complete",
        "_conn",
        "_error",
        "_finished",
        "_got_bytes",
        "_head_bytes",
        "_head_done",
        "_last_bytes_at",
        "_linger",
        "_paused",
        "_waiter",
        "status",
    )

    def __init__(self, conn: _Connection) -> None:
        self.status = 0
        self._conn = conn
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._head_done = False
        self._complete = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._finished = False
        self._paused = False
        self._got_bytes = False
        self._head_bytes = 0
        self._coalesce = False
        self._last_bytes_at = 0.0
        self._linger: asyncio.TimerHandle | None = None

    @property
    def content(self) -> UpstreamResponse:
        return self

    # --- fed by the connection ---------------------------------------------------------
    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_head(self, status: int) -> None:
        self.status = status
        self._head_done = True
        self._wake()

    def _on_body(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER and not self._paused:
            self._paused = True
            self._conn.pause()
        if self._coalesce:
            now = _now()
            in_burst = now - self._last_bytes_at < BURST_GAP_S
            self._last_bytes_at = now
            if in_burst and self._buffered < COALESCE_BYTES:
                if self._linger is None and self._waiter is not None:
                    self._linger = self._conn.loop.call_later(LINGER_S, self._end_linger)
                return
        self._wake()

    def _end_linger(self) -> None:
        self._linger = None
        self._wake()

    def _stop_linger(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None

    def _on_complete(self) -> None:
        self._complete = True
        self._wake()

    def _on_error(self, error: BaseException) -> None:
        if not self._complete and self._error is None:
            self._error = error
        self._wake()

    # --- read by the caller ------------------------------------------------------------
    async def _wait(self) -> None:
        loop = self._conn.loop
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(self._conn.read_s, self._expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    @staticmethod
    def _expire(waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError("no data from the backend in time"))

    async def start(self) -> None:
        """Wait for the answer's status line and headers."""
        while not self._head_done:
            if self._error is not None:
                raise self._error
            await self._wait()

    def coalesce_bursts(self) -> None:
        """From now on, hand bursts of bytes to ``readany`` together (see the module's
        contract); for streamed answers, after their first line."""
        self._coalesce = True
        self._last_bytes_at = _now()

    async def readany(self) -> bytes:
        """The bytes received since the last call; ``b""`` once the answer is complete."""
        while not self._chunks:
            if self._complete:
                return b""
            if self._error is not None:
                raise self._error
            await self._wait()
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        self._stop_linger()
        if self._paused:
            self._paused = False
            self._conn.resume()
        return data

    async def read(self) -> bytes:
        """The whole (rest of the) body."""
        while not self._complete:
            if self._error is not None:
                raise self._error
            if self._paused:
                self._paused = False
                self._conn.resume()
            await self._wait()
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        return data

    def release(self) -> None:
        """Done with the answer: the connection goes back to the pool if it was read to
        its end and may be kept alive, and is closed otherwise."""
        if self._finished:
            return
        self._finished = True
        self._stop_linger()
        self._conn.finish(reuse=self._complete and self._error is None)

    def close(self) -> None:
        """Abandon the answer and close the connection."""
        if self._finished:
            return
        self._finished = True
        self._stop_linger()
        self._conn.finish(reuse=False)


class _Connection(asyncio.Protocol):
    """One keep-alive connection to a backend; at most one answer at a time."""

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.read_s = pool.read_s
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: UpstreamResponse | None = None
        self.closed = False
        self.keep_alive = False
        self.idle_timer: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:
            self.close()  # bytes nobody asked for: the connection is unusable
            return
        response._got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            response._on_error(UpstreamConnectionError(f"malformed answer: {exc}"))
            self.close()

    def eof_received(self) -> bool | None:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool._forget(self)
        if self.response is not None:
            self.response._on_error(UpstreamConnectionError("the backend closed the connection"))

    def pause(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    # --- httptools callbacks -----------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        response = self.response
        assert response is not None
        response._head_bytes += len(name) + len(value)
        if response._head_bytes > MAX_HEAD_BYTES:
            raise httptools.HttpParserError("answer head too large")
        if name.lower() == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            raise httptools.HttpParserError("compressed answer")

    def on_headers_complete(self) -> None:
        assert self.response is not None
        self.response._on_head(self.parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response._on_body(body)

    def on_message_complete(self) -> None:
        assert self.response is not None
        # Asked here: llhttp forgets it once the callback returns.
        self.keep_alive = self.parser.should_keep_alive()
        self.response._on_complete()

    # --- pool side ---------------------------------------------------------------------
    def send(self, data: list[bytes]) -> UpstreamResponse:
        assert self.transport is not None
        response = self.response = UpstreamResponse(self)
        self.transport.writelines(data)
        return response

    def finish(self, *, reuse: bool) -> None:
        keep = reuse and not self.closed and self.keep_alive
        self.response = None
        self.keep_alive = False
        if keep:
            self.pool._idle_push(self)
        else:
            self.close()
        self.pool._slot_free()

    def close(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        if not self.closed:
            self.closed = True
            self.pool._forget(self)
            if self.transport is not None:
                self.transport.close()


class UpstreamPool:
    """Keep-alive connections to one backend, at most ``limit`` at once (callers beyond
    that wait for one to be released)."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str],
        limit: int,
        connect_s: float,
        read_s: float,
        idle_s: float = 30.0,
    ) -> None:
        url = URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"unsupported backend URL scheme {url.scheme!r}")
        self.host = url.host
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if url.scheme == "https" else None
        )
        self._prefix = url.raw_path.rstrip("/")
        host_header = url.raw_host or self.host
        if url.explicit_port:
            host_header = f"{host_header}:{url.port}"
        fixed = [_header_bytes("Host", host_header)]
        names = {name.lower() for name in headers}
        if url.user is not None and "authorization" not in names:
            basic = base64.b64encode(f"{url.user}:{url.password or ''}".encode()).decode()
            fixed.append(_header_bytes("Authorization", f"Basic {basic}"))
        fixed.extend(_header_bytes(name, value) for name, value in headers.items())
        self._fixed = b"".join(fixed)
        self._heads: dict[str, bytes] = {}
        self.limit = limit
        self.connect_s = connect_s
        self.read_s = read_s
        self.idle_s = idle_s
        self._busy = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    @property
    def open_connections(self) -> int:
        return len(self._all)

    def _head(self, path: str) -> bytes:
        head = self._heads.get(path)
        if head is None:
            if not path.startswith("/") or any(c in path for c in " \r\n\0"):
                raise ValueError(f"invalid upstream path {path!r}")
            head = self._heads[path] = (
                f"POST {self._prefix}{path} HTTP/1.1\r\n".encode("latin-1") + self._fixed
            )
        return head

    async def post(self, path: str, body: bytes) -> UpstreamResponse:
        """Send ``body`` as JSON to ``path`` and wait for the answer's head."""
        head = self._head(
            path
        ) + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (len(body))
        await self._take_slot()
        try:
            conn = self._idle_pop()
            reused = conn is not None
            if conn is None:
                conn = await self._connect()
            response = conn.send([head, body])
            try:
                await response.start()
            except UpstreamConnectionError:
                if not reused or response._got_bytes:
                    raise
                # A kept-alive connection the backend had closed: once more on a new one.
                conn.response = None
                conn.close()
                conn = await self._connect()
                response = conn.send([head, body])
                await response.start()
            return response
        except BaseException:
            # Never reuse a connection whose exchange state is unknown.
            if conn is not None:
                conn.response = None
                conn.close()
            self._slot_free()
            raise

    async def _connect(self) -> _Connection:
        conn = _Connection(self)
        try:
            async with asyncio.timeout(self.connect_s):
                await self.loop.create_connection(
                    lambda: conn,
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                )
        except TimeoutError:
            raise TimeoutError("connecting to the backend timed out") from None
        except OSError as exc:
            raise UpstreamConnectionError(f"cannot connect to the backend: {exc}") from exc
        self._all.add(conn)
        return conn

    # --- connection slots --------------------------------------------------------------
    async def _take_slot(self) -> None:
        if self._busy < self.limit and not self._waiters:
            self._busy += 1
            return
        waiter = self.loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the releaser counted this caller in already
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._slot_free()  # granted, then cancelled: pass the slot on
            else:
                self._waiters.remove(waiter)
            raise

    def _slot_free(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._busy -= 1

    # --- idle connections --------------------------------------------------------------
    def _idle_pop(self) -> _Connection | None:
        idle = self._idle
        while idle:
            conn = idle.pop()
            if conn.idle_timer is not None:
                conn.idle_timer.cancel()
                conn.idle_timer = None
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                return conn
        return None

    def _idle_push(self, conn: _Connection) -> None:
        conn.idle_timer = self.loop.call_later(self.idle_s, conn.close)
        self._idle.append(conn)

    def _forget(self, conn: _Connection) -> None:
        self._all.discard(conn)
        try:
            self._idle.remove(conn)
        except ValueError:
            pass

    async def close(self) -> None:
        for conn in list(self._all):
            conn.close()
        self._idle.clear()
