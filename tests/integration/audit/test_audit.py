"""Audit rows, prompt logging, retention, metrics, and the audit queue's failure modes."""

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from neuronetz_gateway.audit.retention import purge
from neuronetz_gateway.audit.usage import SqlUsage
from neuronetz_gateway.db.engine import create_engine, session_factory
from neuronetz_gateway.db.models import PromptLog, RequestRecord
from tests.fixtures.gateway import RunningGateway
from tests.fixtures.postgres import PostgresServer

CHAT = {"model": "llama3.2", "stream": False, "messages": [{"role": "user", "content": "hi you"}]}


def _rows(gw: RunningGateway) -> list[RequestRecord]:
    gw.wait_audit_flushed()
    return list(
        gw.admin.query(lambda s: s.scalars(select(RequestRecord).order_by(RequestRecord.id)))
    )


def test_one_row_per_request_without_key_material(gateway: RunningGateway) -> None:
    key = gateway.admin.tenant_and_key("acme")
    auth = {"Authorization": f"Bearer {key}"}
    ok = httpx.post(gateway.url + "/api/chat", json=CHAT, headers=auth)
    httpx.post(gateway.url + "/v1/chat/completions", json={**CHAT, "stream": True}, headers=auth)
    httpx.post(gateway.url + "/api/pull", json={"model": "x"}, headers=auth)
    httpx.get(gateway.url + "/api/tags", headers={"Authorization": "Bearer nz_bad"})
    httpx.get(gateway.url + "/healthz")  # operations endpoints are not audited
    rows = _rows(gateway)
    assert [(r.surface, r.path, r.status) for r in rows] == [
        ("native", "/api/chat", 200),
        ("openai", "/v1/chat/completions", 200),
        ("native", "/api/pull", 403),
        ("native", "/api/tags", 401),
    ]
    chat = rows[0]
    assert chat.request_id == ok.headers["x-request-id"]
    assert chat.key_prefix == key[:12] and chat.client_ip == "127.0.0.1"
    assert chat.model == "llama3.2" and chat.backend == "default"
    assert chat.tokens_in == ok.json()["prompt_eval_count"]
    assert chat.tokens_out == ok.json()["eval_count"]
    assert chat.latency_ms is not None and chat.ttfb_ms is not None and chat.attempts == 1
    assert rows[1].streamed and rows[1].tokens_out > 0
    assert rows[2].error_class == "blocked_path" and rows[3].error_class == "unauthorized"
    for row in rows:
        assert key not in str(vars(row)) and key[12:] not in str(vars(row))


def test_prompts_logged_only_for_opted_in_keys(gateway: RunningGateway) -> None:
    gateway.admin.tenant("acme")
    logged = gateway.admin.key("acme", "logged", log_prompts=True, prompt_retention_days=3)
    plain = gateway.admin.key("acme", "plain")
    for key in (logged, plain):
        httpx.post(gateway.url + "/api/chat", json=CHAT, headers={"Authorization": f"Bearer {key}"})
        httpx.post(
            gateway.url + "/api/generate",
            json={"model": "llama3.2", "prompt": "tell me"},
            headers={"Authorization": f"Bearer {key}"},
        )
    gateway.wait_audit_flushed()
    prompts = list(
        gateway.admin.query(lambda s: s.scalars(select(PromptLog).order_by(PromptLog.id)))
    )
    assert len(prompts) == 2
    chat, gen = prompts
    assert chat.prompt == [{"role": "user", "content": "hi you"}]
    assert chat.response == "Echo: hi you"
    assert gen.prompt == "tell me" and gen.response == "Echo: tell me"
    assert timedelta(days=2.9) < chat.expires_at - chat.created_at < timedelta(days=3.1)


