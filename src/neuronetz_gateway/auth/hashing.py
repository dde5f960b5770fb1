"""Argon2id hashing of API keys, run off the event loop with bounded parallelism."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@dataclass(frozen=True, slots=True)
class Argon2Params:
    time_cost: int = 3
    memory_cost_kib: int = 65_536
    parallelism: int = 4


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
        async with self._slots:
            if key_hash is None:
                await asyncio.to_thread(self.verify_sync, self._decoy_hash, key)
                return False
            return await asyncio.to_thread(self.verify_sync, key_hash, key)
