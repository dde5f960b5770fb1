from collections.abc import AsyncIterator

import pytest

from neuronetz_gateway.errors import BadRequest, PayloadTooLarge
from neuronetz_gateway.proxy.body import check_field_names, parse_json, parse_object, read_capped


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_read_capped_refuses_declared_length_without_reading() -> None:
    async def never() -> AsyncIterator[bytes]:
        raise AssertionError("must not read")
        yield b""

    with pytest.raises(PayloadTooLarge):
        await read_capped(never(), "2000", 1000)


async def test_read_capped_stops_chunked_body_at_cap() -> None:
    with pytest.raises(PayloadTooLarge):
        await read_capped(_chunks(b"a" * 600, b"b" * 600, b"c"), None, 1000)
    assert await read_capped(_chunks(b"ab", b"c"), None, 1000) == b"abc"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"[1,2",
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": "\\ud800"}',
        b'{"a": "\xff"}',
        b'{"a": ' + b"9" * 5000 + b"}",
        b'{"a": 1e400}',
        b'{"a": -1e999}',
        b"[" * 40 + b"]" * 40,
    ],
)
def test_parse_refuses(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_json(raw)


def test_parse_object_needs_object() -> None:
    with pytest.raises(BadRequest):
        parse_object(b"[1]")
    assert parse_object(b'{"a": [1, {"b": 2.5}]}') == {"a": [1, {"b": 2.5}]}


@pytest.mark.parametrize(
    "obj",
    [{"model": "a", "MODEL": "b"}, {"Model": "a"}, {"x": 1, "X": 2}, {"STREAM": True}],
)
def test_field_name_collisions(obj: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        check_field_names(obj, ("model", "stream"), "request")


def test_field_names_ok() -> None:
    check_field_names({"model": "a", "other": 1}, ("model",), "request")
