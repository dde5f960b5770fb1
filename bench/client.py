"""The asyncio client of the benchmark: streams, time to first byte, held-open streams
and the bad-key flood (what ``wrk`` cannot measure)."""

from __future__ import annotations

import asyncio
import collections
import math
import os
import string
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
import yarl

_BASE62 = string.digits + string.ascii_letters
_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=10)


def _session(limit: int = 0, local_addr: tuple[str, int] | None = None) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, local_addr=local_addr, force_close=False)
    return aiohttp.ClientSession(connector=connector, timeout=_TIMEOUT)


async def _drain(
    response: aiohttp.ClientResponse, first_byte: list[float] | None = None
) -> tuple[int, int, bytes]:
    """Read a streamed body to its end: (lines, bytes, last non-empty line). The
    ``perf_counter`` time of the first body bytes is appended to ``first_byte``."""
    lines = size = 0
    tail = b""
    async for chunk in response.content.iter_any():
        if first_byte is not None and not size:
            first_byte.append(time.perf_counter())
        lines += chunk.count(b"\n")
        size += len(chunk)
        tail = (tail + chunk)[-4096:]
    last = next((ln for ln in reversed(tail.split(b"\n")) if ln.strip()), b"")
    return lines, size, last


async def time_to_first_byte(
    url: str, body: bytes, headers: Mapping[str, str], count: int, warmup: int = 20
) -> tuple[list[float], int]:
    """``count`` streamed requests one after another; seconds from sending each to its
    first body byte, and the number that failed."""
    samples: list[float] = []
    errors = 0
    async with _session(limit=1) as session:
        for i in range(warmup + count):
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                if response.status != 200:
                    errors += 1
                    await response.read()
                    continue
                await response.content.readany()
                first = time.perf_counter() - started
                await _drain(response)
            if i >= warmup:
                samples.append(first)
    return samples, errors


