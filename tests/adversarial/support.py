"""What the adversarial suite shares: a gateway served exactly as ``serve`` serves it
(``server.uvicorn_config``: httptools with head/body deadlines), raw sockets, and a count
of what was tried, for ``docs/ADVERSARIAL.md``."""

from __future__ import annotations

import socket
import time
from typing import Any
from urllib.parse import urlsplit

from neuronetz_gateway.settings import Settings
from tests.fixtures.gateway import LoopThread, RunningGateway, start_gateway


def start_served_gateway(
    settings: Settings,
    loop: LoopThread,
    *,
    header_timeout_s: float | None = None,
    body_timeout_s: float | None = None,
) -> RunningGateway:
    """``tests.fixtures.gateway.start_gateway`` with the server's deadlines shortened."""
    options: dict[str, float] = {}
    if header_timeout_s is not None:
        options["header_timeout_s"] = header_timeout_s
    if body_timeout_s is not None:
        options["body_timeout_s"] = body_timeout_s
    return start_gateway(settings, loop, **options)


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def raw_exchange(url: str, payload: bytes, *, timeout: float = 5.0, idle: float = 0.5) -> bytes:
    """Send raw bytes and read until the gateway closes, or until it has said something
    and then stayed silent for ``idle`` seconds (a kept-alive connection).

    No half-close: uvicorn drops a connection on the client's FIN even with a response
    pending, which would hide the answer."""
    with socket.create_connection(address(url), timeout=timeout) as sock:
        sock.sendall(payload)
        return read_until_closed(sock, timeout, idle=idle)


def read_until_closed(sock: socket.socket, timeout: float, *, idle: float | None = None) -> bytes:
    data = bytearray()
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(min(left, idle) if idle is not None and data else left)
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, OSError):
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


def statuses(raw: bytes) -> list[int]:
    """Status codes of every response in a raw HTTP/1.1 byte stream (bodies skipped)."""
    found: list[int] = []
    for line in raw.split(b"\r\n"):
        if line.startswith(b"HTTP/1.") and len(line) >= 12 and line[9:12].isdigit():
            found.append(int(line[9:12]))
    return found


class Tally:
    """Cases tried per group, printed by tests run with ``-s`` (figures for the docs)."""

    counts: dict[str, int] = {}  # noqa: RUF012 - one process-wide tally on purpose

    @classmethod
    def add(cls, group: str, n: int = 1) -> None:
        cls.counts[group] = cls.counts.get(group, 0) + n

    @classmethod
    def report(cls, group: str, **extra: Any) -> None:
        details = " ".join(f"{k}={v}" for k, v in extra.items())
        print(f"[adversarial] {group}: cases={cls.counts.get(group, 0)} {details}".rstrip())
