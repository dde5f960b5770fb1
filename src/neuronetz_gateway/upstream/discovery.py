"""Model discovery: every backend's `/api/tags`, polled in parallel on each tick.

The cache keeps each backend's model list with the time it was fetched. A list older
than the cache TTL is dropped, so a backend that stops answering stops being offered
(fail closed: an unreachable backend means no models from it).

With the ``warm`` routing policy, each backend's `/api/ps` is polled too, more often
(every ``LOADED_REFRESH_S`` at most), for the gateway's own use only: the loaded models
reorder the candidates of a request, they are never shown to a client.
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
from neuronetz_gateway.upstream.warmth import LoadedModels, RoutingPolicy, warm_order

log = structlog.get_logger("neuronetz.discovery")

LOADED_REFRESH_S = 5.0

# Marks the gateway's own polls, so backends (and tests) can tell them from proxied traffic.
DISCOVERY_USER_AGENT = "neuronetz-gateway-discovery"


@dataclass(frozen=True, slots=True)
class BackendModels:
    fetched_at: float  # monotonic
    models: tuple[dict[str, Any], ...]
    keys: frozenset[str]


async def fetch_models(backend: Backend, path: str, *, timeout_s: float) -> list[dict[str, Any]]:
    """The ``models`` of a backend's `/api/tags` or `/api/ps` answer; raises on any failure
    (connection, status other than 200, a body that is not such a list)."""
    async with backend.session.get(
        backend.url(path),
        allow_redirects=False,
        headers={"User-Agent": DISCOVERY_USER_AGENT},
        timeout=aiohttp.ClientTimeout(total=timeout_s),
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


class Discovery:
    """Which backend hosts which model, and in what order to try them.

    ``backends_for`` reads memory only. A failed poll keeps the previous list until
    it is older than ``ttl_s``; one backend's failure never delays another's poll.
    """

    def __init__(
        self,
        backends: Sequence[Backend],
        *,
        refresh_s: float,
        ttl_s: float,
        routing_policy: RoutingPolicy = "priority",
        loaded_refresh_s: float = LOADED_REFRESH_S,
    ) -> None:
        self.backends = list(backends)
        self.refresh_s = refresh_s
        self.ttl_s = max(ttl_s, refresh_s)
        self.routing_policy: RoutingPolicy = routing_policy
        self._tick_s = refresh_s
        self.loaded: LoadedModels | None = None
        if routing_policy == "warm":
            self._tick_s = min(refresh_s, loaded_refresh_s)
            self.loaded = LoadedModels(ttl_s=3 * self._tick_s)
        self._lists: dict[str, BackendModels] = {}
        self.version = 0  # grows whenever the served union may have changed
        self.last_success: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._index: dict[str, list[Backend]] = {}
        self._union: list[dict[str, Any]] = []
        self._index_built_at = -1.0

    async def _get_models(self, backend: Backend, path: str) -> list[dict[str, Any]]:
        return await fetch_models(backend, path, timeout_s=max(2.0, min(10.0, self.refresh_s)))

    async def fetch(self, backend: Backend) -> list[dict[str, Any]]:
        """One backend's `/api/tags` models (raises on any failure)."""
        return await self._get_models(backend, "/api/tags")

    async def fetch_loaded(self, backend: Backend) -> list[dict[str, Any]]:
        """One backend's `/api/ps` models (raises on any failure)."""
        return await self._get_models(backend, "/api/ps")

    async def refresh(self) -> None:
        """Poll every backend's `/api/tags` (and `/api/ps` when warm) in parallel."""
        tags = asyncio.gather(*(self.fetch(b) for b in self.backends), return_exceptions=True)
        if self.loaded is not None:
            results, _ = await asyncio.gather(tags, self.refresh_loaded())
        else:
            results = await tags
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

    async def refresh_loaded(self) -> None:
        """Poll every backend's `/api/ps` in parallel; a failure keeps the last answer."""
        loaded = self.loaded
        if loaded is None:
            return
        results = await asyncio.gather(
            *(self.fetch_loaded(b) for b in self.backends), return_exceptions=True
        )
        for backend, result in zip(self.backends, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("ps poll failed", backend=backend.name, error=type(result).__name__)
                continue
            loaded.replace(
                backend.name, (model_name_key(m.get("name") or m["model"]) for m in result)
            )

    def note_served(self, backend: Backend, model: str) -> None:
        """A model call succeeded on ``backend``: Ollama has ``model`` loaded there now."""
        if self.loaded is not None:
            self.loaded.mark(backend.name, model_name_key(model))

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
        """Backends hosting ``model`` in the order to try them (empty: nobody has it).

        ``priority``: configuration order. ``warm``: loaded first, then fewest in flight,
        then configuration order.
        """
        self._maybe_expire()
        key = model_name_key(model)
        hosts = self._index.get(key, [])
        if self.loaded is None:
            return hosts
        return warm_order(hosts, key, self.loaded.is_loaded)

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
        tags_due = 0.0
        while True:
            try:
                if time.monotonic() >= tags_due:
                    tags_due = time.monotonic() + self.refresh_s
                    await self.refresh()
                else:
                    await self.refresh_loaded()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep polling whatever happens
                log.error("discovery tick failed", error=type(exc).__name__)
            await asyncio.sleep(self._tick_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
