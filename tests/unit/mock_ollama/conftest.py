"""Fixtures for the mock's own tests: a fresh mock per test, on the session loop."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import ollama
import pytest

from neuronetz_gateway.mock_ollama import MockOllama


@pytest.fixture
async def mock_server() -> AsyncIterator[MockOllama]:
    async with MockOllama() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def client(mock_server: MockOllama) -> AsyncIterator[ollama.AsyncClient]:
    async with ollama.AsyncClient(host=mock_server.url) as official:
        yield official
