"""Several backends behind one gateway: union, priority, failover, one charge per request."""

from __future__ import annotations

import httpx
import pytest

from neuronetz_gateway.mock_ollama import MockOllamaThread
from tests.integration.upstream.conftest import (
    MakeGateway,
    audit_rows,
    backends_of,
    chat,
    metric,
    model_requests,
    ndjson,
)


def names(response: httpx.Response) -> list[str]:
    return sorted(m["name"] for m in response.json()["models"])


def test_tags_and_models_show_the_union_within_the_allowlist(
    multi_gateway: MakeGateway, trio: list[MockOllamaThread]
) -> None:
    a, b, c = trio
    a.configure(models=["llama3.2", "qwen2.5:0.5b"])
    b.configure(models=["qwen2.5:0.5b", "nomic-embed-text"])
    c.configure(models=["mistral:7b"])
    gw = multi_gateway()
    everything = {"Authorization": f"Bearer {gw.admin.tenant_and_key('all')}"}
    union = ["llama3.2:latest", "mistral:7b", "nomic-embed-text:latest", "qwen2.5:0.5b"]
    assert names(httpx.get(gw.url + "/api/tags", headers=everything)) == union
    ids = sorted(
        m["id"] for m in httpx.get(gw.url + "/v1/models", headers=everything).json()["data"]
    )
    assert ids == union
    gw.admin.tenant(
        "narrow", allow_all_models=False, allowed_models=["qwen2.5:0.5b", "mistral:7b", "gone"]
    )
    narrow = {"Authorization": f"Bearer {gw.admin.key('narrow')}"}
    assert names(httpx.get(gw.url + "/api/tags", headers=narrow)) == ["mistral:7b", "qwen2.5:0.5b"]


def test_the_first_backend_hosting_the_model_serves_it(
    multi_gateway: MakeGateway, trio: list[MockOllamaThread]
) -> None:
    _, b, c = trio
    b.configure(models=["llama3.2", "mistral:7b"])
    c.configure(models=["mistral:7b", "phi3"])
    gw = multi_gateway()
    key = gw.admin.tenant_and_key("acme")
    assert chat(gw, key, "llama3.2", stream=False).status_code == 200
    assert chat(gw, key, "mistral:7b", stream=True).status_code == 200
    assert chat(gw, key, "phi3", stream=False).status_code == 200
    assert [len(model_requests(m)) for m in trio] == [1, 1, 1]
    assert [r.backend for r in audit_rows(gw)] == ["a", "b", "c"]
    assert all(r.attempts == 1 for r in audit_rows(gw))


FAULTS = [
    ("busy", "busy"),
    ("before_first_chunk", "status_5xx"),
    ("error_500_with_trace", "status_5xx"),
    ("reset_before_first_byte", "connect"),
]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize(("fault", "reason"), FAULTS, ids=[f for f, _ in FAULTS])
def test_failover_before_the_first_byte_is_invisible_and_charged_once(
    multi_gateway: MakeGateway,
    trio: list[MockOllamaThread],
    fault: str,
    reason: str,
    stream: bool,
) -> None:
    a = trio[0]
    gw = multi_gateway()
    key = gw.admin.tenant_and_key("acme")
    a.configure(fail=fault, fail_count=1)  # type: ignore[arg-type]
    response = chat(gw, key, stream=stream)
    assert response.status_code == 200
    assert b"goroutine" not in response.content
    frames = ndjson(response)
    final = frames[-1]
    assert final["done"] is True
    assert "".join(f["message"]["content"] for f in frames) == "Echo: hello there"
    assert [len(model_requests(m)) for m in trio] == [1, 1, 0]
    (row,) = audit_rows(gw)
    assert (row.backend, row.attempts, row.status, row.error_class) == ("b", 2, 200, None)
    assert (row.tokens_in, row.tokens_out) == (final["prompt_eval_count"], final["eval_count"])
    assert metric(gw, "nz_upstream_errors_total", backend="a", reason=reason) == 1
    assert metric(gw, "nz_upstream_errors_total", backend="b") == 0


def test_failover_when_a_backend_dies_after_discovery(
    make_gateway: MakeGateway, trio: list[MockOllamaThread]
) -> None:
    doomed = MockOllamaThread().start()
    try:
        gw = make_gateway(ollama_backends=backends_of([doomed, trio[1]], "ab"))
        key = gw.admin.tenant_and_key("acme")
        assert gw.state.discovery.reachable() == {"a", "b"}
    finally:
        doomed.stop()
    assert chat(gw, key, stream=True).status_code == 200
    assert chat(gw, key, stream=False).status_code == 200
    assert [(r.backend, r.attempts) for r in audit_rows(gw)] == [("b", 2), ("b", 2)]
    assert metric(gw, "nz_upstream_errors_total", backend="a", reason="connect") == 2


