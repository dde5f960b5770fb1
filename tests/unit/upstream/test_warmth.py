"""Warm routing: the order of candidates and the memory of loaded models."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from neuronetz_gateway.upstream.warmth import LoadedModels, warm_order


@dataclass
class FakeBackend:
    name: str
    in_flight: int = 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# (backends as name:in_flight in priority order, loaded backends, expected order)
CASES = [
    ("a:0 b:0 c:0", "", "a b c"),  # nothing loaded, all idle: priority
    ("a:0 b:0 c:0", "c", "c a b"),  # loaded first, even at the lowest priority
    ("a:0 b:0 c:0", "b c", "b c a"),  # several loaded: priority among them
    ("a:3 b:1 c:2", "", "b c a"),  # nothing loaded: fewest in flight
    ("a:2 b:2 c:0", "a b", "a b c"),  # loaded beats idle
    ("a:5 b:1 c:0", "a b", "b a c"),  # among loaded: fewest in flight
    ("a:1 b:1 c:1", "", "a b c"),  # ties keep priority order
    ("a:0", "", "a"),
    ("", "", ""),
]


@pytest.mark.parametrize(("hosts", "loaded", "expected"), CASES)
def test_warm_order(hosts: str, loaded: str, expected: str) -> None:
    backends = [FakeBackend(n, int(f)) for n, f in (h.split(":") for h in hosts.split())]
    warm = set(loaded.split())
    ordered = warm_order(backends, "llama3.2:latest", lambda b, m: b in warm)
    assert [b.name for b in ordered] == expected.split()


def test_warm_order_asks_about_the_requested_model_only() -> None:
    backends = [FakeBackend("a"), FakeBackend("b")]
    asked: set[tuple[str, str]] = set()

    def is_loaded(backend: str, model: str) -> bool:
        asked.add((backend, model))
        return backend == "b" and model == "qwen2.5:0.5b"

    assert [b.name for b in warm_order(backends, "llama3.2:latest", is_loaded)] == ["a", "b"]
    assert [b.name for b in warm_order(backends, "qwen2.5:0.5b", is_loaded)] == ["b", "a"]
    assert {m for _, m in asked} == {"llama3.2:latest", "qwen2.5:0.5b"}


def test_warm_order_does_not_touch_its_input() -> None:
    backends = [FakeBackend("a", 2), FakeBackend("b", 0)]
    assert [b.name for b in warm_order(backends, "m", lambda b, m: False)] == ["b", "a"]
    assert [b.name for b in backends] == ["a", "b"]


def test_loaded_models_poll_replaces_and_marks_add() -> None:
    clock = Clock()
    loaded = LoadedModels(ttl_s=15, clock=clock)
    loaded.replace("a", ["llama3.2:latest", "qwen2.5:0.5b"])
    assert loaded.is_loaded("a", "qwen2.5:0.5b")
    assert not loaded.is_loaded("b", "qwen2.5:0.5b")
    loaded.replace("a", ["llama3.2:latest"])  # qwen was unloaded
    assert loaded.loaded_on("a") == {"llama3.2:latest"}
    loaded.mark("b", "qwen2.5:0.5b")  # a call succeeded there
    assert loaded.is_loaded("b", "qwen2.5:0.5b")


def test_loaded_models_expire_without_news() -> None:
    clock = Clock()
    loaded = LoadedModels(ttl_s=15, clock=clock)
    loaded.replace("a", ["llama3.2:latest"])
    clock.now += 15
    assert loaded.is_loaded("a", "llama3.2:latest")
    clock.now += 0.1
    assert not loaded.is_loaded("a", "llama3.2:latest")
    assert loaded.loaded_on("a") == set()
    loaded.mark("a", "llama3.2:latest")
    assert loaded.is_loaded("a", "llama3.2:latest")
