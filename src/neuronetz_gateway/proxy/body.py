"""Reading and parsing request bodies: capped, strict, and shape-checked. No framework types.

``read_capped`` never reads past the cap, whether the client sent Content-Length or a
chunked body. ``parse_json`` refuses everything Ollama's Go decoder would read
differently from us: invalid UTF-8, lone surrogates, NaN, huge numbers, deep nesting.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import Receive

from neuronetz_gateway.errors import BadRequest, PayloadTooLarge

MAX_DEPTH = 32
MAX_INT = 2**53


async def read_capped(receive: Receive, content_length: str | None, cap: int) -> bytes:
    """The request body from the ASGI ``receive``, refused beyond ``cap`` bytes; raises
    Starlette's ``ClientDisconnect`` if the client leaves while sending it."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise BadRequest("invalid Content-Length") from None
        if declared > cap:
            raise PayloadTooLarge(f"request body exceeds {cap} bytes")
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            continue
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            raise PayloadTooLarge(f"request body exceeds {cap} bytes")
        if not message.get("more_body", False):
            if not parts:
                return chunk  # the usual case: the whole body in one message
            parts.append(chunk)
            return b"".join(parts)
        parts.append(chunk)


def parse_json(raw: bytes) -> Any:
    if not raw:
        raise BadRequest("missing request body")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("request body is not valid JSON") from None
    if _may_be_deep_or_huge(raw):
        _check_depth_and_numbers(value)
    return value


def parse_object(raw: bytes) -> dict[str, Any]:
    value = parse_json(raw)
    if not isinstance(value, dict):
        raise BadRequest("request body must be a JSON object")
    return value


def _may_be_deep_or_huge(raw: bytes) -> bool:
    """False when the text alone proves the walk below would find nothing: a value can
    only sit deeper than ``MAX_DEPTH`` below that many ``{``/``[``, and an integer beyond
    ``MAX_INT`` (16 digits) needs 16 digits in a row. Brackets and digits inside strings
    only make this answer True more often (then the walk decides)."""
    return raw.count(b"{") + raw.count(b"[") > MAX_DEPTH or _LONG_DIGITS.search(raw) is not None


_LONG_DIGITS = re.compile(rb"[0-9]{16}")


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