@pytest.mark.parametrize("fault", ["after_first_chunk", "error_after_first_chunk"])
def test_no_failover_after_the_first_byte_and_a_clean_error_frame(
    multi_gateway: MakeGateway, trio: list[MockOllamaThread], fault: str
) -> None:
    a, _, _ = trio
    a.configure(fail=fault, chunks=5, fail_count=1)  # type: ignore[arg-type]
    gw = multi_gateway()
    key = gw.admin.tenant_and_key("acme")
    response = chat(gw, key, stream=True)
    assert response.status_code == 200
    frames = ndjson(response)  # every line is well-formed JSON
    assert frames[-1] == {"error": "the model server failed while answering"}
    delivered = frames[:-1]
    assert len(delivered) == 1
    assert delivered[0]["done"] is False
    assert "llama runner" not in response.text
    assert [len(model_requests(m)) for m in trio] == [1, 0, 0]
    (row,) = audit_rows(gw)
    assert (row.backend, row.attempts, row.status) == ("a", 1, 200)
    assert row.error_class == "upstream_stream_broken"
    assert row.tokens_out == len(delivered)  # what reached the client, charged once
    assert row.tokens_in > 0


def test_a_whole_answer_cut_before_it_reached_the_client_fails_over(
    multi_gateway: MakeGateway, trio: list[MockOllamaThread]
) -> None:
    trio[0].configure(fail="after_first_chunk", fail_count=1)
    gw = multi_gateway()
    key = gw.admin.tenant_and_key("acme")
    response = chat(gw, key, stream=False)
    assert response.status_code == 200
    assert response.json()["message"]["content"] == "Echo: hello there"
    (row,) = audit_rows(gw)
    assert (row.backend, row.attempts) == ("b", 2)


def test_a_model_nobody_hosts_is_the_403_of_a_forbidden_model(
    multi_gateway: MakeGateway, trio: list[MockOllamaThread]
) -> None:
    for m in trio:
        m.configure(models=["llama3.2", "qwen2.5:0.5b"])
    gw = multi_gateway()
    gw.admin.tenant("narrow", allow_all_models=False, allowed_models=["llama3.2", "mistral"])
    key = gw.admin.key("narrow")
    seen: list[tuple[int, object]] = []
    # forbidden but hosted; allowed but hosted nowhere; neither
    for model in ("qwen2.5:0.5b", "mistral", "nowhere-at-all"):
        for stream in (True, False):
            response = chat(gw, key, model, stream=stream)
            body = response.json()
            body.pop("request_id")
            seen.append((response.status_code, body))
        response = httpx.post(
            gw.url + "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "x"}]},
            headers={"Authorization": f"Bearer {key}"},
        )
        body = response.json()
        body.pop("request_id", None)
        seen.append((response.status_code, body))
    assert len({repr(s) for s in seen[0::3] + seen[1::3]}) == 1
    assert len({repr(s) for s in seen[2::3]}) == 1
    assert seen[0][0] == 403
    assert [len(model_requests(m)) for m in trio] == [0, 0, 0]


def test_a_model_that_left_every_backend_is_the_same_403(
    multi_gateway: MakeGateway, trio: list[MockOllamaThread]
) -> None:
    gw = multi_gateway(model_discovery_refresh_s=60)
    key = gw.admin.tenant_and_key("acme")
    for m in trio:
        m.configure(models=["qwen2.5:0.5b"])  # discovery has not noticed yet
    response = chat(gw, key, "llama3.2", stream=True)
    assert response.status_code == 403
    assert response.json()["error"] == "model not available"
    assert [len(model_requests(m)) for m in trio] == [1, 1, 1]
    assert {b.state for b in gw.state.breakers.values()} == {"closed"}


def test_everyone_down_is_502_with_retry_after(
    multi_gateway: MakeGateway, trio: list[MockOllamaThread]
) -> None:
    gw = multi_gateway()
    key = gw.admin.tenant_and_key("acme")
    for m in trio:
        m.configure(fail="error_500_with_trace")
    for stream in (True, False):
        response = chat(gw, key, stream=stream)
        assert response.status_code == 502
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"] == "no backend is available for this request"
        assert "goroutine" not in response.text
    rows = audit_rows(gw)
    assert [(r.status, r.tokens_in, r.tokens_out) for r in rows] == [(502, 0, 0)] * 2
    assert [len(model_requests(m)) for m in trio] == [2, 2, 2]
