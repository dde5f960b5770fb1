"""Typed readers for fields of an untrusted OpenAI request body.

Each reader returns ``None`` for a missing or ``null`` field (OpenAI treats both as "not
set") and raises ``BadRequest`` naming the field otherwise, so a client always learns
which field was wrong. ``param`` is the field's path in the request, e.g.
``messages[2].content``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from neuronetz_gateway.errors import BadRequest

# JSON numbers beyond int64 cannot reach Ollama's Go decoder intact.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _type_error(param: str, expected: str) -> BadRequest:
    return BadRequest(f"'{param}' must be {expected}", param=param)


def read_str(body: Mapping[str, Any], key: str, *, param: str | None = None) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _type_error(param or key, "a string")


def read_bool(body: Mapping[str, Any], key: str, *, param: str | None = None) -> bool | None:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise _type_error(param or key, "a boolean")


def read_int(
    body: Mapping[str, Any],
    key: str,
    *,
    param: str | None = None,
    minimum: int = INT64_MIN,
    maximum: int = INT64_MAX,
) -> int | None:
    """An integer in ``[minimum, maximum]``; ``3.0`` counts as 3, like Ollama's decoder."""
    value = body.get(key)
    if value is None:
        return None
    name = param or key
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type_error(name, "an integer")
    if not minimum <= value <= maximum:
        if maximum == INT64_MAX:
            bound = f"at least {minimum}"
        elif minimum == INT64_MIN:
            bound = f"at most {maximum}"
        else:
            bound = f"between {minimum} and {maximum}"
        raise BadRequest(f"'{name}' must be {bound}", param=name)
    return value


def read_number(
    body: Mapping[str, Any],
    key: str,
    *,
    minimum: float,
    maximum: float,
    param: str | None = None,
) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    name = param or key
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _type_error(name, "a number")
    # Also refuses NaN and infinities; int/float comparison is exact, so huge integers
    # are refused here before float() could overflow on them.
    if not minimum <= value <= maximum:
        raise BadRequest(f"'{name}' must be between {minimum:g} and {maximum:g}", param=name)
    return float(value)


def read_object(
    body: Mapping[str, Any], key: str, *, param: str | None = None
) -> dict[str, Any] | None:
    value = body.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise _type_error(param or key, "an object")


def read_list(body: Mapping[str, Any], key: str, *, param: str | None = None) -> list[Any] | None:
    value = body.get(key)
    if value is None or isinstance(value, list):
        return value
    raise _type_error(param or key, "an array")


def read_model(body: Mapping[str, Any]) -> str:
    """The required, non-empty ``model`` field."""
    model = read_str(body, "model")
    if not model:
        raise BadRequest("'model' is required", param="model")
    return model
