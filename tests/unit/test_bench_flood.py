"""The benchmark's bad-key flood client against a small server: paced on the clock, keep-
alive connections reused, answers counted by status, closes and silences handled."""

from __future__ import annotations

import asyncio
from collections import Counter

from bench.client import FloodResult, bad_key_flood


class _Server:
    """Answers each request (head and body read in full) with ``status``; every
    ``close_every``-th answer carries ``Connection: close``; requests whose key ends in
    ``silent_suffix`` get no answer at all."""

    def __init__(self, close_every: int = 0, silent_suffix: str | None = None) -> None:
        self.close_every = close_every
        self.silent_suffix = silent_suffix
        self.requests = 0
        self.connections = 0
        self.peers: Counter[str] = Counter()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.peers[writer.get_extra_info("peername")[0]] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                key = ""
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line[15:])
                    if line.startswith(b"Authorization: Bearer "):
                        key = line[22:].decode()
                await reader.readexactly(length)
                self.requests += 1
                assert key.startswith("nz_") and len(key) == 44
                if self.silent_suffix is not None and key.endswith(self.silent_suffix):
                    await asyncio.sleep(3600)
                close = self.close_every and self.requests % self.close_every == 0
                body = b'{"error":"no"}'
                writer.write(
                    b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: "
                    + str(len(body)).encode()
                    + (b"\r\nconnection: close" if close else b"")
                    + b"\r\n\r\n"
                    + body
                )
                if close:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


async def _flood(server: _Server, **options: float) -> tuple[FloodResult, float]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        result = await bad_key_flood(
            f"http://127.0.0.1:{port}/api/chat",
            b'{"model":"m"}',
            source_ip="127.0.0.2",
            **options,  # type: ignore[arg-type]
        )
    finally:
        listener.close()
    return result, loop.time() - started


async def test_paced_and_counted_on_few_connections() -> None:
    server = _Server()
    result, elapsed = await _flood(server, rate=200, duration_s=1.0)
    assert result.sent == 200 == server.requests
    assert result.statuses == {"429": 200}
    assert 0.9 < elapsed < 3.0  # paced on the clock, not sent at once
    assert server.connections <= 5  # kept alive and reused
    assert set(server.peers) == {"127.0.0.2"}


async def test_closed_connections_are_replaced() -> None:
    server = _Server(close_every=10)
    result, _ = await _flood(server, rate=200, duration_s=0.5)
    assert result.statuses == {"429": 100}
    assert server.connections >= 10


async def test_unanswered_requests_count_as_timeouts() -> None:
    # About one key in 62 ends in "Z": those are never answered.
    server = _Server(silent_suffix="Z")
    result, elapsed = await _flood(server, rate=400, duration_s=0.5, answer_timeout_s=0.3)
    statuses = result.statuses
    assert statuses["429"] + statuses["TimeoutError"] == 200
    assert 0 < statuses["TimeoutError"] < 40
    assert elapsed < 2.0
