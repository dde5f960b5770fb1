"""A gateway in front of three mock Ollamas named a, b and c (priority in that order)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from neuronetz_gateway.db.models import RequestRecord
from neuronetz_gateway.mock_ollama import MockOllamaThread
from tests.fixtures.gateway import RunningGateway

MakeGateway = Callable[..., RunningGateway]


@pytest.fixture(scope="session")
def extra_mocks() -> Iterator[list[MockOllamaThread]]:
    with MockOllamaThread() as b, MockOllamaThread() as c:
        yield [b, c]


@pytest.fixture
def trio(
    mock: MockOllamaThread, extra_mocks: list[MockOllamaThread]
) -> Iterator[list[MockOllamaThread]]:
    """Backends a, b, c: reset to the default models, no faults, empty request logs."""
    for m in extra_mocks:
        m.reset()
    yield [mock, *extra_mocks]
    for m in extra_mocks:
        m.reset()


def backends_of(mocks: list[MockOllamaThread], names: str = "abc") -> list[dict[str, Any]]:
    return [{"name": n, "url": m.url} for n, m in zip(names, mocks, strict=False)]


@pytest.fixture
def multi_gateway(make_gateway: MakeGateway, trio: list[MockOllamaThread]) -> MakeGateway:
    def make(**overrides: Any) -> RunningGateway:
        overrides.setdefault("ollama_backends", backends_of(trio))
        return make_gateway(**overrides)

    return make


def model_requests(mock: MockOllamaThread, path: str = "/api/chat") -> list[dict[str, Any]]:
    return [dict(r) for r in mock.requests if r["path"] == path]


def chat_body(model: str = "llama3.2", *, stream: bool, text: str = "hello there") -> bytes:
    return orjson.dumps(
        {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
    )


def chat(
    gw: RunningGateway, key: str, model: str = "llama3.2", *, stream: bool, timeout: float = 10
) -> httpx.Response:
    return httpx.post(
        gw.url + "/api/chat",
        content=chat_body(model, stream=stream),
        headers={"Authorization": f"Bearer {key}"},
        timeout=timeout,
    )


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in response.content.splitlines() if line.strip()]


def audit_rows(gw: RunningGateway) -> list[RequestRecord]:
    gw.wait_audit_flushed()

    async def rows(session: Any) -> list[RequestRecord]:
        result = await session.scalars(select(RequestRecord).order_by(RequestRecord.id))
        return list(result)

    return gw.admin.query(rows)


def metric(gw: RunningGateway, name: str, **labels: str) -> float:
    """One sample of the gateway's /metrics (0 when absent)."""
    text = httpx.get(gw.url + "/metrics").text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
