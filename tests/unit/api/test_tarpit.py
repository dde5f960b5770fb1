"""Answers to an address the auth throttle blocks wait for a shared tick, so that the
refusals of one tick go out in the same loop turn."""

from __future__ import annotations

import asyncio

from neuronetz_gateway.api.edge import TARPIT_TICK_S, _tarpit


async def test_refusals_started_within_one_tick_end_together_on_the_tick() -> None:
    loop = asyncio.get_running_loop()
    ended: list[float] = []

    async def refusal(after_s: float) -> None:
        await asyncio.sleep(after_s)
        started = loop.time()
        await _tarpit()
        ended.append(loop.time())
        assert loop.time() - started <= TARPIT_TICK_S + 0.02

    # Line up just after a tick, then start five refusals within the next few ms (the
    # tick leaves ~20 ms of room for a loaded machine).
    await asyncio.sleep(TARPIT_TICK_S - loop.time() % TARPIT_TICK_S + 0.001)
    await asyncio.gather(*(refusal(i * 0.001) for i in range(5)))
    assert max(ended) - min(ended) < 0.002, ended
    ticks = ended[0] / TARPIT_TICK_S
    assert abs(ticks - round(ticks)) * TARPIT_TICK_S < 0.01  # on a tick, give or take load
