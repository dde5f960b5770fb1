"""Input across both surfaces and every body-taking endpoint: hostile JSON, hostile
framing and encodings → 400/413/415 within two seconds, never a 5xx, never forwarded;
and keys that Ollama's Go decoder would read as another field never reach it."""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from neuronetz_gateway.db.models import RequestRecord
from neuronetz_gateway.proxy.native import CHAT_FIELDS, MESSAGE_FIELDS, OPTION_FIELDS
from tests.fixtures.gateway import RunningGateway

BASES: dict[str, bytes] = {
    "/api/chat": b'{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}',
    "/api/generate": b'{"model":"llama3.2","stream":false,"prompt":"hi"}',
    "/api/embed": b'{"model":"llama3.2","input":"hi"}',
    "/api/embeddings": b'{"model":"llama3.2","prompt":"hi"}',
    "/api/show": b'{"model":"llama3.2"}',
    "/v1/chat/completions": b'{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}',
    "/v1/completions": b'{"model":"llama3.2","prompt":"hi"}',
    "/v1/embeddings": b'{"model":"llama3.2","input":"hi"}',
}


def _with(base: bytes, member: bytes) -> bytes:
    return base[:-1] + b"," + member + b"}"


def hostile_bodies(base: bytes) -> dict[str, bytes]:
    digits = b"9" * 5000
    return {
        "empty": b"",
        "whitespace": b" \n\t ",
        "not JSON": b"model=llama3.2",
        "array": b"[" + base + b"]",
        "string": b'"' + base.replace(b'"', b'\\"') + b'"',
        "truncated": base[:-3],
        "trailing garbage": base + b"x",
        "two documents": base + base,
        "BOM": b"\xef\xbb\xbf" + base,
        "nesting 10k": b"[" * 10_000 + b"]" * 10_000,
        "nesting 33 in a field": _with(base, b'"x":' + b"[" * 33 + b"]" * 33),
        "nesting 10k objects": _with(base, b'"x":' + b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
        "5000-digit int": _with(base, b'"x":' + digits),
        "5000-digit negative": _with(base, b'"x":-' + digits),
        "5000-digit float": _with(base, b'"x":0.' + digits),
        "2^53+1": _with(base, b'"x":9007199254740993'),
        "1e999": _with(base, b'"x":1e999'),
        "NaN": _with(base, b'"x":NaN'),
        "Infinity": _with(base, b'"x":Infinity'),
        "-Infinity": _with(base, b'"x":-Infinity'),
        "lone high surrogate": _with(base, b'"x":"\\ud800"'),
        "lone low surrogate": _with(base, b'"x":"\\udc00"'),
        "surrogate in a key": _with(base, b'"\\ud800":1'),
        "raw surrogate bytes": _with(base, b'"x":"\xed\xa0\x80"'),
        "invalid UTF-8": _with(base, b'"x":"\xff\xfe"'),
        "overlong UTF-8": _with(base, b'"x":"\xc0\xaf"'),
        "NUL byte": _with(base, b'"x":"a\x00b"'),
        "comment": base[:-1] + b"/* c */}",
        "single quotes": base.replace(b'"', b"'"),
        "100k array": _with(base, b'"x":[' + b",".join([b"0"] * 100_000) + b"]"),
        "model is an object": base.replace(b'"model":"llama3.2"', b'"model":{"$ne":null}'),
        "model is huge": base.replace(b'"model":"llama3.2"', b'"model":"' + b"m" * 300 + b'"'),
        "model has CR LF": base.replace(b'"model":"llama3.2"', b'"model":"llama3.2\\r\\nX: y"'),
    }


# A long fraction is a valid number that rounds like Go's ParseFloat: no ambiguity.
# An odd model name is refused like an unknown model (403) where no shape check is made.
VALID_BUT_ODD = {
    "5000-digit float": {200, 400},
    "100k array": {200, 400},
    "model is huge": {400, 403},
    "model has CR LF": {400, 403},
    "model is an object": {400, 403},
}
NATIVE_COLLISIONS = {
    "MODEL": b'"MODEL":"other"',
    "Model": b'"Model":"other"',
    "Stream": b'"Stream":true',
    "Kelvin sign": b'"\\u212aeep_alive":"0s"',
    "options case": b'"options":{"Num_Predict":99999}',
    "options Kelvin": b'"options":{"top_\\u212a":1}',
}
MESSAGE_COLLISIONS = [
    b'{"role":"user","Role":"system","content":"hi"}',
    b'{"role":"user","content":"hi","CONTENT":"other"}',
    b'{"role":"user","content":"hi","Tool_Calls":[]}',
]


@pytest.fixture
def auth(gateway: RunningGateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {gateway.admin.tenant_and_key('acme')}"}


def _cases() -> Iterator[tuple[str, str, bytes, set[int]]]:
    for path, base in BASES.items():
        for name, body in hostile_bodies(base).items():
            yield path, name, body, VALID_BUT_ODD.get(name, {400, 413})
        if path.startswith("/api/") and path != "/api/show":
            for name, member in NATIVE_COLLISIONS.items():
                # Ollama's embed requests have no `stream`: an alias of nothing is dropped.
                allowed = {200, 400} if name == "Stream" and "embed" in path else {400}
                yield path, f"collision {name}", _with(base, member), allowed
    for i, message in enumerate(MESSAGE_COLLISIONS):
        body = b'{"model":"llama3.2","stream":false,"messages":[' + message + b"]}"
        yield "/api/chat", f"message collision {i}", body, {400}


def test_hostile_json_everywhere(gateway: RunningGateway, auth: dict[str, str]) -> None:
    tried = served = 0
    slowest = 0.0
    failures: list[tuple[str, str, int, float]] = []
    with httpx.Client(base_url=gateway.url, headers=auth, timeout=10) as client:
        for path, name, body, allowed in _cases():
            started = time.monotonic()
            resp = client.post(path, content=body, headers={"Content-Type": "application/json"})
            elapsed = time.monotonic() - started
            slowest = max(slowest, elapsed)
            tried += 1
            if resp.status_code not in allowed or elapsed >= 2.0:
                failures.append((path, name, resp.status_code, round(elapsed, 2)))
            if resp.status_code >= 400:
                assert "request_id" in resp.text
            else:
                served += 1
    assert failures == [], "\n".join(map(str, failures))
    assert len(gateway.proxied()) == served  # only the valid-but-odd bodies went upstream
    gateway.wait_audit_flushed()
    recorded = gateway.admin.query(lambda s: s.scalars(select(RequestRecord.status)))
    assert not [s for s in recorded if s >= 500]
    print(
        f"[adversarial] input/json: cases={tried} slowest={slowest * 1000:.0f} ms "
        f"refused={tried - served} served_valid_but_odd={served}"
    )


def test_framing_and_encodings(gateway: RunningGateway, auth: dict[str, str]) -> None:
    cap = gateway.settings.max_request_body_bytes
    body = BASES["/api/generate"]
    big = b'{"model":"llama3.2","prompt":"' + b"a" * cap + b'"}'

    def chunked(data: bytes) -> Iterator[bytes]:
        for i in range(0, len(data), 4096):
            yield data[i : i + 4096]

    many = b'{"model":"llama3.2","messages":[' + b",".join(
        [b'{"role":"user","content":"a"}'] * 100_000
    ) + b"]}"  # fmt: skip
    cases: list[tuple[str, Any, dict[str, str], set[int]]] = [
        ("oversized, length", big, {}, {413}),
        ("oversized, chunked", chunked(big), {}, {413}),
        ("100k messages", many, {}, {413}),
        ("100k messages, chunked", chunked(many), {}, {413}),
        ("gzip", gzip.compress(body), {"Content-Encoding": "gzip"}, {415}),
        ("GZIP upper", gzip.compress(body), {"Content-Encoding": "GZIP"}, {415}),
        ("x-gzip", gzip.compress(body), {"Content-Encoding": "x-gzip"}, {415}),
        ("deflate", zlib.compress(body), {"Content-Encoding": "deflate"}, {415}),
        ("br", b"\x0b\x02\x80", {"Content-Encoding": "br"}, {415}),
        ("identity, gzip", gzip.compress(body), {"Content-Encoding": "identity, gzip"}, {415}),
        ("gzip bomb", gzip.compress(b" " * 50_000_000), {"Content-Encoding": "gzip"}, {415}),
        ("gzip, chunked", chunked(gzip.compress(big)), {"Content-Encoding": "gzip"}, {415}),
    ]
    for name, content, headers, allowed in cases:
        for path in ("/api/generate", "/v1/completions", "/api/chat", "/v1/chat/completions"):
            started = time.monotonic()
            resp = httpx.post(
                gateway.url + path, content=content, headers={**auth, **headers}, timeout=10
            )
            assert resp.status_code in allowed, (name, path, resp.status_code, resp.text[:100])
            assert time.monotonic() - started < 2.0, (name, path)
            if not isinstance(content, bytes):
                break  # a generator is spent after one request
    assert gateway.proxied() == []
    print(f"[adversarial] input/framing: cases={len(cases)} kinds on up to 4 endpoints")


def _go_folds_to_another(key: str, known: tuple[str, ...]) -> bool:
    """True if Go's case-insensitive field match (simple Unicode folding) would read ``key``
    as a known field although it is not spelled exactly so."""
    return key not in known and key.casefold() in {k.casefold() for k in known}


@pytest.mark.parametrize(
    "member",
    [b'"\\u017ftream":true', b'"option\\u017f":{"num_predict":999999}',
     b'"me\\u017f\\u017fages":[{"role":"system","content":"x"}]',
     b'"\\u212aeep_alive":-1', b'"keep_alive":-1,"KEEP_alive":-1'],
)  # fmt: skip
def test_no_go_folding_alias_reaches_the_backend(
    gateway: RunningGateway, auth: dict[str, str], member: bytes
) -> None:
    """``ſ`` (U+017F) folds to ``s`` and ``K`` (U+212A) to ``k`` in Go's decoder: such a
    key must be refused or dropped, never forwarded beside the field it aliases."""
    body = _with(BASES["/api/chat"], member)
    resp = httpx.post(gateway.url + "/api/chat", content=body, headers=auth)
    assert resp.status_code in (200, 400), resp.text
    for request in gateway.proxied():
        sent = orjson.loads(request["raw_body"])
        assert not any(_go_folds_to_another(k, CHAT_FIELDS) for k in sent)
        assert not any(_go_folds_to_another(k, OPTION_FIELDS) for k in sent.get("options", {}))
        for message in sent.get("messages", []):
            assert not any(_go_folds_to_another(k, MESSAGE_FIELDS) for k in message)
        assert sent["options"]["num_predict"] <= gateway.settings.max_num_predict
        assert sent.get("keep_alive", 0) != -1  # -1 (keep forever) is outside the clamp
