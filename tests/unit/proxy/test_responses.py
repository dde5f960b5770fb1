"""StreamResponse pumps the chunks in the caller's task and stops them the moment the
client leaves; a disconnect never leaks a cancellation into what follows the response."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from neuronetz_gateway.proxy.responses import StreamResponse


class Client:
    def __init__(self, leave_at_the_end: bool = False) -> None:
        self.sent: list[dict[str, Any]] = []
        self.leave = asyncio.Event()
        self.leave_at_the_end = leave_at_the_end

    async def receive(self) -> dict[str, Any]:
        await self.leave.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Any) -> None:
        self.sent.append(message)
        if self.leave_at_the_end and message.get("more_body") is False:
            self.leave.set()  # the disconnect is seen while the last write completes
        await asyncio.sleep(0)

    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]


class Chunks:
    def __init__(self, count: int, gate: asyncio.Event | None = None) -> None:
        self.count = count
        self.gate = gate
        self.closed = False

    async def __call__(self) -> AsyncGenerator[bytes, None]:
        try:
            for index in range(self.count):
                if index and self.gate is not None:
                    await self.gate.wait()  # an upstream that goes quiet
                yield b"%d\n" % index
        finally:
            self.closed = True


def response(chunks: Chunks) -> StreamResponse:
    return StreamResponse(chunks(), media_type="application/x-ndjson", headers={"X-A": "1"})


async def test_every_chunk_then_the_end_of_the_body() -> None:
    client, chunks = Client(), Chunks(3)
    await response(chunks)({}, client.receive, client.send)
    assert client.sent[0]["headers"][-1] == (b"x-a", b"1")
    assert client.bodies() == [b"0\n", b"1\n", b"2\n", b""]
    assert chunks.closed


async def test_a_client_that_leaves_stops_the_chunks_at_once() -> None:
    client, chunks = Client(), Chunks(3, gate=asyncio.Event())
    call = asyncio.ensure_future(response(chunks)({}, client.receive, client.send))
    while not client.bodies():
        await asyncio.sleep(0)
    client.leave.set()
    await asyncio.wait_for(call, 1)  # returns normally: the client is gone, nothing to raise
    assert chunks.closed and client.bodies() == [b"0\n"]


async def test_a_disconnect_with_the_last_write_cancels_nothing_that_follows() -> None:
    client, chunks = Client(leave_at_the_end=True), Chunks(2)

    async def request() -> str:
        await response(chunks)({}, client.receive, client.send)
        for _ in range(5):
            await asyncio.sleep(0)
        return "finished"

    assert await request() == "finished"


async def test_a_cancelled_caller_stays_cancelled() -> None:
    client, chunks = Client(), Chunks(3, gate=asyncio.Event())
    call = asyncio.ensure_future(response(chunks)({}, client.receive, client.send))
    while not client.bodies():
        await asyncio.sleep(0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert chunks.closed
