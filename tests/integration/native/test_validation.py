"""Bad input: 400/413/415 quickly, never 500, never forwarded."""

import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.fixtures.gateway import RunningGateway

BAD_BODIES = [
    b"",
    b"not json",
    b"[]",
    b'{"model": "llama3.2", "messages": "x"}',
    b'{"model": "llama3.2", "messages": [], "stream": "yes"}',
    b'{"model": "llama3.2", "MODEL": "other", "messages": []}',
    b'{"model": "llama3.2", "messages": [], "options": {"Num_Predict": 99999}}',
    b'{"model": "llama3.2", "messages": [], "options": {"num_predict": 999999}}',
    b'{"model": "llama3.2", "messages": [{"role": "user", "content": "\\ud800"}]}',
    b'{"model": "llama3.2", "messages": [], "options": {"temperature": NaN}}',
    b'{"model": "llama3.2", "messages": [], "x": ' + b"1" * 5000 + b"}",
    b'{"model": "llama3.2", "messages": [], "x": ' + b"[" * 100 + b"]" * 100 + b"}",
    b'{"model": "llama3.2", "messages": [' + b'{"role": "user", "content": "a"},' * 3 + b"5]}",
]


@pytest.fixture
def auth(gateway: RunningGateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {gateway.admin.tenant_and_key('acme')}"}


@pytest.mark.parametrize("body", BAD_BODIES)
def test_bad_bodies_are_400_and_not_forwarded(
    gateway: RunningGateway, auth: dict[str, str], body: bytes
) -> None:
    resp = httpx.post(gateway.url + "/api/chat", content=body, headers=auth)
    assert resp.status_code == 400, resp.text
    assert set(resp.json()) == {"error", "request_id"}
    assert gateway.proxied() == []


def test_oversized_body_413_with_length_and_chunked(
    gateway: RunningGateway, auth: dict[str, str]
) -> None:
    cap = gateway.settings.max_request_body_bytes
    big = b'{"model":"llama3.2","prompt":"' + b"a" * cap + b'"}'
    resp = httpx.post(gateway.url + "/api/generate", content=big, headers=auth)
    assert resp.status_code == 413

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"model":"llama3.2","prompt":"'
        for _ in range(cap // 1000 + 2):
            yield b"a" * 1000
        yield b'"}'

    resp = httpx.post(gateway.url + "/api/generate", content=chunks(), headers=auth)
    assert resp.status_code == 413
    assert gateway.proxied() == []


def test_declared_oversize_refused_without_reading_body(
    gateway: RunningGateway, auth: dict[str, str]
) -> None:
    parts = urlsplit(gateway.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: {auth['Authorization']}\r\n".encode()
            + b"Content-Length: 1000000000\r\n\r\n{"
        )
        started = time.monotonic()
        data = sock.recv(4096)
    assert data.startswith(b"HTTP/1.1 413") and time.monotonic() - started < 2


def test_compressed_bodies_refused(gateway: RunningGateway, auth: dict[str, str]) -> None:
    import gzip

    body = gzip.compress(b'{"model":"llama3.2","prompt":"x"}')
    resp = httpx.post(
        gateway.url + "/api/generate",
        content=body,
        headers={**auth, "Content-Encoding": "gzip"},
    )
    assert resp.status_code == 415


def test_hundred_thousand_messages_is_quick(gateway: RunningGateway, auth: dict[str, str]) -> None:
    body = b'{"model":"llama3.2","messages":[' + b",".join([b"{}"] * 100_000) + b"]}"
    started = time.monotonic()
    resp = httpx.post(gateway.url + "/api/chat", content=body, headers=auth)
    assert resp.status_code in (400, 413) and time.monotonic() - started < 2
