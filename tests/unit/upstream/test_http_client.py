"""The lean model-call client (``upstream.http``) against scripted raw HTTP servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from neuronetz_gateway.upstream.http import (
    HIGH_WATER,
    UpstreamConnectionError,
    UpstreamPool,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.open = 0
        self.max_open = 0
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open -= 1
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = await reader.readexactly(length)
        self.requests.append(head + body)
        return body


def whole(body: bytes, *extra: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + b"".join(extra)
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )


def pool(url: str, *, limit: int = 8, read_s: float = 5.0) -> UpstreamPool:
    return UpstreamPool(
        url, headers={"Authorization": "Bearer t0k"}, limit=limit, connect_s=2.0, read_s=read_s
    )


@pytest.fixture
async def echo() -> AsyncIterator[Server]:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            body = await server.read_request(reader)
            writer.write(whole(b'{"echo":' + body + b"}"))
            await writer.drain()

    server = Server(handler)
    async with server:
        yield server


async def test_post_reads_the_answer_and_keeps_the_connection(echo: Server) -> None:
    client = pool(echo.url)
    for i in range(3):
        response = await client.post("/api/chat", b'{"n":%d}' % i)
        assert response.status == 200
        assert await response.read() == b'{"echo":{"n":%d}}' % i
        response.release()
    assert echo.connections == 1
    head = echo.requests[0].split(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0] == b"POST /api/chat HTTP/1.1"
    assert set(head[1:]) == {
        b"Host: " + echo.url.removeprefix("http://").encode(),
        b"Authorization: Bearer t0k",
        b"Content-Type: application/json",
        b"Content-Length: 7",
    }
    await client.close()


async def test_path_prefix_of_the_base_url_is_kept(echo: Server) -> None:
    client = pool(echo.url + "/ollama/")
    response = await client.post("/api/chat", b"{}")
    await response.read()
    response.release()
    assert echo.requests[0].startswith(b"POST /ollama/api/chat HTTP/1.1\r\n")
    await client.close()


async def test_a_chunked_stream_arrives_piece_by_piece() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"6\r\nline1\n\r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"6\r\nline2\n\r\n0\r\n\r\n")
        await writer.drain()
        await reader.read()

    server = Server(handler)
    async with server:
        client = pool(server.url)
        response = await client.post("/api/chat", b"{}")
        assert await response.content.readany() == b"line1\n"
        release.set()
        assert await response.content.readany() == b"line2\n"
        assert await response.content.readany() == b""
        response.release()
        await client.close()


async def test_at_most_limit_connections_at_once() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            await asyncio.sleep(0.05)
            writer.write(whole(b"{}"))
            await writer.drain()

    server = Server(handler)
    async with server:
        client = pool(server.url, limit=2)

        async def one() -> bytes:
            response = await client.post("/api/chat", b"{}")
            try:
                return await response.read()
            finally:
                response.release()

        assert await asyncio.gather(*(one() for _ in range(6))) == [b"{}"] * 6
        assert server.max_open == 2
        assert client.open_connections == 2
        await client.close()


async def test_a_kept_alive_connection_the_server_closed_is_replaced_once() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(whole(b"{}"))
        await writer.drain()
        # ... and then closes without a word (an idle timeout on the server side).

    server = Server(handler)
    async with server:
        client = pool(server.url)
        for _ in range(3):
            response = await client.post("/api/chat", b"{}")
            assert await response.read() == b"{}"
            response.release()
            await asyncio.sleep(0.05)
        assert server.connections == 3
        await client.close()


@pytest.mark.parametrize(
    "answer",
    [
        whole(b"{}", b"Content-Encoding: gzip\r\n"),
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\nContent-Length: 0\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ],
    ids=["compressed", "head-too-large", "garbage"],
)
async def test_refused_answers_are_connection_errors(answer: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer)
        await writer.drain()
        await reader.read()

    server = Server(handler)
    async with server:
        client = pool(server.url)
        with pytest.raises(UpstreamConnectionError):
            response = await client.post("/api/chat", b"{}")
            await response.read()
        await client.close()


async def test_a_silent_backend_times_out_and_frees_the_slot() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await reader.read()

    server = Server(handler)
    async with server:
        client = pool(server.url, limit=1, read_s=0.2)
        for _ in range(2):  # the second call would hang if the first kept the only slot
            with pytest.raises(TimeoutError):
                await client.post("/api/chat", b"{}")
        await asyncio.sleep(0.05)
        assert client.open_connections == 0
        await client.close()


async def test_a_cut_answer_is_an_error_not_a_short_body() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial":')
        await writer.drain()

    server = Server(handler)
    async with server:
        client = pool(server.url)
        response = await client.post("/api/chat", b"{}")
        with pytest.raises(UpstreamConnectionError):
            await response.read()
        response.close()
        await client.close()


async def test_nothing_listening_is_a_connection_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        return None

    server = Server(handler)
    async with server:
        url = server.url
    client = pool(url)
    with pytest.raises(UpstreamConnectionError):
        await client.post("/api/chat", b"{}")
    await client.close()


async def test_a_reader_that_does_not_read_stops_the_socket() -> None:
    total = 4 * 1024 * 1024
    sent = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        block = b"x" * 65536
        while sent < total:
            writer.write(block)
            await writer.drain()
            sent += len(block)

    server = Server(handler)
    async with server:
        client = pool(server.url)
        response = await client.post("/api/chat", b"{}")
        await asyncio.sleep(0.3)
        assert sent < total  # the server is blocked: the gateway stopped reading
        received = 0
        while chunk := await response.content.readany():
            received += len(chunk)
            assert len(chunk) <= HIGH_WATER + 65536 * 4
        assert received == total
        response.release()
        await client.close()


async def test_cancelling_a_waiting_call_closes_its_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await reader.read()

    server = Server(handler)
    async with server:
        client = pool(server.url, limit=1)
        task = asyncio.create_task(client.post("/api/chat", b"{}"))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.1)
        assert server.open == 0
        assert client.open_connections == 0


async def test_releasing_an_unread_answer_closes_the_connection(echo: Server) -> None:
    client = pool(echo.url)
    response = await client.post("/api/chat", b"{}")
    response.release()  # unread: the next call gets a clean connection either way
    response = await client.post("/api/chat", b"{}")
    assert await response.read() == b'{"echo":{}}'
    response.release()
    await client.close()


@pytest.mark.parametrize(
    "headers",
    [{"X-A\r\nEvil": "1"}, {"X-A": "1\r\nEvil: 2"}, {"Bad Name": "1"}, {"X:Y": "1"}],
)
def test_header_injection_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        UpstreamPool("http://127.0.0.1:1", headers=headers, limit=1, connect_s=1, read_s=1)
