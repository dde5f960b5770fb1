"""Protocol: request smuggling shapes on a raw socket, and slow clients (slowloris).

Every smuggling shape carries a second, complete and authorised ``POST /api/chat``
where a lenient parser would see a new request: it must never reach the backend. The
gateway runs on ``server.uvicorn_config`` (httptools + head/body deadlines), as
``neuronetz-gateway serve`` does once wired.
"""

from __future__ import annotations

import pickle
import socket
import statistics
import threading
import time
from collections.abc import Callable

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from neuronetz_gateway.db.models import RequestRecord
from neuronetz_gateway.server import (
    DeadlineHttpToolsProtocol,
    DeadlineProtocolFactory,
    uvicorn_config,
)
from tests.adversarial.conftest import MakeServed
from tests.adversarial.support import address, raw_exchange, read_until_closed, statuses
from tests.fixtures.gateway import RunningGateway

CHAT = b'{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}'


def _smuggled(auth: bytes) -> bytes:
    return (
        b"POST /api/chat HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(CHAT)).encode() + b"\r\n\r\n" + CHAT
    )


def smuggling_corpus(auth: bytes) -> dict[str, bytes]:
    inner = _smuggled(auth)
    head = b"POST /api/chat HTTP/1.1\r\nHost: x\r\n" + auth
    n = str(len(inner)).encode()
    return {
        "CL then TE": head + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        + inner,
        "TE then CL": head + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"
        + inner,
        "duplicate CL, different": head + b"Content-Length: 0\r\nContent-Length: " + n
        + b"\r\n\r\n" + inner,
        "duplicate CL, equal": head + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}" + inner,
        "CL list": head + b"Content-Length: 2, 2\r\n\r\n{}" + inner,
        "CL with plus": head + b"Content-Length: +2\r\n\r\n{}" + inner,
        "CL negative": head + b"Content-Length: -1\r\n\r\n" + inner,
        "CL hex": head + b"Content-Length: 0x2\r\n\r\n{}" + inner,
        "space before colon": head + b"Content-Length : 2\r\n\r\n{}" + inner,
        "bare LF in chunk size": head + b"Transfer-Encoding: chunked\r\n\r\n2\n{}\r\n0\r\n\r\n"
        + inner,
        "bare LF after chunk extension": head
        + b"Transfer-Encoding: chunked\r\n\r\n2;x\n{}\r\n0\r\n\r\n" + inner,
        "chunk size overflow": head
        + b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF2\r\n{}\r\n0\r\n\r\n" + inner,
        "CL in chunked trailer": head
        + b"Transfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n" + inner,
        "obs-fold": head + b"X-A: b\r\n c\r\nContent-Length: 2\r\n\r\n{}" + inner,
        "obs-fold TE value": head + b"Transfer-Encoding:\r\n chunked\r\nContent-Length: 4\r\n\r\n"
        b"0\r\n\r\n" + inner,
        "space in TE name": head + b"Transfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n"
        b"0\r\n\r\n" + inner,
        "TE xchunked": head + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + inner,
        "TE chunked, gzip": head + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n" + inner,
        "TE chunked + identity": head
        + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n" + inner,
        "TE on HTTP/1.0": inner.replace(b"HTTP/1.1", b"HTTP/1.0", 1).split(b"Content-Type")[0]
        + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + inner,
        "bare LF line ends": head.replace(b"\r\n", b"\n") + b"Content-Length: 2\n\n{}" + inner,
        "bare CR in header": head + b"X: a\rContent-Length: 0\r\nContent-Length: 2\r\n\r\n{}"
        + inner,
        "NUL in header value": head + b"X: a\x00b\r\nContent-Length: 2\r\n\r\n{}" + inner,
        "lower-case method": inner.replace(b"POST", b"post", 1),
        "HTTP/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + inner,
        "CONNECT": b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n" + inner,
    }  # fmt: skip


def _auth(gw: RunningGateway) -> bytes:
    return f"Authorization: Bearer {gw.admin.tenant_and_key('acme')}\r\n".encode()


def test_smuggling_corpus_is_refused_and_nothing_is_forwarded(served: RunningGateway) -> None:
    corpus = smuggling_corpus(_auth(served))
    assert served.mock is not None
    outcomes: dict[str, list[int]] = {}
    for name, payload in corpus.items():
        served.mock.clear_requests()
        raw = raw_exchange(served.url, payload, timeout=3)
        outcomes[name] = statuses(raw)
        assert outcomes[name] in ([400], []), (name, raw[:200])  # 400 and close, or closed
        assert served.proxied() == [], name
    print(f"[adversarial] protocol/smuggling: cases={len(corpus)} all 400+close, 0 forwarded")


