"""Backends in front of the project's mock Ollama, on the test's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from neuronetz_gateway.mock_ollama import MockOllama
from neuronetz_gateway.settings import BackendSpec
from neuronetz_gateway.upstream.backends import Backend, UpstreamTimeouts

MakeBackend = Callable[..., Backend]


@pytest.fixture
async def mocks() -> AsyncIterator[list[MockOllama]]:
    """Three fresh mocks (default models, no faults)."""
    servers = [MockOllama(), MockOllama(), MockOllama()]
    for server in servers:
        await server.start()
    yield servers
    for server in servers:
        await server.stop()


@pytest.fixture
async def make_backend() -> AsyncIterator[MakeBackend]:
    """``make_backend(name, url, **spec)``: a started ``Backend``, closed at the end."""
    made: list[Backend] = []

    def make(name: str, url: str, *, read_s: float = 5.0, **spec: Any) -> Backend:
        backend = Backend(
            BackendSpec(name=name, url=url, **spec),  # type: ignore[arg-type]
            timeouts=UpstreamTimeouts(connect_s=2.0, read_s=read_s),
            max_connections=8,
            default_parallel=4,
        )
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.close()
