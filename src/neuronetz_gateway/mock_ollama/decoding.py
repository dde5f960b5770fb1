"""Request bodies read with the observable rules of Ollama's Go JSON decoder.

An empty body is ``missing request body``; a syntax error or a wrong type is a 400
with the decoder's wording; ``null`` decodes to an empty request; keys match struct
fields case-insensitively, the last spelling winning (``{"model":"a","MODEL":"b"}``
asks for ``b``), which is why the gateway re-serialises bodies instead of forwarding.
"""

from __future__ import annotations

from typing import Any

import orjson

from neuronetz_gateway.mock_ollama.wire import OllamaError


def parse_body(raw: bytes) -> tuple[Any, str | None]:
    """The parsed JSON (or ``None``) and the Go decoder's error message, if any."""
    if not raw.strip():
        return None, None
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError as exc:
        return None, _syntax_message(raw, exc.pos)


def _syntax_message(raw: bytes, position: int) -> str:
    text = raw.decode("utf-8", "replace")
    if position >= len(text.rstrip()):
        return "unexpected EOF"
    return f"invalid character {text[position]!r} looking for beginning of value"


def go_kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def request_object(raw: bytes, body: Any, json_error: str | None, go_type: str) -> dict[str, Any]:
    if json_error is not None:
        raise OllamaError(400, json_error)
    if not raw.strip():
        raise OllamaError(400, "missing request body")
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise OllamaError(
            400, f"json: cannot unmarshal {go_kind(body)} into Go value of type api.{go_type}"
        )
    return fold_keys(body)


def fold_keys(obj: dict[str, Any]) -> dict[str, Any]:
    if all(key == key.lower() for key in obj):
        return obj
    return {key.lower(): value for key, value in obj.items()}


def _type_error(go_type: str, key: str, value: object, field_type: str) -> OllamaError:
    return OllamaError(
        400,
        f"json: cannot unmarshal {go_kind(value)} into Go struct field "
        f"{go_type}.{key} of type {field_type}",
    )


def text(body: dict[str, Any], key: str, go_type: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _type_error(go_type, key, value, "string")
    return value


def flag(body: dict[str, Any], key: str, go_type: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise _type_error(go_type, key, value, "bool")
    return value


def items(body: dict[str, Any], key: str, go_type: str, field_type: str) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _type_error(go_type, key, value, field_type)
    return value


def mapping(body: dict[str, Any], key: str, go_type: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _type_error(go_type, key, value, "map[string]interface {}")
    return value
