"""The hot-path Redis client: Lua scripts (and a few plain commands) over one pipelined
connection.

Every model request runs four scripts in scale-out mode (limits admit and settle, backend
slot acquire and release). Through redis-py's pooled asyncio client each call cost about
100 µs of gateway CPU (pool checkout, command packing, a per-call ``asyncio.timeout``,
parsing); see ``docs/ARCHITECTURE.md`` for the measurement. ``ScriptClient`` keeps one
connection per client, writes the commands of all concurrent callers together, matches
replies to callers in order (Redis answers a connection's commands in the order sent),
parses them with ``hiredis`` and bounds every call with one timer per connection instead
of one per call. redis-py stays for everything else (pub/sub, administration, tests).

Failure contract (the stores turn each of these into ``ServiceUnavailable``):
    * ``redis.exceptions.ConnectionError``: no connection (refused, reset, closed), a
      connect or handshake that failed or took longer than ``timeout_s``; every call in
      flight on a connection that breaks fails with it.
    * ``redis.exceptions.TimeoutError``: no reply within ``timeout_s`` of sending. The
      connection is dropped and every call in flight on it fails: their replies would
      come after the late one anyway.
    * ``redis.exceptions.ResponseError``: Redis answered with an error.
A call that has to connect first has one deadline for connecting and its answer. A
script may have run even if its call failed (as with any Redis client). Nothing is
retried, except a script unknown to Redis (``NOSCRIPT``), which is sent once more in full
with ``EVAL`` (a second round trip, with a deadline of its own). The next call after a
failure connects again: recovery needs no restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final, cast

import hiredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = str | int | float
_NOSCRIPT: Final = "NOSCRIPT"
# hiredis's stub types the argument as a 1-tuple; any tuple of arguments is packed.
_pack: Final[Callable[[tuple[Arg, ...]], bytes]] = hiredis.pack_command  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script shipped next to the module that runs it, with its SHA1 for EVALSHA."""

    source: str
    sha: str

    @classmethod
    def load(cls, package: str, name: str) -> Script:
        source = resources.files(package).joinpath(name).read_text(encoding="utf-8")
        return cls(source, hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest())


@dataclass(frozen=True, slots=True)
class _Address:
    host: str
    port: int
    path: str | None
    db: int
    username: str | None
    password: str | None
    tls: ssl.SSLContext | None

    @classmethod
    def parse(cls, url: str) -> _Address:
        options = parse_url(url)
        tls: ssl.SSLContext | None = None
        kind = options.get("connection_class")
        if kind is SSLConnection:
            ca_certs = options.get("ssl_ca_certs")
            tls = ssl.create_default_context(cafile=None if ca_certs is None else str(ca_certs))
            requirement = str(options.get("ssl_cert_reqs", "required")).lower()
            if requirement in ("none", "optional"):
                tls.check_hostname = False
                tls.verify_mode = ssl.CERT_NONE if requirement == "none" else ssl.CERT_OPTIONAL
            elif options.get("ssl_check_hostname") is False:
                tls.check_hostname = False
        return cls(
            host=str(options.get("host", "localhost")),
            port=int(options.get("port", 6379)),
            path=str(options["path"]) if kind is UnixDomainSocketConnection else None,
            db=int(options.get("db", 0)),
            username=options.get("username"),
            password=options.get("password"),
            tls=tls,
        )


class _Connection(asyncio.Protocol):
    """One Redis connection: commands are written in batches, replies matched in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self._loop = loop
        self._timeout_s = timeout_s
        self._reader = hiredis.Reader(encoding="utf-8", replyError=ResponseError)
        self._pending: deque[tuple[float, asyncio.Future[Any]]] = deque()
        self._outgoing: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._lost: asyncio.Future[None] = loop.create_future()
        self.closed = False

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        pending = self._pending
        reader.feed(data)
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self.abort(RedisConnectionError(f"Redis protocol error: {exc}"))
                return
            if reply is False:
                return
            if not pending:
                self.abort(RedisConnectionError("Redis sent a reply nobody asked for"))
                return
            future = pending.popleft()[1]
            if not future.done():  # a cancelled caller's reply is dropped
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(RedisConnectionError("connection to Redis lost"))
        if not self._lost.done():
            self._lost.set_result(None)

    # --- calls -----------------------------------------------------------------------------

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        """Queue one packed command; the future gets its reply (an error reply as a
        ``ResponseError`` value, not raised) or the connection's failure."""
        if self.closed:
            raise RedisConnectionError("connection to Redis lost")
        loop = self._loop
        future = loop.create_future()
        self._pending.append((loop.time() + self._timeout_s, future))
        if not self._outgoing:
            loop.call_soon(self._flush)
        self._outgoing.append(packed)
        if self._timer is None:
            self._timer = loop.call_at(self._pending[0][0], self._check_deadline)
        return future

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if self._transport is not None and not self.closed:
            self._transport.write(outgoing[0] if len(outgoing) == 1 else b"".join(outgoing))

    def _check_deadline(self) -> None:
        # One timer per connection: replies come in order, so only the oldest call in
        # flight can be late; the timer follows it instead of being set for every call.
        self._timer = None
        if not self._pending or self.closed:
            return
        deadline = self._pending[0][0]
        if deadline <= self._loop.time():
            self.abort(RedisTimeoutError(f"Redis did not answer within {self._timeout_s} s"))
            return
        self._timer = self._loop.call_at(deadline, self._check_deadline)

    def _fail(self, error: Exception) -> None:
        pending, self._pending = self._pending, deque()
        for _, future in pending:
            if not future.done():
                future.set_exception(type(error)(*error.args))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def abort(self, error: Exception) -> None:
        """Drop the connection; every call in flight fails with ``error``."""
        self.closed = True
        self._fail(error)
        if self._transport is not None:
            self._transport.abort()
        elif not self._lost.done():
            self._lost.set_result(None)

    async def wait_closed(self) -> None:
        await self._lost


