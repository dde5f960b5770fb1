"""``unless_disconnected``: the server's disconnect signal, and the fallback watcher."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from neuronetz_gateway.proxy.responses import ClientGone, unless_disconnected
from neuronetz_gateway.server.protocol import DISCONNECT_SIGNAL, DisconnectSignal


async def _never() -> dict[str, Any]:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def _disconnect_after(seconds: float) -> dict[str, Any]:
    await asyncio.sleep(seconds)
    return {"type": "http.disconnect"}


async def test_signal_cancels_the_work_and_raises_client_gone() -> None:
    signal = DisconnectSignal()
    work_cancelled = asyncio.Event()

    async def work() -> str:
        try:
            await asyncio.sleep(10)
        finally:
            work_cancelled.set()
        return "done"

    asyncio.get_running_loop().call_later(0.05, signal.fire)
    with pytest.raises(ClientGone):
        await unless_disconnected({DISCONNECT_SIGNAL: signal}, _never, work())
    assert work_cancelled.is_set()
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_connection_already_lost_is_gone_at_once() -> None:
    signal = DisconnectSignal()
    signal.fire()
    work = asyncio.sleep(10, "never")
    with pytest.raises(ClientGone):
        await unless_disconnected({DISCONNECT_SIGNAL: signal}, _never, work)
    work.close()


async def test_finished_work_leaves_no_callback_behind() -> None:
    signal = DisconnectSignal()
    for _ in range(3):
        assert (
            await unless_disconnected({DISCONNECT_SIGNAL: signal}, _never, asyncio.sleep(0, 7)) == 7
        )
    signal.fire()  # nothing registered any more: no stray cancellation
    await asyncio.sleep(0)


async def test_without_a_signal_a_watcher_reads_receive() -> None:
    with pytest.raises(ClientGone):
        await unless_disconnected({}, lambda: _disconnect_after(0.05), asyncio.sleep(10))
    assert await unless_disconnected({}, _never, asyncio.sleep(0, "ok")) == "ok"
