"""LineReader: every complete line of one upstream read at once, lines split across reads
joined, blank lines skipped, a line past the bound refused."""

from __future__ import annotations

from typing import cast

import aiohttp
import pytest

from neuronetz_gateway.proxy.streaming import LineReader, TruncatedStream


class ScriptedContent:
    """Stands in for ``aiohttp.StreamReader``: each ``readany`` returns the next read."""

    def __init__(self, reads: list[bytes]) -> None:
        self.reads = list(reads)
        self.calls = 0

    async def readany(self) -> bytes:
        self.calls += 1
        return self.reads.pop(0) if self.reads else b""


def reader(reads: list[bytes], max_line: int = 1 << 20) -> tuple[LineReader, ScriptedContent]:
    content = ScriptedContent(reads)
    return LineReader(cast(aiohttp.StreamReader, content), max_line), content


async def batches(line_reader: LineReader) -> list[list[bytes]]:
    out = []
    while lines := await line_reader.next_lines():
        out.append(lines)
    return out


async def test_every_complete_line_of_a_read_comes_at_once() -> None:
    lines, content = reader([b"a\nb\nc\n", b"d\n"])
    assert await batches(lines) == [[b"a", b"b", b"c"], [b"d"]]
    assert content.calls == 3  # two reads and the end


async def test_a_line_split_across_reads_is_joined() -> None:
    lines, _ = reader([b'{"a":', b"1}\n{", b'"b"', b":2}\n", b"tail"])
    assert await batches(lines) == [[b'{"a":1}'], [b'{"b":2}'], [b"tail"]]


async def test_blank_and_whitespace_lines_are_skipped_and_a_read_of_them_is_waited_past() -> None:
    lines, content = reader([b"\n\r\n \n", b"x\r\n\n", b"\n"])
    assert await batches(lines) == [[b"x\r"]]
    assert content.calls == 4


async def test_a_cut_last_line_is_returned_for_the_caller_to_refuse() -> None:
    lines, _ = reader([b"a\n", b'{"cut'])
    assert await batches(lines) == [[b"a"], [b'{"cut']]


@pytest.mark.parametrize(
    ("reads", "before"),
    [
        ([b"x" * 6, b"x" * 6, b"\n"], []),  # no newline yet, past the bound over two reads
        ([b"ok\n" + b"x" * 11, b"\n"], [[b"ok"]]),  # the complete lines come first
        ([b"ok\n" + b"x" * 11 + b"\nno\n", b"\n"], [[b"ok"]]),  # a whole line past it
        ([b"x" * 6, b"x" * 5 + b"\nno\n", b"\n"], []),  # completed past it
    ],
)
async def test_a_line_past_the_bound_is_refused_before_more_is_read(
    reads: list[bytes], before: list[list[bytes]]
) -> None:
    lines, content = reader(reads, max_line=10)
    for batch in before:
        assert await lines.next_lines() == batch
    with pytest.raises(TruncatedStream):
        await lines.next_lines()
    assert content.reads == [b"\n"]


async def test_next_line_leaves_the_rest_of_the_read_buffered() -> None:
    lines, content = reader([b"first\nsecond\nthird\n", b"fourth\n"])
    assert await lines.next_line() == b"first"
    assert lines.buffered_lines() == [b"second", b"third"]
    assert lines.buffered_lines() == []
    assert content.calls == 1
    assert await lines.next_line() == b"fourth"
    assert await lines.next_line() is None