@pytest.mark.parametrize(
    "shape",
    ["GET with a body", "Connection: close then more", "Upgrade: h2c", "Upgrade: websocket"],
)
def test_bodies_and_upgrades_do_not_start_a_second_request(
    served: RunningGateway, shape: str
) -> None:
    auth = _auth(served)
    inner = _smuggled(auth)
    head = b"GET /api/tags HTTP/1.1\r\nHost: x\r\n" + auth
    payload = {
        "GET with a body": head + b"Content-Length: " + str(len(inner)).encode() + b"\r\n\r\n",
        "Connection: close then more": head + b"Connection: close\r\n\r\n",
        "Upgrade: h2c": head + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
        "Upgrade: websocket": head + b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    }[shape] + inner
    raw = raw_exchange(served.url, payload, timeout=2)
    assert statuses(raw) == [200], raw  # the tags answer only; the inner request is never parsed
    assert served.proxied() == []


def test_client_gone_mid_body_is_never_recorded_as_500(served: RunningGateway) -> None:
    """The client gets 400 from the server (a chunked body that breaks after the app began
    reading it) or nothing (it left mid-body); the gateway must record a client-side
    failure, never an internal error."""
    auth = _auth(served)
    head = b"POST /api/chat HTTP/1.1\r\nHost: x\r\n" + auth + b"Transfer-Encoding: chunked\r\n\r\n"
    for tail in (b"2\n{}\r\n0\r\n\r\n", b"FFFFFFFFFFFFFFFFF2\r\n{}\r\n", b"2;x\n{}\r\n"):
        assert statuses(raw_exchange(served.url, head + b"1\r\n{\r\n" + tail, timeout=3)) == [400]
    with socket.create_connection(address(served.url), timeout=5) as sock:
        sock.sendall(
            b"POST /api/chat HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 99\r\n\r\n{"
        )
        time.sleep(0.3)
    served.wait_audit_flushed()
    rows = list(served.admin.query(lambda s: s.scalars(select(RequestRecord.status))))
    assert len(rows) == 4 and 500 not in rows, rows


# --- slow clients ----------------------------------------------------------------------

HEAD_S = 1.0
BODY_S = 1.5


@pytest.fixture
def deadlined(make_served: MakeServed) -> RunningGateway:
    return make_served(header_timeout_s=HEAD_S, body_timeout_s=BODY_S)


def _open(gw: RunningGateway) -> socket.socket:
    return socket.create_connection(address(gw.url), timeout=10)


