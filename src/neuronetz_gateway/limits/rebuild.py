"""One rebuild per counter at a time.

After a restart or a flush, every concurrent admission finds the same counters missing;
without coalescing each would read the usage records again (a thundering herd on the
SQL store exactly when it matters least). Here the first admission rebuilds, the others
wait for it, and an admission that saw a counter missing before a rebuild of it
completed does not start another one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Final, Generic, TypeVar

K = TypeVar("K", bound=Hashable)

_REMEMBERED: Final = 4096  # completed rebuilds remembered; forgetting costs one re-read


class Rebuilds(Generic[K]):
    """Coalesces concurrent rebuilds of the same counters (one event loop)."""

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[None]] = {}
        self._sequence = 0
        self._completed: dict[K, int] = {}

    def mark(self) -> int:
        """A point in time to pass as ``since`` to :meth:`run`: take it before looking."""
        return self._sequence

    async def run(
        self,
        keys: Sequence[K],
        rebuild: Callable[[list[K]], Awaitable[None]],
        *,
        since: int | None = None,
    ) -> None:
        """Rebuild ``keys`` found missing at ``since``.

        Keys being rebuilt are waited for, keys rebuilt after ``since`` are skipped, the
        rest are rebuilt by one call of ``rebuild``.
        """
        if since is not None:
            keys = [key for key in keys if self._completed.get(key, 0) <= since]
        waits = {self._running[key] for key in keys if key in self._running}
        fresh = [key for key in dict.fromkeys(keys) if key not in self._running]
        if fresh:
            task = asyncio.ensure_future(rebuild(fresh))
            for key in fresh:
                self._running[key] = task
            task.add_done_callback(lambda done: self._finished(done, fresh))
            waits.add(task)
        if waits:
            # A cancelled admission must not cancel a rebuild others are waiting for.
            await asyncio.shield(asyncio.gather(*waits))

    async def settled(self) -> None:
        """Wait for the rebuilds running now (not for later ones), whatever their outcome."""
        running = set(self._running.values())
        if running:
            await asyncio.shield(asyncio.gather(*running, return_exceptions=True))

    def _finished(self, task: asyncio.Future[None], keys: list[K]) -> None:
        for key in keys:
            if self._running.get(key) is task:
                del self._running[key]
        if task.cancelled() or task.exception() is not None:
            return  # the waiters re-raise it; nothing was rebuilt
        if len(self._completed) > _REMEMBERED:
            self._completed.clear()
        self._sequence += 1
        for key in keys:
            self._completed[key] = self._sequence
