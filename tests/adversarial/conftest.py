"""Fixtures of the adversarial suite: gateways served like ``neuronetz-gateway serve``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from neuronetz_gateway.mock_ollama import MockOllamaThread
from tests.adversarial.support import start_served_gateway
from tests.fixtures.gateway import LoopThread, RunningGateway, gateway_settings

MakeServed = Callable[..., RunningGateway]


@pytest.fixture
def make_served(
    admin_loop: LoopThread,
    sqlite_url: str,
    mock: MockOllamaThread,
    create_pg_database: Callable[[], str],
) -> Iterator[MakeServed]:
    """Like ``make_gateway``, on ``server.uvicorn_config``; ``header_timeout_s`` and
    ``body_timeout_s`` set the protocol's deadlines, the rest are settings. (It depends
    on ``create_pg_database`` so that a test's database outlives its gateways.)"""
    started: list[RunningGateway] = []

    def make(**overrides: Any) -> RunningGateway:
        deadlines = {
            k: overrides.pop(k) for k in ("header_timeout_s", "body_timeout_s") if k in overrides
        }
        db = overrides.pop("database_url", sqlite_url)
        mock_url = overrides.pop("ollama_base_url", mock.url)
        gw = start_served_gateway(
            gateway_settings(db, mock_url, **overrides), admin_loop, **deadlines
        )
        gw.mock = mock
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.stop()


@pytest.fixture
def served(make_served: MakeServed) -> RunningGateway:
    return make_served()