def _closed_after(sock: socket.socket, feed: Callable[[], bytes | None], limit: float) -> float:
    """Keep calling ``feed`` (bytes to send every 0.2 s) until the gateway closes; return
    the seconds that took."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < limit:
        chunk = feed()
        try:
            if chunk:
                sock.sendall(chunk)
            data = sock.recv(4096)
            if not data or b"408" in data:
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
    raise AssertionError(f"connection still open after {limit} s")


def test_silent_connection_gets_408_at_the_head_deadline(deadlined: RunningGateway) -> None:
    with _open(deadlined) as sock:
        started = time.monotonic()
        data = read_until_closed(sock, 5)
    assert data.startswith(b"HTTP/1.1 408") and b"connection: close" in data
    assert HEAD_S * 0.8 < time.monotonic() - started < HEAD_S + 1.5


def test_trickled_head_and_crlf_padding_are_cut(deadlined: RunningGateway) -> None:
    head = iter([b"GET /api/tags HTTP/1.1\r\n", *[b"X-Slow: %d\r\n" % i for i in range(100)]])
    with _open(deadlined) as sock:
        elapsed = _closed_after(sock, lambda: next(head), 5)
    assert elapsed < HEAD_S + 1.5
    # After one good request, CRLFs between requests cancel uvicorn's keep-alive timer.
    with _open(deadlined) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        elapsed = _closed_after(sock, lambda: b"\r\n", 5)
    assert elapsed < HEAD_S + 1.5


def test_trickled_body_is_cut_at_the_body_deadline(deadlined: RunningGateway) -> None:
    auth = _auth(deadlined)
    with _open(deadlined) as sock:
        sock.sendall(
            b"POST /api/chat HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 1000\r\n\r\n{"
        )
        elapsed = _closed_after(sock, lambda: b" ", 6)
    assert BODY_S * 0.8 < elapsed < BODY_S + 1.5
    assert deadlined.proxied() == []


def test_keep_alive_and_long_streams_are_untouched(deadlined: RunningGateway) -> None:
    key = deadlined.admin.tenant_and_key("acme")
    assert deadlined.mock is not None
    deadlined.mock.configure(chunk_delay_s=0.2, chunks=10)  # a 2 s stream: > both deadlines
    headers = {"Authorization": f"Bearer {key}"}
    chat = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=deadlined.url, headers=headers, timeout=10) as client:
        resp = client.post("/api/chat", json=chat)
        assert resp.status_code == 200 and '"done":true' in resp.text.replace(" ", "")
        deadlined.mock.configure(chunk_delay_s=0, chunks=1)
        with _open(deadlined) as sock:  # one connection, idle longer than the head deadline
            for _ in range(3):
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = b""
                while not answer.endswith(b'{"status":"ok"}'):  # head and body may split
                    chunk = sock.recv(4096)
                    assert chunk, "connection closed between requests"
                    answer += chunk
                assert answer.startswith(b"HTTP/1.1 200")
                time.sleep(HEAD_S * 1.3)  # between requests only keep-alive (15 s) applies
        # A big body sent at full speed is far within the body deadline.
        big = {"model": "llama3.2", "stream": False, "prompt": "a " * 100_000}
        assert client.post("/api/generate", json=big).status_code == 200
        assert resp.http_version == "HTTP/1.1"
    assert len(deadlined.proxied()) == 2


def test_latency_holds_while_slow_clients_hold_connections(deadlined: RunningGateway) -> None:
    def median_latency() -> float:
        samples = []
        with httpx.Client(base_url=deadlined.url, timeout=5) as client:
            for _ in range(30):
                started = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    baseline = median_latency()
    stop = threading.Event()
    cut = [0]

    def slowloris() -> None:
        while not stop.is_set():
            try:
                with _open(deadlined) as sock:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\n")
                    while not stop.is_set():
                        sock.sendall(b"X: y\r\n")
                        if stop.wait(0.3):
                            break
            except OSError:
                cut[0] += 1

    attackers = [threading.Thread(target=slowloris, daemon=True) for _ in range(100)]
    for thread in attackers:
        thread.start()
    time.sleep(HEAD_S + 0.5)
    try:
        under_attack = median_latency()
    finally:
        stop.set()
        for thread in attackers:
            thread.join(5)
    print(
        f"[adversarial] protocol/slowloris: 100 slow clients, cut={cut[0]}, "
        f"median /healthz {baseline * 1000:.1f} ms → {under_attack * 1000:.1f} ms"
    )
    assert cut[0] >= 100  # every slow client was cut at least once
    assert under_attack < baseline * 5 + 0.02


def test_plain_uvicorn_keeps_a_silent_connection_open(
    deadlined: RunningGateway,
) -> None:
    """Why ``server.protocol`` exists: uvicorn's own httptools protocol has no deadline
    before the first request (kept here so an upgrade that adds one is noticed)."""
    config = uvicorn.Config(deadlined.app, port=0, http="httptools", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.settimeout(HEAD_S * 2)
            with pytest.raises(TimeoutError):
                sock.recv(1)  # still open, nothing sent, long past our head deadline
    finally:
        server.should_exit = True
        thread.join(10)


def test_server_config_is_the_production_one_and_survives_worker_spawn() -> None:
    """Workers are spawned with a pickled config: the protocol must survive that."""
    default = uvicorn_config("neuronetz_gateway.app:app_from_env", host="h", port=1, factory=True)
    assert default.http is DeadlineHttpToolsProtocol
    assert (default.proxy_headers, default.server_header, default.access_log) == (
        False,
        False,
        False,
    )
    tuned = uvicorn_config("m:app", host="h", port=1, workers=2, header_timeout_s=2.5)
    factory = pickle.loads(pickle.dumps(tuned.http))  # noqa: S301 - our own object
    assert factory == DeadlineProtocolFactory(header_timeout_s=2.5)
    with pytest.raises(ValueError):
        DeadlineProtocolFactory(header_timeout_s=0)
