"""Blocked endpoints beyond ``tests/integration/native/test_blocked.py``: request targets
sent as raw bytes (no client library normalises them), NUL and full-width spellings,
absolute-form, methods that ``http.client`` would not send, and every common
method-override and URL-override header on the allowed routes."""

from __future__ import annotations

import orjson
import pytest

from tests.adversarial.support import raw_exchange, statuses
from tests.fixtures.gateway import RunningGateway

METHODS = [b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS", b"TRACE",
           b"PROPFIND", b"PURGE"]  # fmt: skip

# Spellings that any decoder (percent-decoding, NFKC, case folding, dot segments, `;`
# parameters, backslashes, NUL truncation) turns into a management path: always 403.
BLOCKED_TARGETS = [
    b"/api/pull%00", b"/api/pull%00.json", b"/api%00/pull", b"/api/pu%00ll", b"/%00/api/pull",
    b"/api/ps%00", b"/%EF%BD%81%EF%BD%90%EF%BD%89/%EF%BD%90%EF%BD%95%EF%BD%8C%EF%BD%8C",
    b"/%EF%BC%A1PI/PULL", b"/api/%EF%BD%90ull", b"/api/pull%20", b"/api/pull%09", b"/api/pull..",
    b"/api/pull%3f", b"/api/pull%23x", b"/api/pull#frag", b"/api/pull?x=1", b"/./api/pull",
    b"/api/blobs/../pull", b"/api/PULL%2F", b"/%2e/api/pull", b"/api/%2e%2e/api/pull",
    b"/api/pull%2", b"/api/pull%zz", b"/api/pull%", b"/api/chat%2f..%2fpull",
    b"/api/chat/..;/pull", b"/api/chat;/../pull", b"/api/version/../pull",
    b"/v1/models/..%2f..%2fapi%2fpull", b"/v1/../api/ps", b"/API/PS", b"/api/tags/../ps",
    b"/api/p%75ll", b"/api/%2570%2575ll", b"/api/%25%37%30ull", b"/%5capi%5cpull",
    b"/api\\pull", b"/api/pull%5c", b"//api/pull", b"/api/me", b"/api/signout",
    b"/api/experimental/web_search", b"/api/blobs/sha256:abc", b"/api/v2/anything",
    b"/api/create", b"/api/copy", b"/api/delete", b"/api/push",
    # absolute-form: the authority is ignored, the path decides
    b"http://evil.example/api/pull", b"HTTP://EVIL/API/PULL", b"http://127.0.0.1:11434/api/pull",
    b"http://x/api/chat/../pull",
]  # fmt: skip
# Raw bytes that no HTTP/1.1 request-target may hold (the parser answers 400) and spellings
# that decode to no management path (404): refused either way, never forwarded.
REFUSED_TARGETS = [
    "/ａｐｉ/ｐｕｌｌ".encode(), "/api/ｐｕｌｌ".encode(), "/api/pu\u0131l".encode(),
    "/api/\u212apull".encode(), "/api/pull\u200b".encode(), "/api/\u00adpull".encode(),
    b"/api/pull\x00", b"/api/chat\x00", b"/api/pull\t", b"/api/pull\x7f", b"api/pull",
    b"/api%c0%afpull", b"//evil/api/pull", b"*", b"/v1/models/%2e%2e", b"/api/show%00",
    b"/api/chat%00", b"/api/embed%00",
]  # fmt: skip


def _request(method: bytes, target: bytes, key: str, extra: bytes = b"") -> bytes:
    body = b'{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}'
    return (
        method + b" " + target + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + key.encode() + b"\r\nContent-Type: application/json\r\nConnection: close\r\n" + extra
        + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )  # fmt: skip


def test_raw_targets_times_methods_never_reach_a_backend(gateway: RunningGateway) -> None:
    key = gateway.admin.tenant_and_key("acme")
    assert gateway.mock is not None
    seen: dict[int, int] = {}
    for target in BLOCKED_TARGETS + REFUSED_TARGETS:
        for method in METHODS:
            gateway.mock.clear_requests()
            answer = statuses(raw_exchange(gateway.url, _request(method, target, key)))
            assert len(answer) == 1, (method, target, answer)
            status = answer[0]
            seen[status] = seen.get(status, 0) + 1
            if target in BLOCKED_TARGETS:
                assert status == 403, (method, target, status)
            else:
                assert status in (400, 404), (method, target, status)
            assert gateway.proxied() == [], (method, target)
    cases = (len(BLOCKED_TARGETS) + len(REFUSED_TARGETS)) * len(METHODS)
    print(f"[adversarial] blocked/raw targets: cases={cases} statuses={seen} forwarded=0")


OVERRIDES = [
    b"X-HTTP-Method-Override: DELETE\r\n", b"X-HTTP-Method: DELETE\r\n",
    b"X-Method-Override: DELETE\r\n", b"X-Original-URL: /api/pull\r\n",
    b"X-Rewrite-URL: /api/delete\r\n", b"X-Forwarded-Path: /api/pull\r\n",
    b"X-Forwarded-Prefix: /api/pull\r\n", b"X-Envoy-Original-Path: /api/pull\r\n",
    b"X-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\n",
    b"Forwarded: for=1.2.3.4;host=evil.example;proto=https\r\n",
    b"X-Forwarded-For: 127.0.0.1\r\nX-Real-IP: 127.0.0.1\r\n",
]  # fmt: skip


@pytest.mark.parametrize("target", [b"/api/chat", b"/api/chat?_method=DELETE",
                                    b"http://evil.example/api/chat"])  # fmt: skip
def test_overrides_on_allowed_routes_change_nothing(gateway: RunningGateway, target: bytes) -> None:
    """The allowed route is served as itself: same upstream path, method and host, no
    client header forwarded, whatever override the client adds."""
    key = gateway.admin.tenant_and_key("acme")
    assert gateway.mock is not None
    for extra in OVERRIDES:
        gateway.mock.clear_requests()
        raw = raw_exchange(gateway.url, _request(b"POST", target, key, extra))
        assert statuses(raw) == [200], (target, extra, raw[:200])
        (upstream,) = gateway.proxied()
        assert (upstream["method"], upstream["raw_path"]) == ("POST", "/api/chat")
        assert upstream["query"] == {}
        assert upstream["headers"]["host"] == gateway.mock.url.split("//", 1)[1]
        sent = orjson.dumps(upstream["headers"]).lower()
        assert b"evil" not in sent and b"forwarded" not in sent and b"override" not in sent
        assert b"authorization" not in sent and key.encode().lower() not in sent
    print(f"[adversarial] blocked/overrides: cases={len(OVERRIDES)} on {target!r}, all served "
          "as POST /api/chat")  # fmt: skip
