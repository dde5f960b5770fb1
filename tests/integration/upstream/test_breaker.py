"""A backend's circuit breaker through its states, as /metrics and /readyz show them."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from neuronetz_gateway.mock_ollama import MockOllamaThread
from tests.fixtures.gateway import RunningGateway
from tests.integration.upstream.conftest import (
    MakeGateway,
    audit_rows,
    chat,
    metric,
    model_requests,
)


def breaker_view(gw: RunningGateway, name: str) -> tuple[str, str, dict[str, float]]:
    """(/readyz breaker state, /readyz backend status, /metrics state gauge)."""
    ready = httpx.get(gw.url + "/readyz").json()
    states = metrics(gw, "nz_backend_breaker_state", backend=name)
    return (
        ready["breakers"][name],
        ready["backends"][name],
        {s: states.get(s, 0.0) for s in ("closed", "open", "half_open")},
    )


def metrics(gw: RunningGateway, name: str, **labels: str) -> dict[str, float]:
    found = {}
    for family in text_string_to_metric_families(httpx.get(gw.url + "/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                found[sample.labels["state"]] = sample.value
    return found


def one_hot(state: str) -> dict[str, float]:
    return {s: 1.0 if s == state else 0.0 for s in ("closed", "open", "half_open")}


def wait_half_open(gw: RunningGateway, name: str) -> None:
    deadline = time.monotonic() + 5
    while gw.state.breakers[name].state != "half_open":
        assert time.monotonic() < deadline, "the breaker never left the open state"
        time.sleep(0.02)


def test_open_half_open_closed(multi_gateway: MakeGateway, trio: list[MockOllamaThread]) -> None:
    a = trio[0]
    gw = multi_gateway()
    key = gw.admin.tenant_and_key("acme")
    assert breaker_view(gw, "a") == ("closed", "ok", one_hot("closed"))
    a.configure(fail="busy")
    for _ in range(5):  # the default threshold: five failures in a row
        assert chat(gw, key, stream=True).status_code == 200
    assert breaker_view(gw, "a") == ("open", "open", one_hot("open"))
    assert metric(gw, "nz_backend_breaker_open", backend="a") == 1
    assert httpx.get(gw.url + "/readyz").status_code == 200  # b and c still serve
    # While open, a is not even asked.
    assert chat(gw, key, stream=False).status_code == 200
    assert len(model_requests(a)) == 5
    assert audit_rows(gw)[-1].attempts == 1
    # Half-open: one probe; it fails (still busy), so open again for a full cool-down.
    gw.state.breakers["a"].cooldown_s = 0.5  # instead of waiting the default 10 s
    wait_half_open(gw, "a")
    assert breaker_view(gw, "a") == ("half_open", "ok", one_hot("half_open"))
    assert chat(gw, key, stream=True).status_code == 200
    assert len(model_requests(a)) == 6
    assert gw.state.breakers["a"].state == "open"
    # Half-open again, the backend has recovered: the probe closes the breaker.
    a.configure(fail=None)
    wait_half_open(gw, "a")
    assert chat(gw, key, stream=True).status_code == 200
    assert audit_rows(gw)[-1].backend == "a"
    assert breaker_view(gw, "a") == ("closed", "ok", one_hot("closed"))
    assert metric(gw, "nz_backend_breaker_open", backend="a") == 0


def test_every_breaker_open_is_502_with_retry_after_and_no_upstream_call(
    multi_gateway: MakeGateway, trio: list[MockOllamaThread]
) -> None:
    gw = multi_gateway()
    key = gw.admin.tenant_and_key("acme")
    for m in trio:
        m.configure(fail="busy")
    for _ in range(5):
        assert chat(gw, key, stream=False).status_code == 502
    assert {b.state for b in gw.state.breakers.values()} == {"open"}
    before = [len(model_requests(m)) for m in trio]
    response = chat(gw, key, stream=True)
    assert response.status_code == 502
    assert 9 <= int(response.headers["retry-after"]) <= 10  # the breakers' cool-down
    assert [len(model_requests(m)) for m in trio] == before
    ready = httpx.get(gw.url + "/readyz")
    assert ready.status_code == 503
    assert ready.json()["backends"] == {"a": "open", "b": "open", "c": "open"}
