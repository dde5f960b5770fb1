"""Secrets and disclosure: after a run that touches every route, every failure mode of
the backend and every kind of bad key, no key (nor its secret part), no backend token and
no upstream internal (trace, path, Ollama's own error text) is found in the captured
logs, any table of the database, any Redis key or value, ``/metrics``, or any response
the clients received (bodies and headers)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import text

from neuronetz_gateway.auth.keys import generate_key
from neuronetz_gateway.mock_ollama import MockOllamaThread
from neuronetz_gateway.mock_ollama.config import FailMode
from tests.adversarial.conftest import MakeServed
from tests.fixtures import gateway as gateway_fixtures
from tests.fixtures.gateway import RunningGateway

BACKEND_TOKEN = "backend-secret-123"
UPSTREAM_INTERNALS = ["goroutine", "/usr/lib/ollama", "/root/.ollama", "sha256-dde5aa",
                      "panic:", "llama runner", "maximum pending", "segmentation",
                      "Traceback", "server.go", "routes.go"]  # fmt: skip
ROUTES = [("GET", "/api/tags"), ("POST", "/api/chat"), ("POST", "/api/generate"),
          ("POST", "/api/embed"), ("POST", "/api/embeddings"), ("POST", "/api/show"),
          ("GET", "/api/version"), ("GET", "/v1/models"), ("GET", "/v1/models/llama3.2"),
          ("POST", "/v1/chat/completions"), ("POST", "/v1/completions"),
          ("POST", "/v1/embeddings"), ("POST", "/api/pull"), ("DELETE", "/api/delete"),
          ("GET", "/api/ps"), ("GET", "/nope"), ("GET", "/healthz"),
          ("GET", "/readyz")]  # fmt: skip
BODIES: dict[str, dict[str, Any]] = {
    "/api/chat": {"model": "llama3.2", "messages": [{"role": "user", "content": "hello"}]},
    "/api/generate": {"model": "llama3.2", "prompt": "hello"},
    "/api/embed": {"model": "llama3.2", "input": "hello"},
    "/api/embeddings": {"model": "llama3.2", "prompt": "hello"},
    "/api/show": {"model": "llama3.2", "verbose": True},
    "/v1/chat/completions": {"model": "llama3.2", "stream": True,
                             "messages": [{"role": "user", "content": "hello"}]},
    "/v1/completions": {"model": "llama3.2", "prompt": "hello"},
    "/v1/embeddings": {"model": "llama3.2", "input": "hello"},
}  # fmt: skip
FAULTS: list[FailMode | None] = [
    None, "error_500_with_trace", "before_first_chunk", "after_first_chunk",
    "error_after_first_chunk", "busy", "reset_before_first_byte",
]  # fmt: skip


@pytest.fixture
def token_mock(mock: MockOllamaThread) -> MockOllamaThread:
    mock.configure(require_token=BACKEND_TOKEN)  # `mock` resets it afterwards
    return mock


def _redis_dump(url: str) -> bytes:
    client: Any = redis.Redis.from_url(url)  # bytes in, bytes out
    out = bytearray()
    try:
        for name in client.scan_iter(count=1000):
            out += name + b"\n"
            kind = client.type(name)
            if kind == b"string":
                out += client.get(name) or b""
            elif kind == b"hash":
                for k, v in client.hgetall(name).items():
                    out += k + b"=" + v + b"\n"
            elif kind == b"list":
                out += b"\n".join(client.lrange(name, 0, -1))
            elif kind == b"set":
                out += b"\n".join(client.smembers(name))
            elif kind == b"zset":
                out += b"\n".join(m for m, _ in client.zrange(name, 0, -1, withscores=True))
            elif kind == b"stream":
                out += repr(client.xrange(name)).encode()
            out += b"\n"
    finally:
        client.close()
    return bytes(out)


def _database_dump(gw: RunningGateway) -> dict[str, str]:
    async def dump(session: Any) -> dict[str, str]:
        tables = (
            await session.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            )
        ).scalars()
        out = {}
        for table in list(tables):
            rows = await session.execute(text(f'SELECT t::text FROM "{table}" t'))  # noqa: S608
            out[table] = "\n".join(rows.scalars())
        return out

    dumped: dict[str, str] = gw.admin.query(dump)
    return dumped


def _log_text(captured: str) -> str:
    return captured + "\n".join(getattr(gateway_fixtures, "LOG_LINES", []))


def test_nothing_secret_or_internal_leaks_anywhere(
    make_served: MakeServed,
    token_mock: MockOllamaThread,
    pg_url: str,
    redis_url: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    gw = make_served(
        database_url=pg_url,
        redis_url=redis_url,
        ollama_backends=[{"name": "default", "url": token_mock.url, "token": BACKEND_TOKEN}],
        gateway_log_level="DEBUG",
        breaker_failure_threshold=1000,
    )
    admin = gw.admin
    admin.tenant("acme")
    good = admin.key("acme", "good", log_prompts=True)
    revoked = admin.key("acme", "revoked")
    admin.revoke(revoked[:12])
    wrong = good[:12] + generate_key()[12:]
    unknown = generate_key()
    secrets_ = [good, revoked, wrong, unknown]
    keys = {"good": good, "revoked": revoked, "wrong": wrong, "unknown": unknown, "none": None}
    seen: list[str] = []
    requests_ = 0
    with httpx.Client(base_url=gw.url, timeout=20) as client:
        for fault in FAULTS:
            token_mock.configure(fail=fault)
            for name, key in keys.items():
                if fault is not None and name != "good":
                    continue  # failures upstream only matter for accepted keys
                headers = {"Authorization": f"Bearer {key}"} if key else {}
                for method, path in ROUTES:
                    resp = client.request(method, path, json=BODIES.get(path), headers=headers)
                    requests_ += 1
                    assert resp.status_code < 500 or resp.status_code in (502, 503), (
                        fault, name, path, resp.status_code,
                    )  # fmt: skip
                    seen.append(repr(resp.headers.multi_items()) + resp.text)
        token_mock.configure(fail=None)
        metrics = client.get("/metrics").text
    gw.wait_audit_flushed()
    sources = {
        "responses": "\n".join(seen),
        "metrics": metrics,
        "redis": _redis_dump(redis_url).decode("utf-8", "replace"),
        **{f"table {t}": v for t, v in _database_dump(gw).items()},
    }
    captured = capfd.readouterr()
    sources["logs"] = _log_text(captured.out + captured.err)
    assert "request" in sources["logs"] and sources["table requests"]  # the scan sees data
    hits = []
    for where, blob in sources.items():
        needles = [*secrets_, *(k[12:] for k in secrets_), BACKEND_TOKEN, *UPSTREAM_INTERNALS]
        if where != "table api_keys":  # the one place a hash belongs
            needles.append("$argon2")
        if where in ("responses", "metrics"):
            needles.append(f":{token_mock.url.rsplit(':', 1)[1]}")  # the backend's address
        hits += [(where, n[:16]) for n in needles if n in blob]
    print(
        f"[adversarial] disclosure: requests={requests_} sources={len(sources)} "
        f"bytes={sum(len(b) for b in sources.values())} needles={len(needles)} hits={len(hits)}"
    )
    assert hits == []


def test_a_key_in_the_url_path_is_not_stored(gateway: RunningGateway) -> None:
    key = gateway.admin.tenant_and_key("acme")
    for path in (f"/api/{key}", f"/v2/{key}/chat", f"/api/chat/{key}"):
        assert httpx.get(gateway.url + path).status_code in (403, 404)
    gateway.wait_audit_flushed()

    async def paths(session: Any) -> list[str]:
        return list((await session.execute(text("SELECT path FROM requests"))).scalars())

    stored = gateway.admin.query(paths)
    assert len(stored) == 3
    assert not [p for p in stored if key[12:] in p]
