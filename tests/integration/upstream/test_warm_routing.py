"""ROUTING_POLICY=warm: the loaded backend first, then the least busy; /api/ps stays inside."""

from __future__ import annotations

import threading
import time

import httpx

from neuronetz_gateway.mock_ollama import MockOllamaThread
from neuronetz_gateway.upstream.discovery import DISCOVERY_USER_AGENT
from tests.integration.upstream.conftest import MakeGateway, audit_rows, chat, model_requests


def test_the_backend_with_the_model_loaded_is_preferred(
    multi_gateway: MakeGateway, trio: list[MockOllamaThread]
) -> None:
    _, b, c = trio
    for m in trio:
        m.configure(models=["llama3.2", "qwen2.5:0.5b", "phi3"])
    c.configure(loaded_models=["llama3.2"])
    b.configure(loaded_models=["qwen2.5:0.5b"])
    gw = multi_gateway(routing_policy="warm")
    key = gw.admin.tenant_and_key("acme")
    for stream in (True, False, True):
        assert chat(gw, key, "llama3.2", stream=stream).status_code == 200
    assert chat(gw, key, "qwen2.5:0.5b", stream=False).status_code == 200
    assert chat(gw, key, "phi3", stream=False).status_code == 200  # loaded nowhere
    assert [r.backend for r in audit_rows(gw)] == ["c", "c", "c", "b", "a"]


def test_ps_is_polled_by_the_gateway_and_never_reachable_by_clients(
    multi_gateway: MakeGateway, trio: list[MockOllamaThread]
) -> None:
    trio[2].configure(loaded_models=["llama3.2"])
    gw = multi_gateway(routing_policy="warm")
    auth = {"Authorization": f"Bearer {gw.admin.tenant_and_key('acme')}"}
    for path in ("/api/ps", "/API/ps", "/api/ps/", "/api/%70s"):
        response = httpx.get(gw.url + path, headers=auth)
        assert response.status_code in (403, 404), path
        assert "expires_at" not in response.text
    tags = httpx.get(gw.url + "/api/tags", headers=auth).text
    assert "size_vram" not in tags
    assert "expires_at" not in tags
    polls = [r for m in trio for r in m.requests if r["path"] == "/api/ps"]
    assert len(polls) >= 3
    assert {r["headers"].get("user-agent") for r in polls} == {DISCOVERY_USER_AGENT}


def test_cold_requests_go_to_the_least_busy_backend(
    multi_gateway: MakeGateway, trio: list[MockOllamaThread]
) -> None:
    a, b, _ = trio
    a.configure(delay_s=1.0)
    gw = multi_gateway(routing_policy="warm")
    key = gw.admin.tenant_and_key("acme")
    first: list[httpx.Response] = []
    slow = threading.Thread(target=lambda: first.append(chat(gw, key, stream=False)))
    slow.start()
    deadline = time.monotonic() + 5
    while not model_requests(a):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert chat(gw, key, stream=False).status_code == 200  # a is busy: b, not a's queue
    slow.join(10)
    assert first[0].status_code == 200
    assert sorted(r.backend or "" for r in audit_rows(gw)) == ["a", "b"]
    assert len(model_requests(b)) == 1


def test_priority_policy_ignores_loaded_models_and_never_polls_ps(
    multi_gateway: MakeGateway, trio: list[MockOllamaThread]
) -> None:
    trio[2].configure(loaded_models=["llama3.2"])
    gw = multi_gateway()
    assert gw.settings.routing_policy == "priority"
    key = gw.admin.tenant_and_key("acme")
    assert chat(gw, key, stream=False).status_code == 200
    assert audit_rows(gw)[0].backend == "a"
    assert not [r for m in trio for r in m.requests if r["path"] == "/api/ps"]