@dataclass(frozen=True, slots=True)
class StreamRun:
    streams: int
    lines: int
    bytes: int
    seconds: float
    durations: list[float]
    errors: int
    # Per stream, from its first body bytes to its end: the rate chunks are passed on at,
    # without the time to first byte (measured on its own by ``time_to_first_byte``).
    relay_durations: list[float] = field(default_factory=list)

    @property
    def lines_per_s(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0


async def stream_throughput(
    url: str, body: bytes, headers: Mapping[str, str], count: int
) -> StreamRun:
    """``count`` long streams one after another (concurrency 1), read as fast as possible."""
    total_lines = total_bytes = errors = 0
    durations: list[float] = []
    relay: list[float] = []
    async with _session(limit=1) as session:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()  # warm the connection (and the gateway's key cache)
        for _ in range(count):
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                if response.status != 200:
                    errors += 1
                    await response.read()
                    continue
                first: list[float] = []
                lines, size, _ = await _drain(response, first)
            ended = time.perf_counter()
            durations.append(ended - started)
            relay.append(ended - (first[0] if first else started))
            total_lines += lines
            total_bytes += size
    return StreamRun(count, total_lines, total_bytes, sum(durations), durations, errors, relay)


@dataclass
class HoldResult:
    requested: int
    completed: int = 0
    peak_open: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    ramp_s: float = 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


async def hold_streams(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    count: int,
    *,
    opening: int = 100,
    while_all_open: Callable[[], Awaitable[None]] | None = None,
) -> HoldResult:
    """Open ``count`` slow streams and keep them all open until they end by themselves.

    At most ``opening`` streams are between connect and first byte at a time (clients
    do not all connect in the same millisecond; listen backlogs are finite). Each stream
    counts as completed only with status 200 and a final ``"done":true`` frame.
    ``while_all_open`` runs once every stream has started and none has ended.
    """
    result = HoldResult(count)
    gate = asyncio.Semaphore(opening)
    all_open = asyncio.Event()
    open_now = 0
    started = time.perf_counter()

    async def one(session: aiohttp.ClientSession) -> None:
        nonlocal open_now
        counted = False
        try:
            async with gate:
                response = await session.post(url, data=body, headers=headers)
                if response.status != 200:
                    result.errors[f"status {response.status}"] += 1
                    response.release()
                    return
                await response.content.readany()
                open_now += 1
                counted = True
                result.peak_open = max(result.peak_open, open_now)
                if open_now == count:
                    result.ramp_s = time.perf_counter() - started
                    all_open.set()
            async with response:
                _, _, last = await _drain(response)
            if b'"done":true' in last.replace(b" ", b""):
                result.completed += 1
            else:
                result.errors["stream ended without done"] += 1
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            result.errors[type(exc).__name__] += 1
        finally:
            if counted:
                open_now -= 1

    async with _session() as session:
        tasks = [asyncio.create_task(one(session)) for _ in range(count)]
        waiter = asyncio.ensure_future(all_open.wait())
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        if waiter in done and while_all_open is not None:
            await while_all_open()
        waiter.cancel()
        await asyncio.gather(*tasks)
    return result


def bad_key() -> str:
    """A well-formed key that no tenant has (an unknown prefix)."""
    # Random bytes mapped onto the alphabet (modulo bias does not matter here): ~20 times
    # cheaper than ``secrets.choice`` per character, for the flood's 18,000 keys.
    return "nz_" + "".join([_BASE62[b % 62] for b in os.urandom(41)])


@dataclass
class FloodResult:
    sent: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


class _FloodConnection(asyncio.Protocol):
    """One keep-alive connection of the flood: one request at a time, the answer's head
    parsed just enough to find its status and end (no streams, no task per request)."""

    def __init__(self, flood: _Flood) -> None:
        self._flood = flood
        self.transport: asyncio.Transport | None = None
        self.sent_at: float | None = None  # None: idle
        self._buffer = b""
        self._status = ""
        self._left = -1  # body bytes still to come; -1 while the head is incomplete
        self._close = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def send(self, request: bytes) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self._buffer, self._left, self._close = b"", -1, False
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        if self._left < 0:
            self._buffer += data
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self._buffer[:end], self._buffer[end + 4 :]
            self._status = head.split(b" ", 2)[1].decode()
            self._left = 0
            for line in head.lower().split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    self._left = int(line[15:])
                elif line.startswith(b"connection:") and b"close" in line:
                    self._close = True
        self._left -= len(data)
        if self._left <= 0:
            self.sent_at = None
            self._flood.answered(self, self._status, self._close)

    def connection_lost(self, exc: Exception | None) -> None:
        self._flood.lost(self)


class _Flood:
    def __init__(self, host: str, port: int, source_ip: str, result: FloodResult) -> None:
        self.host, self.port, self.source_ip = host, port, source_ip
        self.result = result
        self.idle: collections.deque[_FloodConnection] = collections.deque()
        self.busy: set[_FloodConnection] = set()
        self.opening = 0

    def answered(self, conn: _FloodConnection, status: str, close: bool) -> None:
        self.result.statuses[status] += 1
        self.busy.discard(conn)
        if close:
            assert conn.transport is not None
            conn.transport.close()
        else:
            self.idle.append(conn)  # first in, first out: none rests for long

    def lost(self, conn: _FloodConnection) -> None:
        if conn in self.busy:  # the gateway closed it before answering
            self.busy.discard(conn)
            self.result.statuses["ConnectionResetError"] += 1
        try:
            self.idle.remove(conn)
        except ValueError:
            pass

    def expire(self, now: float, timeout_s: float) -> None:
        for conn in [c for c in self.busy if c.sent_at is not None and now - c.sent_at > timeout_s]:
            self.busy.discard(conn)
            self.result.statuses["TimeoutError"] += 1
            if conn.transport is not None:
                conn.transport.abort()

    async def send_new(self, request: bytes) -> None:
        """Send on a new connection (none idle): the connect is the only awaited step."""
        loop = asyncio.get_running_loop()
        self.opening += 1
        try:
            _, conn = await loop.create_connection(
                lambda: _FloodConnection(self), self.host, self.port, local_addr=(self.source_ip, 0)
            )
        except OSError as exc:
            self.result.statuses[type(exc).__name__] += 1
            return
        finally:
            self.opening -= 1
        self.busy.add(conn)
        conn.send(request)


async def bad_key_flood(
    url: str,
    body: bytes,
    *,
    rate: float,
    duration_s: float,
    source_ip: str,
    max_in_flight: int = 2000,
    answer_timeout_s: float = 5.0,
    tick_s: float = 0.01,
) -> FloodResult:
    """Requests with random bad keys from ``source_ip`` at ``rate`` per second, paced on
    the clock (not on the answers, which may be slow on purpose). An answer slower than
    ``answer_timeout_s`` counts as ``TimeoutError`` (a backlog of verifications must not
    hold the benchmark).

    The flood shares the machine with the gateway, so it is sent as cheaply as possible
    (its CPU is taken from the valid traffic as well): requests built before the clock
    starts, raw keep-alive connections driven by a protocol object (no stream reader, no
    task and no timer per request; ~0.22 ms of CPU per request with asyncio streams),
    and the requests due are sent every ``tick_s``."""
    result = FloodResult()
    target = yarl.URL(url)
    host, port = target.host or "127.0.0.1", target.port or 80
    total = int(rate * duration_s)
    head = (
        f"POST {target.raw_path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    ).encode()
    requests = [
        head + f"Authorization: Bearer {bad_key()}\r\n\r\n".encode() + body for _ in range(total)
    ]
    flood = _Flood(host, port, source_ip, result)
    opening: set[asyncio.Task[None]] = set()
    started = time.perf_counter()
    while result.sent < total:
        now = time.perf_counter()
        flood.expire(now, answer_timeout_s)
        due = min(total, int((now - started) * rate) + 1)
        while result.sent < due and len(flood.busy) + flood.opening < max_in_flight:
            request = requests[result.sent]
            result.sent += 1
            if flood.idle:
                conn = flood.idle.popleft()
                flood.busy.add(conn)
                conn.send(request)
            else:
                task = asyncio.create_task(flood.send_new(request))
                opening.add(task)
                task.add_done_callback(opening.discard)
        await asyncio.sleep(tick_s)
    result.seconds = time.perf_counter() - started
    deadline = time.perf_counter() + answer_timeout_s
    while (flood.busy or opening) and time.perf_counter() < deadline:
        await asyncio.sleep(tick_s)
    for task in list(opening):
        task.cancel()
    flood.expire(math.inf, 0.0)
    for conn in flood.idle:
        assert conn.transport is not None
        conn.transport.close()
    return result
