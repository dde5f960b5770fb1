"""Warm routing: which models each backend has loaded, and the order it implies.

Ollama loads a model on the first request for it and keeps it for ``keep_alive``;
spreading requests blindly over several backends makes each of them load (and unload)
the same models. With the ``warm`` policy the gateway prefers, among the backends that
host a model, one where it is already loaded, then the one with the fewest requests in
flight, with configuration order as the tie-break.

What is loaded comes from each backend's ``/api/ps``, polled by discovery (never
exposed to clients), and from the gateway's own successful calls in between two polls.
Ordering reads memory only: no I/O on the request path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, Protocol, TypeVar

RoutingPolicy = Literal["priority", "warm"]


class Routable(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def in_flight(self) -> int: ...


class LoadedModels:
    """Per backend, the model keys believed loaded, each with the time it was last seen.

    A poll replaces a backend's set; ``mark`` adds one model after a successful call.
    Entries older than ``ttl_s`` are ignored, so a backend that stops answering
    ``/api/ps`` stops counting as warm.
    """

    def __init__(self, *, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._seen: dict[str, dict[str, float]] = {}

    def replace(self, backend: str, model_keys: Iterable[str]) -> None:
        now = self._clock()
        self._seen[backend] = dict.fromkeys(model_keys, now)

    def mark(self, backend: str, model_key: str) -> None:
        self._seen.setdefault(backend, {})[model_key] = self._clock()

    def is_loaded(self, backend: str, model_key: str) -> bool:
        seen = self._seen.get(backend, {}).get(model_key)
        return seen is not None and self._clock() - seen <= self.ttl_s

    def loaded_on(self, backend: str) -> set[str]:
        now = self._clock()
        return {k for k, t in self._seen.get(backend, {}).items() if now - t <= self.ttl_s}


B = TypeVar("B", bound=Routable)


def warm_order(
    hosts: Sequence[B], model_key: str, is_loaded: Callable[[str, str], bool]
) -> list[B]:
    """``hosts`` (in priority order) reordered: loaded first, then fewest in flight.

    The sort is stable, so equal backends keep their priority order.
    """
    if len(hosts) < 2:
        return list(hosts)
    return sorted(hosts, key=lambda b: (not is_loaded(b.name, model_key), b.in_flight))
