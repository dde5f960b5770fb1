"""Argon2id hashing of API keys, run off the event loop with bounded parallelism.

Verifications run in the hasher's own threads at a lower CPU priority (nice +10 on Linux):
~0.1 s of CPU each, they take what the event loop leaves, so a burst of unknown keys
(each verified, against a decoy when the prefix is unknown) slows the bad requests, not
the traffic of keys already verified."""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@dataclass(frozen=True, slots=True)
class Argon2Params:
    time_cost: int = 3
    memory_cost_kib: int = 65_536
    parallelism: int = 4


HASH_THREAD_NICE = 10


def _lower_priority() -> None:
    try:  # per thread on Linux; elsewhere, or when not permitted, the default priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICE)
    except (AttributeError, OSError):
        pass


class KeyHasher:
    """Hash and verify keys. ``verify`` never raises for a bad key; it returns False."""

    def __init__(self, params: Argon2Params, *, max_parallel: int = 2) -> None:
        self._hasher = PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_cost_kib,
            parallelism=params.parallelism,
        )
        # Each verification holds `memory_cost` KiB: bound how many run at once.
        self._slots = asyncio.Semaphore(max_parallel)
        self._threads = ThreadPoolExecutor(
            max_workers=max_parallel, thread_name_prefix="argon2", initializer=_lower_priority
        )
        # Verified when the prefix is unknown, so both failures cost the same time.
        self._decoy_hash = self._hasher.hash("nz_decoy-key-that-never-matches")

    def hash(self, key: str) -> str:
        return self._hasher.hash(key)

    def verify_sync(self, key_hash: str, key: str) -> bool:
        try:
            return self._hasher.verify(key_hash, key)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def verify(self, key_hash: str | None, key: str) -> bool:
        """Verify in a worker thread; with no hash, burn the same time on a decoy."""
        loop = asyncio.get_running_loop()
        async with self._slots:
            if key_hash is None:
                await loop.run_in_executor(self._threads, self.verify_sync, self._decoy_hash, key)
                return False
            return await loop.run_in_executor(self._threads, self.verify_sync, key_hash, key)
