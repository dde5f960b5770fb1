"""Streaming: pass-through as it arrives, token accounting, failures after the first byte,
client disconnects."""

import json
import socket
import time
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select

from neuronetz_gateway.db.models import RequestRecord
from tests.fixtures.gateway import RunningGateway

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "one two three four"}]}


def _rows(gateway: RunningGateway) -> list[RequestRecord]:
    gateway.wait_audit_flushed()
    return list(
        gateway.admin.query(lambda s: s.scalars(select(RequestRecord).order_by(RequestRecord.id)))
    )


def test_chunks_arrive_before_the_stream_ends(gateway: RunningGateway) -> None:
    key = gateway.admin.tenant_and_key("acme")
    assert gateway.mock is not None
    gateway.mock.configure(chunk_delay_s=0.2)
    arrivals = []
    with httpx.stream(
        "POST", gateway.url + "/api/chat", json=CHAT, headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        assert resp.headers["content-type"] == "application/x-ndjson"
        for line in resp.iter_lines():
            arrivals.append((time.monotonic(), json.loads(line)))
    assert len(arrivals) >= 5
    assert arrivals[-1][0] - arrivals[0][0] > 0.5  # spread out, not buffered
    final = arrivals[-1][1]
    (row,) = [r for r in _rows(gateway) if r.path == "/api/chat"]
    assert (row.tokens_in, row.tokens_out) == (final["prompt_eval_count"], final["eval_count"])
    assert row.streamed and row.status == 200 and row.ttfb_ms is not None


def test_failure_after_first_byte_ends_with_one_error_line(gateway: RunningGateway) -> None:
    key = gateway.admin.tenant_and_key("acme")
    assert gateway.mock is not None
    for mode in ("after_first_chunk", "error_after_first_chunk"):
        gateway.mock.configure(fail=mode)
        resp = httpx.post(
            gateway.url + "/api/chat", json=CHAT, headers={"Authorization": f"Bearer {key}"}
        )
        lines = [json.loads(line) for line in resp.text.splitlines()]
        assert resp.status_code == 200
        assert lines[0]["message"]["content"] and "error" not in lines[0]
        assert lines[-1] == {"error": "the model server failed while answering"}
        assert sum("error" in line for line in lines) == 1
        assert "goroutine" not in resp.text and "/usr/" not in resp.text


def test_failure_before_first_byte_is_502_without_upstream_text(gateway: RunningGateway) -> None:
    key = gateway.admin.tenant_and_key("acme")
    assert gateway.mock is not None
    gateway.mock.configure(fail="error_500_with_trace")
    resp = httpx.post(
        gateway.url + "/api/chat", json=CHAT, headers={"Authorization": f"Bearer {key}"}
    )
    assert resp.status_code == 502 and "Retry-After" in resp.headers
    assert "goroutine" not in resp.text and "/usr/lib" not in resp.text


def test_client_disconnect_cancels_upstream_within_a_second(gateway: RunningGateway) -> None:
    key = gateway.admin.tenant_and_key("acme")
    assert gateway.mock is not None
    gateway.mock.configure(chunk_delay_s=2.0)
    parts = urlsplit(gateway.url)
    body = json.dumps(CHAT).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    # The gateway closes its upstream connection within a second (Ollama, like any Go
    # server, cancels the request's context when its connection closes).
    deadline = time.monotonic() + 1.0
    while gateway.state.backends[0].in_flight > 0:
        assert time.monotonic() < deadline, "upstream request still open 1 s after disconnect"
        time.sleep(0.02)
    deadline = time.monotonic() + 5.0
    while not any(r["disconnected"] for r in gateway.proxied()):
        assert time.monotonic() < deadline, "the backend never saw the connection close"
        time.sleep(0.05)
    (row,) = [r for r in _rows(gateway) if r.path == "/api/chat"]
    assert row.error_class == "client_disconnected" and row.tokens_out >= 1


def test_non_streamed_disconnect_cancels_upstream(gateway: RunningGateway) -> None:
    key = gateway.admin.tenant_and_key("acme")
    assert gateway.mock is not None
    gateway.mock.configure(delay_s=3.0)
    parts = urlsplit(gateway.url)
    body = json.dumps({**CHAT, "stream": False}).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        time.sleep(0.3)
    deadline = time.monotonic() + 1.0
    while gateway.state.backends[0].in_flight > 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_upstream_busy_503_is_502_for_the_client_with_one_backend(gateway: RunningGateway) -> None:
    key = gateway.admin.tenant_and_key("acme")
    assert gateway.mock is not None
    gateway.mock.configure(fail="busy")
    resp = httpx.post(
        gateway.url + "/api/chat", json=CHAT, headers={"Authorization": f"Bearer {key}"}
    )
    assert resp.status_code == 502
    assert "maximum pending" not in resp.text