class ScriptClient:
    """Runs commands and Lua scripts on one pipelined Redis connection (see the module
    docstring for what it guarantees under failure)."""

    def __init__(self, url: str, *, timeout_s: float) -> None:
        self._address = _Address.parse(url)
        self._timeout_s = timeout_s
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None
        self._closed = False

    async def execute(self, *command: Arg) -> Any:
        """Send one command; return its reply or raise (see the module docstring)."""
        reply = await self._send(_pack(command))
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """``EVALSHA`` the script, or ``EVAL`` it when Redis does not know it yet."""
        reply = await self._send(_pack(("EVALSHA", script.sha, len(keys), *keys, *args)))
        if isinstance(reply, ResponseError):
            if not str(reply).startswith(_NOSCRIPT):
                raise reply
            reply = await self.execute("EVAL", script.source, len(keys), *keys, *args)
        return reply

    def _send(self, packed: bytes) -> Awaitable[Any]:
        connection = self._connection
        if connection is not None and not connection.closed:
            return connection.send(packed)
        return self._connect_and_send(packed)

    async def _connect_and_send(self, packed: bytes) -> Any:
        try:
            async with asyncio.timeout(self._timeout_s):  # one deadline for both steps
                connection = await self._connect()
                return await connection.send(packed)
        except TimeoutError as exc:
            raise RedisTimeoutError(f"no answer from Redis within {self._timeout_s} s") from exc

    async def aclose(self) -> None:
        """Close the connection; calls made after this fail with ``ConnectionError``."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        connection, self._connection = self._connection, None
        if connection is not None and not connection.closed:
            connection.abort(RedisConnectionError("client closed"))
            await connection.wait_closed()

    async def _connect(self) -> _Connection:
        # Concurrent callers share one attempt; a caller that is cancelled does not
        # cancel it for the others.
        if self._closed:
            raise RedisConnectionError("client closed")
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
            self._connecting.add_done_callback(self._connected)
        return await asyncio.shield(self._connecting)

    def _connected(self, attempt: asyncio.Task[_Connection]) -> None:
        if self._connecting is attempt:
            self._connecting = None
        if not attempt.cancelled() and attempt.exception() is None:
            self._connection = attempt.result()

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        address = self._address
        connection: _Connection | None = None

        def protocol() -> _Connection:
            nonlocal connection
            connection = _Connection(loop, self._timeout_s)
            return connection

        try:
            async with asyncio.timeout(self._timeout_s):
                if address.path is not None:
                    await loop.create_unix_connection(protocol, address.path)
                else:
                    await loop.create_connection(
                        protocol,
                        address.host,
                        address.port,
                        ssl=address.tls,
                        server_hostname=address.host if address.tls else None,
                    )
                assert connection is not None
                handshake: list[tuple[Arg, ...]] = []
                if address.password is not None:
                    if address.username is not None:
                        handshake.append(("AUTH", address.username, address.password))
                    else:
                        handshake.append(("AUTH", address.password))
                if address.db:
                    handshake.append(("SELECT", address.db))
                replies = await asyncio.gather(*(connection.send(_pack(c)) for c in handshake))
        except (OSError, TimeoutError) as exc:
            if connection is not None:
                connection.abort(RedisConnectionError("connect failed"))
            raise RedisConnectionError(f"cannot connect to Redis: {type(exc).__name__}") from exc
        except BaseException:
            if connection is not None:
                connection.abort(RedisConnectionError("connect failed"))
            raise
        for reply in replies:
            if isinstance(reply, ResponseError):
                connection.abort(RedisConnectionError("Redis refused the handshake"))
                raise RedisConnectionError(f"Redis refused the handshake: {reply}")
        return connection
