"""Reading and parsing request bodies: capped, strict, and shape-checked. No framework types.

``read_capped`` never reads past the cap, whether the client sent Content-Length or a
chunked body. ``parse_json`` refuses everything Ollama's Go decoder would read
differently from us: invalid UTF-8, lone surrogates, NaN, huge numbers, deep nesting.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import orjson

from neuronetz_gateway.errors import BadRequest, PayloadTooLarge

MAX_DEPTH = 32
MAX_INT = 2**53


async def read_capped(chunks: AsyncIterator[bytes], content_length: str | None, cap: int) -> bytes:
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise BadRequest("invalid Content-Length") from None
        if declared > cap:
            raise PayloadTooLarge(f"request body exceeds {cap} bytes")
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > cap:
            raise PayloadTooLarge(f"request body exceeds {cap} bytes")
        parts.append(chunk)
    return b"".join(parts)


def parse_json(raw: bytes) -> Any:
    if not raw:
        raise BadRequest("missing request body")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("request body is not valid JSON") from None
    _check_depth_and_numbers(value)
    return value


def parse_object(raw: bytes) -> dict[str, Any]:
    value = parse_json(raw)
    if not isinstance(value, dict):
        raise BadRequest("request body must be a JSON object")
    return value


def _check_depth_and_numbers(root: Any) -> None:
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(f"request body is nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, int) and not isinstance(value, bool):
            if not -MAX_INT <= value <= MAX_INT:
                raise BadRequest("a number in the request body is out of range")


@functools.cache
def _by_lower_name(known: tuple[str, ...]) -> dict[str, str]:
    return {k.lower(): k for k in known}


def check_field_names(obj: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    """Refuse keys that differ from a known field only in case, or collide with each other.

    Ollama's decoder matches struct fields case-insensitively (last one wins), so
    ``{"model": "a", "MODEL": "b"}`` would be read as model ``b`` after we checked ``a``.
    """
    lowered: dict[str, str] = {}
    known_lower = _by_lower_name(known)
    for key in obj:
        low = key.lower()
        if low in lowered:
            raise BadRequest(f"duplicate field {key!r} in {where} (field names ignore case)")
        lowered[low] = key
        exact = known_lower.get(low)
        if exact is not None and exact != key:
            raise BadRequest(f"unknown field {key!r} in {where}; did you mean {exact!r}?")
