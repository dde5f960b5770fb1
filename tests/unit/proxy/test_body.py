from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from starlette.requests import ClientDisconnect

from neuronetz_gateway.errors import BadRequest, PayloadTooLarge
from neuronetz_gateway.proxy.body import check_field_names, parse_json, parse_object, read_capped

Receive = Callable[[], Awaitable[dict[str, Any]]]


def _receive(*messages: dict[str, Any]) -> Receive:
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        if not pending:
            raise AssertionError("read past the last message")
        return pending.pop(0)

    return receive


def _chunks(*parts: bytes) -> Receive:
    return _receive(
        *(
            {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
            for i, part in enumerate(parts)
        )
    )


async def test_read_capped_refuses_declared_length_without_reading() -> None:
    with pytest.raises(PayloadTooLarge):
        await read_capped(_receive(), "2000", 1000)


async def test_read_capped_refuses_a_bad_declared_length() -> None:
    with pytest.raises(BadRequest):
        await read_capped(_receive(), "12x", 1000)


async def test_read_capped_stops_chunked_body_at_cap() -> None:
    with pytest.raises(PayloadTooLarge):
        await read_capped(_chunks(b"a" * 600, b"b" * 600, b"c"), None, 1000)
    assert await read_capped(_chunks(b"ab", b"c"), None, 1000) == b"abc"
    assert await read_capped(_chunks(b"whole"), "5", 1000) == b"whole"
    assert await read_capped(_receive({"type": "http.request"}), None, 1000) == b""


async def test_read_capped_raises_client_disconnect() -> None:
    receive = _receive(
        {"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.disconnect"}
    )
    with pytest.raises(ClientDisconnect):
        await read_capped(receive, None, 1000)


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


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        (b"[" * 32 + b"1" + b"]" * 32, True),  # a value at the deepest allowed level
        (b"[" * 33 + b"1" + b"]" * 33, False),
        (b"[" * 33 + b"]" * 33, True),  # the innermost list is at level 32 and empty
        (b'{"a": "' + b"[{" * 40 + b'"}', True),  # brackets inside a string
        (b'{"n": 9007199254740992}', True),  # 2**53
        (b'{"n": 9007199254740993}', False),
        (b'{"n": [-9007199254740993]}', False),
        (b'{"n": 999999999999999}', True),
        (b'{"n": "12345678901234567890"}', True),  # digits inside a string
        (b'{"n": 1.00000000000000000001}', True),  # floats are not bounded
    ],
)
def test_parse_limits_at_their_bounds(raw: bytes, ok: bool) -> None:
    """The text pre-check (brackets, runs of digits) only skips a walk that would find
    nothing: each bound holds exactly, on both sides."""
    if ok:
        parse_json(raw)
    else:
        with pytest.raises(BadRequest):
            parse_json(raw)
