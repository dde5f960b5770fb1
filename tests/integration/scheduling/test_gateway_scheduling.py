"""Backend capacity and tenant-fair queues as clients meet them, through a real gateway."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from neuronetz_gateway.db.models import RequestRecord, Tenant
from neuronetz_gateway.mock_ollama import MockOllamaThread
from tests.fixtures.gateway import RunningGateway

MakeGateway = Callable[..., RunningGateway]
# Discovery polls count in the mock's in-flight figures: poll once, at start-up only.
QUIET = {"model_discovery_refresh_s": 600, "model_discovery_cache_ttl_s": 1200}


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=24) as executor:
        yield executor


def chat(gw: RunningGateway, key: str, text: str = "hi", timeout: float = 30) -> httpx.Response:
    return httpx.post(
        gw.url + "/api/chat",
        json={
            "model": "llama3.2",
            "stream": False,
            "messages": [{"role": "user", "content": text}],
        },
        headers={"Authorization": f"Bearer {key}"},
        timeout=timeout,
    )


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def waiting(gw: RunningGateway) -> int:
    return gw.state.scheduler.waiting()


def chat_texts(mock: MockOllamaThread) -> list[str]:
    """What the mock was asked, in arrival order."""
    return [r["body"]["messages"][0]["content"] for r in mock.requests if r["path"] == "/api/chat"]


def audit_rows(gw: RunningGateway) -> list[RequestRecord]:
    gw.wait_audit_flushed()

    async def rows(session: Any) -> list[RequestRecord]:
        return list(await session.scalars(select(RequestRecord).order_by(RequestRecord.id)))

    return gw.admin.query(rows)


def metric(gw: RunningGateway, name: str, **labels: str) -> float:
    text = httpx.get(gw.url + "/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def test_a_backend_never_gets_more_than_its_capacity(
    make_gateway: MakeGateway, mock: MockOllamaThread, pool: ThreadPoolExecutor
) -> None:
    gw = make_gateway(ollama_default_parallel=2, **QUIET)
    key = gw.admin.tenant_and_key("acme")
    mock.configure(delay_s=0.3)
    results = list(pool.map(lambda i: chat(gw, key, f"q{i}"), range(8)))
    assert [r.status_code for r in results] == [200] * 8
    # Each request holds the backend for 0.3 s, so three arrivals within 0.25 s would be
    # three at once. (The mock's own in-flight peak can count the tail of a response the
    # gateway has already finished with, so arrival times are the sharper witness.)
    arrivals = sorted(r["received_at"] for r in mock.requests if r["path"] == "/api/chat")
    assert len(arrivals) == 8
    assert max(sum(1 for t in arrivals if a <= t < a + 0.25) for a in arrivals) == 2
    assert metric(gw, "nz_backend_capacity", backend="default") == 2
    assert metric(gw, "nz_backend_slots_in_use", backend="default") == 0
    served = metric(gw, "nz_queue_wait_seconds_count", tenant="acme", outcome="served")
    assert served >= 5  # at most 2 + 1 of 8 found a free slot at once


def test_a_single_request_is_served_after_at_most_one_of_a_flooding_tenant(
    make_gateway: MakeGateway, mock: MockOllamaThread, pool: ThreadPoolExecutor
) -> None:
    gw = make_gateway(ollama_default_parallel=1, **QUIET)
    flood = gw.admin.tenant_and_key("flood")
    single = gw.admin.tenant_and_key("single")
    mock.configure(delay_s=0.25)
    floods = [pool.submit(chat, gw, flood, f"A{i}") for i in range(6)]
    wait_until(lambda: waiting(gw) == 5)
    assert metric(gw, "nz_queue_depth", tenant="flood") == 5
    lone = pool.submit(chat, gw, single, "B")
    assert lone.result().status_code == 200
    assert all(f.result().status_code == 200 for f in floods)
    texts = chat_texts(mock)
    # A's first request was on the backend and A's queue had formed when B came: one more
    # of A's may go first (its turn had begun), then B — not behind A's whole queue.
    assert texts.index("B") <= 2, texts


def test_wait_timeout_is_429_with_retry_after_and_charges_nothing(
    make_gateway: MakeGateway, mock: MockOllamaThread, pool: ThreadPoolExecutor
) -> None:
    gw = make_gateway(ollama_default_parallel=1, queue_wait_timeout_s=30, **QUIET)
    holder = gw.admin.tenant_and_key("holder")
    gw.admin.tenant("impatient", daily_budget=1_000_000)

    async def short_timeout(session: Any) -> None:  # the per-tenant override (no CLI yet)
        await session.execute(
            update(Tenant).where(Tenant.name == "impatient").values(queue_timeout_s=0.4)
        )
        await session.commit()

    gw.admin.query(short_timeout)
    impatient = gw.admin.key("impatient")
    mock.configure(delay_s=2.0)
    held = pool.submit(chat, gw, holder, "holder")
    wait_until(lambda: mock.stats()["in_flight"] == 1)
    started = time.monotonic()
    refused = chat(gw, impatient, "impatient")
    assert time.monotonic() - started < 1.5  # the tenant's 0.4 s, not the default 30 s
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert held.result().status_code == 200
    assert chat_texts(mock) == ["holder"]  # the refused request never reached the backend
    rows = {row.status: row for row in audit_rows(gw)}
    assert (rows[429].tokens_in, rows[429].tokens_out) == (0, 0)
    assert rows[200].tokens_in > 0


def test_a_client_that_leaves_while_queued_leaves_the_queue(
    make_gateway: MakeGateway, mock: MockOllamaThread, pool: ThreadPoolExecutor
) -> None:
    gw = make_gateway(ollama_default_parallel=1, **QUIET)
    key = gw.admin.tenant_and_key("acme")
    mock.configure(delay_s=1.5)
    held = pool.submit(chat, gw, key, "holder")
    wait_until(lambda: mock.stats()["in_flight"] == 1)
    with pytest.raises(httpx.ReadTimeout):
        chat(gw, key, "gone", timeout=0.3)
    wait_until(lambda: waiting(gw) == 0, timeout=1.0)
    assert not held.done()  # left the queue while the holder was still being served
    assert held.result().status_code == 200
    time.sleep(0.2)
    assert chat_texts(mock) == ["holder"]
    gone = [row for row in audit_rows(gw) if row.status == 499]
    assert len(gone) == 1 and (gone[0].tokens_in, gone[0].tokens_out) == (0, 0)


def test_queue_depth_cap_per_tenant(
    make_gateway: MakeGateway, mock: MockOllamaThread, pool: ThreadPoolExecutor
) -> None:
    gw = make_gateway(ollama_default_parallel=1, queue_max_depth_per_tenant=1, **QUIET)
    key = gw.admin.tenant_and_key("acme")
    other = gw.admin.tenant_and_key("other")
    mock.configure(delay_s=0.5)
    held = pool.submit(chat, gw, key, "holder")
    wait_until(lambda: mock.stats()["in_flight"] == 1)
    queued = pool.submit(chat, gw, key, "queued")
    wait_until(lambda: waiting(gw) == 1)
    refused = chat(gw, key, "one too many")
    assert refused.status_code == 429 and "retry-after" in refused.headers
    others: Future[httpx.Response] = pool.submit(chat, gw, other, "other tenant")
    assert [f.result().status_code for f in (held, queued, others)] == [200, 200, 200]


def test_capacity_is_global_across_two_gateways(
    make_gateway: MakeGateway,
    mock: MockOllamaThread,
    pool: ThreadPoolExecutor,
    redis_url: str,
    pg_url: str,
) -> None:
    shared = {
        "redis_url": redis_url,
        "database_url": pg_url,
        "ollama_default_parallel": 2,
        "redis_timeout_s": 2.0,  # bursts on two shared cores
        **QUIET,
    }
    gateways = [make_gateway(**shared), make_gateway(**shared)]
    key = gateways[0].admin.tenant_and_key("acme")
    mock.configure(delay_s=0.3)
    results = list(pool.map(lambda i: chat(gateways[i % 2], key, f"q{i}"), range(12)))
    assert [r.status_code for r in results] == [200] * 12
    assert mock.stats()["peak_in_flight"] == 2


def test_fair_across_two_gateways(
    make_gateway: MakeGateway,
    mock: MockOllamaThread,
    pool: ThreadPoolExecutor,
    redis_url: str,
    pg_url: str,
) -> None:
    shared = {
        "redis_url": redis_url,
        "database_url": pg_url,
        "ollama_default_parallel": 1,
        "redis_timeout_s": 2.0,
        **QUIET,
    }
    first, second = make_gateway(**shared), make_gateway(**shared)
    flood = first.admin.tenant_and_key("flood")
    single = first.admin.tenant_and_key("single")
    mock.configure(delay_s=0.25)
    floods = [pool.submit(chat, first, flood, f"A{i}") for i in range(6)]
    wait_until(lambda: waiting(first) == 5)
    lone = pool.submit(chat, second, single, "B")
    assert lone.result().status_code == 200
    assert all(f.result().status_code == 200 for f in floods)
    assert chat_texts(mock).index("B") <= 2
    assert mock.stats()["peak_in_flight"] == 1
