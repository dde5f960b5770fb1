"""What the mock is told to do: which models it has and how it misbehaves.

The same keys are accepted by ``MockOllama.configure(**keys)`` and by
``POST /_mock/config``; an update changes only the keys it names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypedDict, get_args

from neuronetz_gateway.mock_ollama.catalog import (
    DEFAULT_MODEL_NAMES,
    ModelSpec,
    canonical_name,
    model_spec,
)

FailMode = Literal[
    "before_first_chunk",
    "after_first_chunk",
    "error_after_first_chunk",
    "reset_before_first_byte",
    "busy",
    "error_500_with_trace",
]
FAIL_MODES: frozenset[str] = frozenset(get_args(FailMode))


class MockConfigUpdate(TypedDict, total=False):
    """Keyword arguments of ``configure``; every key is optional."""

    models: Sequence[str | Mapping[str, object]]
    delay_s: float
    chunk_delay_s: float
    fail: FailMode | None
    fail_count: int | None
    loaded_models: Sequence[str]
    chunks: int | None
    require_token: str | None
    request_log_size: int


class MockConfigError(ValueError):
    """A configuration update was refused; the message names the key."""


def _default_models() -> tuple[ModelSpec, ...]:
    return tuple(model_spec(name, index) for index, name in enumerate(DEFAULT_MODEL_NAMES))


@dataclass(frozen=True, slots=True)
class MockConfig:
    """The mock's whole behaviour. Defaults: three models, no delays, no faults.

    ``fail`` applies to model requests only (chat, generate, embed, embeddings), after
    the request has been validated; ``fail_count`` limits it to the next N of them
    (``None``: every one). ``delay_s`` is waited before answering a model request;
    ``chunk_delay_s`` between two frames of a stream. ``chunks`` forces the number of
    content chunks of a completion. ``request_log_size`` bounds the request log.
    """

    models: tuple[ModelSpec, ...] = field(default_factory=_default_models)
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    fail: FailMode | None = None
    fail_count: int | None = None
    loaded_models: tuple[str, ...] = ()
    chunks: int | None = None
    require_token: str | None = None
    request_log_size: int = 10_000

    def find_model(self, name: str) -> ModelSpec | None:
        wanted = canonical_name(name)
        for spec in self.models:
            if spec.name == wanted:
                return spec
        return None

    def updated(self, changes: Mapping[str, object]) -> MockConfig:
        """A copy with ``changes`` applied; raises ``MockConfigError`` on a bad key or value."""
        parsed: dict[str, Any] = {}
        for key, value in changes.items():
            parser = _PARSERS.get(key)
            if parser is None:
                raise MockConfigError(f"unknown config key {key!r} (known: {', '.join(_PARSERS)})")
            try:
                parsed[key] = parser(value)
            except (TypeError, ValueError) as exc:
                raise MockConfigError(f"{key}: {exc}") from exc
        return replace(self, **parsed)

    def as_json(self) -> dict[str, Any]:
        return {
            "models": [spec.name for spec in self.models],
            "delay_s": self.delay_s,
            "chunk_delay_s": self.chunk_delay_s,
            "fail": self.fail,
            "fail_count": self.fail_count,
            "loaded_models": list(self.loaded_models),
            "chunks": self.chunks,
            "require_token": self.require_token,
            "request_log_size": self.request_log_size,
        }


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError("expected a number of seconds >= 0")
    return float(value)


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("expected an integer >= 0")
    return value


def _optional(parse: Callable[[object], Any]) -> Callable[[object], Any]:
    return lambda value: None if value is None else parse(value)


def _fail_mode(value: object) -> str:
    if value not in FAIL_MODES:
        raise ValueError(f"expected null or one of {sorted(FAIL_MODES)}")
    return str(value)


def _token(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected null or a non-empty string")
    return value


def _names(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of model names")
    return tuple(canonical_name(v) for v in value)


def _models(value: object) -> tuple[ModelSpec, ...]:
    if not isinstance(value, list | tuple):
        raise ValueError("expected a list of model names or {'name': ...} objects")
    specs = tuple(model_spec(entry, index) for index, entry in enumerate(value))
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError("model names must be unique")
    return specs


_PARSERS: dict[str, Callable[[object], Any]] = {
    "models": _models,
    "delay_s": _seconds,
    "chunk_delay_s": _seconds,
    "fail": _optional(_fail_mode),
    "fail_count": _optional(_count),
    "loaded_models": _names,
    "chunks": _optional(_count),
    "require_token": _optional(_token),
    "request_log_size": _count,
}
