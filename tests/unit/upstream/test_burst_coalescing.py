"""Burst coalescing of streamed answers (``UpstreamResponse.coalesce_bursts``): bytes that
follow the previous bytes within ``BURST_GAP_S`` are handed over together, never later
than ``LINGER_S`` after the first of them, at once when the answer ends, fails or
``COALESCE_BYTES`` have gathered. The clock of burst detection is scripted here."""

from __future__ import annotations

import asyncio

import pytest

from neuronetz_gateway.upstream import http
from neuronetz_gateway.upstream.http import (
    BURST_GAP_S,
    COALESCE_BYTES,
    UpstreamConnectionError,
    UpstreamResponse,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def step(self, seconds: float) -> None:
        self.now += seconds


class FakeConnection:
    """What ``UpstreamResponse`` asks of its connection."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.read_s = 5.0
        self.finished: list[bool] = []

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def finish(self, *, reuse: bool) -> None:
        self.finished.append(reuse)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(http, "_now", clock)
    return clock


async def streaming(clock: Clock, *, coalesce: bool = True) -> UpstreamResponse:
    response = UpstreamResponse(FakeConnection())  # type: ignore[arg-type]
    response._on_head(200)
    if coalesce:
        response.coalesce_bursts()
    return response


async def waiting(response: UpstreamResponse) -> asyncio.Task[bytes]:
    task = asyncio.ensure_future(response.readany())
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done()
    return task


async def settles(task: asyncio.Task[bytes]) -> bool:
    for _ in range(5):
        await asyncio.sleep(0)
    return task.done()


async def test_bytes_after_a_pause_are_handed_over_at_once(clock: Clock) -> None:
    response = await streaming(clock)
    task = await waiting(response)
    clock.step(0.05)  # a token every 50 ms: a model at human speed
    response._on_body(b'{"n":1}\n')
    assert await settles(task)
    assert task.result() == b'{"n":1}\n'


async def test_a_burst_is_handed_over_together_after_the_linger(clock: Clock) -> None:
    response = await streaming(clock)
    task = await waiting(response)
    for n in range(50):
        clock.step(BURST_GAP_S / 10)
        response._on_body(b'{"n":%d}\n' % n)
    assert not await settles(task), "a burst is held, not handed over line by line"
    # Nothing else arrives: the linger timer hands the burst over by itself.
    data = await asyncio.wait_for(task, timeout=2.0)
    assert data == b"".join(b'{"n":%d}\n' % n for n in range(50))


async def test_a_burst_is_handed_over_once_enough_has_gathered(clock: Clock) -> None:
    response = await streaming(clock)
    task = await waiting(response)
    line = b"x" * 1023 + b"\n"
    sent = 0
    while not task.done():
        clock.step(BURST_GAP_S / 10)
        response._on_body(line)
        sent += len(line)
        await asyncio.sleep(0)
        assert sent <= COALESCE_BYTES + len(line)
    assert len(task.result()) == sent >= COALESCE_BYTES


async def test_the_end_of_the_answer_hands_over_what_is_held(clock: Clock) -> None:
    response = await streaming(clock)
    task = await waiting(response)
    clock.step(BURST_GAP_S / 10)
    response._on_body(b'{"done":true}\n')
    assert not await settles(task)
    response._on_complete()
    assert await settles(task)
    assert task.result() == b'{"done":true}\n'
    assert await response.readany() == b""


async def test_a_failure_hands_over_what_is_held_then_raises(clock: Clock) -> None:
    response = await streaming(clock)
    task = await waiting(response)
    clock.step(BURST_GAP_S / 10)
    response._on_body(b'{"n":1}\n')
    response._on_error(UpstreamConnectionError("reset"))
    assert await settles(task)
    assert task.result() == b'{"n":1}\n'
    with pytest.raises(UpstreamConnectionError):
        await response.readany()


async def test_without_coalescing_every_piece_wakes_the_reader(clock: Clock) -> None:
    response = await streaming(clock, coalesce=False)
    for n in range(3):
        task = await waiting(response)
        clock.step(BURST_GAP_S / 10)
        response._on_body(b'{"n":%d}\n' % n)
        assert await settles(task)
        assert task.result() == b'{"n":%d}\n' % n


async def test_closing_a_lingering_answer_cancels_its_timer(clock: Clock) -> None:
    response = await streaming(clock)
    task = await waiting(response)
    clock.step(BURST_GAP_S / 10)
    response._on_body(b'{"n":1}\n')
    assert response._linger is not None
    task.cancel()
    response.close()
    assert response._linger is None
