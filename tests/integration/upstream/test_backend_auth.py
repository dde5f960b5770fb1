"""Per-backend credentials: each backend gets its own; none of them is ever shown."""

from __future__ import annotations

import httpx
import pytest

from neuronetz_gateway.mock_ollama import MockOllamaThread
from tests.integration.upstream.conftest import MakeGateway, audit_rows, chat, model_requests

TOKENS = {"a": "tok-a-7f3e9c", "b": "tok-b-19d2aa", "c": "tok-c-wrong0"}


def test_each_backend_receives_its_own_credentials_and_nothing_leaks(
    make_gateway: MakeGateway, trio: list[MockOllamaThread], capfd: pytest.CaptureFixture[str]
) -> None:
    a, b, c = trio
    a.configure(require_token=TOKENS["a"])
    b.configure(require_token=TOKENS["b"])
    c.configure(require_token="what-c-expects")  # c is configured with the wrong token
    gw = make_gateway(
        ollama_backends=[
            {"name": "a", "url": a.url, "token": TOKENS["a"]},
            {"name": "b", "url": b.url, "token": TOKENS["b"], "headers": {"X-Org": "acme"}},
            {"name": "c", "url": c.url, "token": TOKENS["c"]},
        ],
        gateway_log_level="DEBUG",
    )
    key = gw.admin.tenant_and_key("acme")
    assert gw.state.discovery.reachable() == {"a", "b"}  # c answered 401
    assert chat(gw, key, stream=True).status_code == 200
    a.configure(fail="busy", fail_count=1)
    answer = chat(gw, key, stream=False)
    assert answer.status_code == 200
    assert [r.backend for r in audit_rows(gw)] == ["a", "b"]
    (to_a, _) = model_requests(a)
    (to_b,) = model_requests(b)
    assert to_a["headers"]["authorization"] == f"Bearer {TOKENS['a']}"
    assert to_b["headers"]["authorization"] == f"Bearer {TOKENS['b']}"
    assert to_b["headers"]["x-org"] == "acme"
    assert key not in str(to_a) + str(to_b)
    shown = [
        answer.text,
        str(answer.headers),
        httpx.get(gw.url + "/readyz").text,
        httpx.get(gw.url + "/metrics").text,
        httpx.get(gw.url + "/api/tags", headers={"Authorization": f"Bearer {key}"}).text,
        repr(gw.state.backends),
        *capfd.readouterr(),
    ]
    assert httpx.get(gw.url + "/readyz").json()["backends"]["c"] == "down"
    assert "backend=c" in shown[-1]  # the failures were logged, by name only
    for token in TOKENS.values():
        assert not [s for s in shown if token in s]
