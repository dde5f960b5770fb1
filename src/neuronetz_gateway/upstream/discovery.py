"""Model discovery: every backend's `/api/tags`, polled in parallel on each tick.

The cache keeps each backend's model list with the time it was fetched. A list older
than the cache TTL is dropped, so a backend that stops answering stops being offered
(fail closed: an unreachable backend means no models from it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import structlog

from neuronetz_gateway.proxy.native import model_name_key
from neuronetz_gateway.upstream.backends import Backend

log = structlog.get_logger("neuronetz.discovery")

# Marks the gateway's own polls, so backends (and tests) can tell them from proxied traffic.
DISCOVERY_USER_AGENT = "neuronetz-gateway-discovery"


@dataclass(frozen=True, slots=True)
class BackendModels:
    fetched_at: float  # monotonic
    models: tuple[dict[str, Any], ...]
    keys: frozenset[str]


class Discovery:
    def __init__(self, backends: Sequence[Backend], *, refresh_s: float, ttl_s: float) -> None:
        self.backends = list(backends)
        self.refresh_s = refresh_s
        self.ttl_s = max(ttl_s, refresh_s)
        self._lists: dict[str, BackendModels] = {}
        self.version = 0  # grows whenever the served union may have changed
        self.last_success: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._index: dict[str, list[Backend]] = {}
        self._union: list[dict[str, Any]] = []
        self._index_built_at = -1.0

    async def fetch(self, backend: Backend) -> list[dict[str, Any]]:
        async with backend.session.get(
            backend.url("/api/tags"),
            allow_redirects=False,
            headers={"User-Agent": DISCOVERY_USER_AGENT},
            timeout=aiohttp.ClientTimeout(total=max(2.0, min(10.0, self.refresh_s))),
        ) as resp:
            if resp.status != 200:
                raise RuntimeError(f"status {resp.status}")
            data = orjson.loads(await resp.read())
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, list):
            raise RuntimeError("no model list")
        return [
            m
            for m in models
            if isinstance(m, dict) and isinstance(m.get("name") or m.get("model"), str)
        ]

    async def refresh(self) -> None:
        results = await asyncio.gather(
            *(self.fetch(b) for b in self.backends), return_exceptions=True
        )
        now = time.monotonic()
        for backend, result in zip(self.backends, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("discovery failed", backend=backend.name, error=type(result).__name__)
                continue
            keys = frozenset(model_name_key(m.get("name") or m["model"]) for m in result)
            previous = self._lists.get(backend.name)
            self._lists[backend.name] = BackendModels(now, tuple(result), keys)
            self.last_success = now
            if previous is None or previous.keys != keys:
                self.version += 1
        self._rebuild(now)

    def _fresh(self, now: float) -> dict[str, BackendModels]:
        return {n: v for n, v in self._lists.items() if now - v.fetched_at <= self.ttl_s}

    def _rebuild(self, now: float) -> None:
        fresh = self._fresh(now)
        index: dict[str, list[Backend]] = {}
        union: dict[str, dict[str, Any]] = {}
        for backend in self.backends:  # configuration order is priority order
            entry = fresh.get(backend.name)
            if entry is None:
                continue
            for model in entry.models:
                key = model_name_key(model.get("name") or model["model"])
                index.setdefault(key, []).append(backend)
                union.setdefault(key, model)
        if set(index) != set(self._index) or any(index[k] != self._index.get(k) for k in index):
            self.version += 1
        self._index = index
        self._union = list(union.values())
        self._index_built_at = now

    def _maybe_expire(self) -> None:
        now = time.monotonic()
        if now - self._index_built_at > 1.0:
            self._rebuild(now)

    def backends_for(self, model: str) -> list[Backend]:
        """Backends hosting ``model``, in priority order (empty: nobody has it)."""
        self._maybe_expire()
        return self._index.get(model_name_key(model), [])

    def union(self) -> list[dict[str, Any]]:
        """The deduplicated union of every fresh backend's models."""
        self._maybe_expire()
        return self._union

    def models_of(self, backend_name: str) -> list[dict[str, Any]]:
        entry = self._fresh(time.monotonic()).get(backend_name)
        return list(entry.models) if entry else []

    def reachable(self) -> set[str]:
        """Backends whose last successful poll is within the TTL (even with no models)."""
        return set(self._fresh(time.monotonic()))

    def age_s(self) -> float | None:
        return None if self.last_success is None else time.monotonic() - self.last_success

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="model-discovery")

    async def _loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep polling whatever happens
                log.error("discovery tick failed", error=type(exc).__name__)
            await asyncio.sleep(self.refresh_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
