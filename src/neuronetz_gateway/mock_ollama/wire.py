"""Putting answers on the wire the way Ollama (gin) does, including the broken ways.

JSON bodies carry ``application/json; charset=utf-8``; streams are NDJSON, one compact
object per line, written (flushed) one at a time. A failure after the first byte is
either an Ollama-style ``{"error": ...}`` line or a cut connection.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable, Iterable
from typing import Literal

import orjson
from aiohttp import web

JSON_TYPE = "application/json; charset=utf-8"
NDJSON_TYPE = "application/x-ndjson"
TEXT_TYPE = "text/plain"
MID_STREAM_ERROR = "an error was encountered while running the model: unexpected EOF"

StreamFault = Literal["after_first_chunk", "error_after_first_chunk"]


class OllamaError(Exception):
    """Answered as ``{"error": message}`` with ``status``, exactly like Ollama."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_response(payload: object, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload), status=status, headers={"Content-Type": JSON_TYPE}
    )


def error_response(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status)


def text_response(status: int, text: str) -> web.Response:
    return web.Response(body=text.encode(), status=status, headers={"Content-Type": TEXT_TYPE})


def empty_response(status: int = 200) -> web.Response:
    return web.Response(status=status)


async def send_whole(
    request: web.BaseRequest, payload: object, fault: StreamFault | None
) -> web.StreamResponse:
    """A non-streamed answer. Nothing is sent before it is complete, so an
    ``error_after_first_chunk`` becomes a plain 500, as in Ollama."""
    if fault is None:
        return json_response(payload)
    if fault == "error_after_first_chunk":
        return error_response(500, MID_STREAM_ERROR)
    body = orjson.dumps(payload)
    response = web.StreamResponse(status=200, headers={"Content-Type": JSON_TYPE})
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    cut_connection(request)
    return response


async def send_stream(
    request: web.BaseRequest,
    lines: Iterable[bytes],
    *,
    chunk_delay_s: float,
    fault: StreamFault | None,
    on_disconnect: Callable[[], None],
) -> web.StreamResponse:
    """Stream NDJSON ``lines``; a client that goes away ends the stream quietly."""
    response = web.StreamResponse(status=200, headers={"Content-Type": NDJSON_TYPE})
    await response.prepare(request)
    try:
        for index, line in enumerate(lines):
            if index and chunk_delay_s:
                await asyncio.sleep(chunk_delay_s)
            await response.write(line)
            if index == 0 and fault == "after_first_chunk":
                cut_connection(request)
                return response
            if index == 0 and fault == "error_after_first_chunk":
                await response.write(orjson.dumps({"error": MID_STREAM_ERROR}) + b"\n")
                break
        await response.write_eof()
    except ConnectionError:
        on_disconnect()
    return response


def cut_connection(request: web.BaseRequest) -> None:
    """Close the connection mid-response (FIN): the client sees a truncated body."""
    transport = request.transport
    if transport is not None:
        transport.abort()


def reset_connection(request: web.BaseRequest) -> web.StreamResponse:
    """Drop the connection with a TCP RST before any byte of the response."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except (OSError, AttributeError):
                pass  # no RST on this transport; the abort still closes it
        transport.abort()
    # aiohttp's attempt to send this fails silently on the closed transport.
    return empty_response()
