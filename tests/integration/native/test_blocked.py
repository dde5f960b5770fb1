"""Deny by default: Ollama's management, account and cloud endpoints never reach a backend."""

import http.client
import socket
from urllib.parse import urlsplit

import pytest

from tests.fixtures.gateway import RunningGateway
from tests.unit.api.test_paths import BLOCKED

METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"]
EXTRA = ["/api/%EF%BD%90ull", "/api/pull%3bx", "/api/blobs/sha256%3Aabc", "/api/experimental/x"]


def _send(url: str, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        encoded = path.encode("utf-8").decode("latin-1") if not path.isascii() else path
        if not encoded.isascii():
            encoded = "".join(c if ord(c) < 128 else f"%{ord(c):02X}" for c in encoded)
        conn.putrequest(method, encoded, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        body = b'{"model":"llama3.2"}'
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_blocked_corpus_never_reaches_backend(gateway: RunningGateway) -> None:
    key = gateway.admin.tenant_and_key("acme")
    assert gateway.mock is not None
    gateway.mock.clear_requests()
    tried = 0
    for path in [*BLOCKED, *EXTRA]:
        for method in METHODS:
            for headers in (
                {},
                {"Authorization": f"Bearer {key}"},
                {"Authorization": f"Bearer {key}", "X-HTTP-Method-Override": "GET"},
            ):
                status, _ = _send(gateway.url, method, path, headers)
                tried += 1
                assert status == 403, (method, path, status)
    assert tried == (len(BLOCKED) + len(EXTRA)) * len(METHODS) * 3
    assert gateway.proxied() == []


def test_absolute_form_and_method_override(gateway: RunningGateway) -> None:
    key = gateway.admin.tenant_and_key("acme")
    assert gateway.mock is not None
    gateway.mock.clear_requests()
    parts = urlsplit(gateway.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(
            f"POST http://evil.example/api/pull HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {key}\r\nContent-Length: 2\r\n"
            "Connection: close\r\n\r\n{}".encode()
        )
        data = sock.recv(4096)
    assert data.startswith(b"HTTP/1.1 403") or data.startswith(b"HTTP/1.1 400")
    status, _ = _send(
        gateway.url,
        "POST",
        "/api/chat",
        {"Authorization": f"Bearer {key}", "X-HTTP-Method-Override": "DELETE"},
    )
    assert status == 200  # the override changes nothing: it is an ordinary chat
    assert [r["path"] for r in gateway.proxied()] == ["/api/chat"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/api/chat", 405), ("DELETE", "/v1/models", 405), ("GET", "/nope", 404),
     ("GET", "/API/chat", 404), ("POST", "/api/chat/", 404), ("GET", "/", 404)],
)  # fmt: skip
def test_unknown_paths_and_wrong_methods(
    gateway: RunningGateway, method: str, path: str, status: int
) -> None:
    code, body = _send(gateway.url, method, path, {})
    assert code == status and b"request_id" in body