async def test_purge_deletes_expired_and_carries_usage_over(tmp_path: Any) -> None:
    from neuronetz_gateway.db.migrate import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    await upgrade(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    async with sessions() as s:
        for i, age in enumerate((400, 10)):
            s.add(
                RequestRecord(
                    request_id=f"r{i}", started_at=now - timedelta(days=age), tenant_id=1, key_id=1,
                    surface="native", method="POST", path="/api/chat", status=200,
                    tokens_in=10, tokens_out=5, attempts=1, streamed=False,
                )
            )  # fmt: skip
        for i, delta in enumerate((-1, 1)):
            s.add(
                PromptLog(
                    request_id=f"p{i}", tenant_id=1, key_id=1, created_at=now,
                    expires_at=now + timedelta(days=delta), model="m", prompt="x", response="y",
                )
            )  # fmt: skip
        await s.commit()
    usage = SqlUsage(sessions)
    assert await usage.spent_since("key", 1, None) == 30
    result = await purge(sessions, audit_retention_days=365)
    assert (result.prompt_rows, result.request_rows) == (1, 1)
    assert await usage.spent_since("key", 1, None) == 30  # the total budget does not grow back
    assert await usage.spent_since("tenant", 1, now - timedelta(days=30)) == 15
    await engine.dispose()


def test_full_audit_queue_refuses_new_requests_until_it_drains(
    make_gateway: Callable[..., RunningGateway],
) -> None:
    gw = make_gateway(audit_buffer_size=3)
    key = gw.admin.tenant_and_key("acme")
    auth = {"Authorization": f"Bearer {key}"}
    release = asyncio.Event()
    original = gw.state.audit._write

    async def blocked(batch: Any) -> None:
        await release.wait()
        await original(batch)

    gw.state.audit._write = blocked  # type: ignore[method-assign]
    statuses = [
        httpx.post(gw.url + "/api/chat", json=CHAT, headers=auth).status_code for _ in range(6)
    ]
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [503, 503, 503]
    assert httpx.get(gw.url + "/healthz").status_code == 200  # operations still answer
    gw.state.audit._write = original  # type: ignore[method-assign]
    asyncio.run_coroutine_threadsafe(_set(release), _loop_of(gw)).result(5)
    gw.wait_audit_flushed()
    assert httpx.post(gw.url + "/api/chat", json=CHAT, headers=auth).status_code == 200
    # The three served before the queue filled and the one after have rows; the three
    # refused for a full queue are counted in the metrics instead (queueing rows for them
    # would keep a saturated queue full).
    assert len(_rows(gw)) == 4
    assert 'nz_refusals_total{reason="audit_full"} 3.0' in httpx.get(gw.url + "/metrics").text


async def _set(event: asyncio.Event) -> None:
    event.set()


def _loop_of(gw: RunningGateway) -> asyncio.AbstractEventLoop:
    task = gw.state.audit._task
    assert task is not None
    return task.get_loop()


def test_database_outage_loses_no_audit_rows(
    make_gateway: Callable[..., RunningGateway], pg_url: str, postgres_server: PostgresServer
) -> None:
    gw = make_gateway(database_url=pg_url)
    key = gw.admin.tenant_and_key("acme")
    auth = {"Authorization": f"Bearer {key}"}
    assert httpx.post(gw.url + "/api/chat", json=CHAT, headers=auth).status_code == 200
    gw.wait_audit_flushed()
    postgres_server.stop()
    try:
        statuses = [
            httpx.post(gw.url + "/api/chat", json=CHAT, headers=auth, timeout=10).status_code
            for _ in range(10)
        ]
        time.sleep(1.0)  # the writer is retrying now
        assert gw.state.audit.depth == 10
    finally:
        postgres_server.start()
    assert set(statuses) <= {200, 503} and 500 not in statuses
    gw.wait_audit_flushed(timeout=20)
    count = gw.admin.query(lambda s: s.scalar(select(func.count()).select_from(RequestRecord)))
    assert count == 11
    assert httpx.post(gw.url + "/api/chat", json=CHAT, headers=auth).status_code == 200


def test_metrics_are_loopback_only_and_carry_no_secrets(gateway: RunningGateway) -> None:
    key = gateway.admin.tenant_and_key("acme")
    httpx.post(gateway.url + "/api/chat", json=CHAT, headers={"Authorization": f"Bearer {key}"})
    httpx.post(gateway.url + "/api/pull", json={}, headers={"Authorization": f"Bearer {key}"})
    text = httpx.get(gateway.url + "/metrics").text
    assert 'nz_requests_total{route="/api/chat",status="200",surface="native"}' in text
    assert 'nz_tokens_total{direction="out",model="llama3.2",tenant="acme"}' in text
    assert 'nz_refusals_total{reason="blocked_path"}' in text
    assert "nz_audit_queue_depth" in text and "nz_discovery_age_seconds" in text
    assert "nz_time_to_first_byte_seconds_bucket" in text
    assert key[:12] not in text and key not in text
    proxied = httpx.get(gateway.url + "/metrics", headers={"X-Forwarded-For": "8.8.8.8"})
    assert proxied.status_code == 404


def test_usage_and_prompts_cli_functions(gateway: RunningGateway) -> None:
    from neuronetz_gateway.audit import reports

    gateway.admin.tenant("acme")
    key = gateway.admin.key("acme", "k", log_prompts=True)
    for _ in range(3):
        httpx.post(gateway.url + "/api/chat", json=CHAT, headers={"Authorization": f"Bearer {key}"})
    gateway.wait_audit_flushed()
    by_model = gateway.admin.query(lambda s: reports.usage(s, tenant="acme", by="model"))
    assert [(r.group, r.requests) for r in by_model] == [("llama3.2", 3)]
    by_day = gateway.admin.query(lambda s: reports.usage(s, tenant="acme", by="day"))
    assert by_day[0].group == datetime.now(UTC).strftime("%Y-%m-%d")
    by_key = gateway.admin.query(
        lambda s: reports.usage(s, tenant="acme", by="key", key_prefix=key[:12])
    )
    assert by_key[0].group == key[:12] and by_key[0].tokens == by_model[0].tokens
    logs = gateway.admin.query(lambda s: reports.prompt_logs(s, key_prefix=key[:12]))
    assert len(logs) == 3 and logs[0]["response"] == "Echo: hi you"


@pytest.mark.parametrize("by", ["day", "model", "key"])
def test_usage_on_postgres(
    make_gateway: Callable[..., RunningGateway], pg_url: str, by: str
) -> None:
    from neuronetz_gateway.audit import reports

    gw = make_gateway(database_url=pg_url)
    key = gw.admin.tenant_and_key("acme")
    httpx.post(gw.url + "/api/chat", json=CHAT, headers={"Authorization": f"Bearer {key}"})
    gw.wait_audit_flushed()
    rows = gw.admin.query(lambda s: reports.usage(s, tenant="acme", by=by))  # type: ignore[arg-type]
    assert len(rows) == 1 and rows[0].requests == 1 and rows[0].tokens > 0
