"""Who is calling: the bearer key → a ``Principal``, with a verified-key cache.

Contract:
- Every failure (missing, malformed, unknown, wrong secret, expired, revoked key,
  disabled tenant) raises the same ``Unauthorized``; nothing tells them apart.
- Argon2id runs only on a cache miss, in a worker thread; an unknown prefix verifies a
  decoy hash, so it costs the same time as a wrong secret.
- Only successes are cached (by a digest of the full key, never the key), for at most
  ``cache_ttl_s`` and never past the key's expiry. Failures are counted per client IP;
  past the limit the IP gets 429 before any hashing.
- ``RevisionWatcher`` polls the SQL store's revision counter and empties the cache when
  tenants or keys change, so revocation reaches every gateway within about a second.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from neuronetz_gateway.auth.hashing import KeyHasher
from neuronetz_gateway.auth.keys import bearer_token, cache_digest, key_prefix
from neuronetz_gateway.db.engine import SessionFactory
from neuronetz_gateway.db.models import ApiKey, Tenant
from neuronetz_gateway.errors import RateLimited, ServiceUnavailable, Unauthorized
from neuronetz_gateway.limits.base import Limits, LimitStore, Subject
from neuronetz_gateway.proxy.native import model_name_key
from neuronetz_gateway.tenancy.service import current_revision, key_for_auth

log = structlog.get_logger("neuronetz.auth")

# Cache misses being verified at once for one client address; more get 429 before hashing.
MAX_VERIFICATIONS_PER_IP = 4


@dataclass(frozen=True, slots=True)
class DefaultLimits:
    rpm: int | None
    tpm: int | None
    concurrent: int | None
    daily_budget: int | None
    monthly_budget: int | None
    total_budget: int | None


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated key, its tenant, and everything the request path needs of them."""

    key_id: int
    key_prefix: str
    key_name: str
    tenant_id: int
    tenant_name: str
    allow_all_models: bool
    allowed_models: frozenset[str]  # normalised with ``model_name_key``
    subjects: tuple[Subject, Subject]  # (key, tenant) with effective limits
    log_prompts: bool
    prompt_retention_days: int | None
    weight: int
    queue_timeout_s: float | None


def _pick(*values: int | None) -> int | None:
    for value in values:
        if value is not None:
            return value
    return None


def principal_of(key: ApiKey, tenant: Tenant, defaults: DefaultLimits) -> Principal:
    """Effective limits: the key's override, else the tenant's value, else the default."""
    fields = ("rpm", "tpm", "concurrent", "daily_budget", "monthly_budget", "total_budget")
    tenant_limits = Limits(**{f: _pick(getattr(tenant, f), getattr(defaults, f)) for f in fields})
    key_limits = Limits(
        **{f: _pick(getattr(key, f), getattr(tenant, f), getattr(defaults, f)) for f in fields}
    )
    return Principal(
        key_id=key.id,
        key_prefix=key.prefix,
        key_name=key.name,
        tenant_id=tenant.id,
        tenant_name=tenant.name,
        allow_all_models=tenant.allow_all_models,
        allowed_models=frozenset(model_name_key(m) for m in (tenant.allowed_models or [])),
        subjects=(Subject("key", key.id, key_limits), Subject("tenant", tenant.id, tenant_limits)),
        log_prompts=key.log_prompts,
        prompt_retention_days=key.prompt_retention_days,
        weight=tenant.weight,
        queue_timeout_s=tenant.queue_timeout_s,
    )


@dataclass(slots=True)
class _Cached:
    principal: Principal
    valid_until: float  # monotonic


MAX_BLOCKED_ADDRESSES = 10_000
MAX_PROVEN_KEYS = 100_000


class Authenticator:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        hasher: KeyHasher,
        limits: LimitStore,
        defaults: DefaultLimits,
        cache_ttl_s: float,
        failures_per_ip_per_min: int,
    ) -> None:
        self._sessions = sessions
        self._hasher = hasher
        self._limits = limits
        self._defaults = defaults
        self._ttl = cache_ttl_s
        self._failures_per_min = failures_per_ip_per_min
        self._cache: dict[bytes, _Cached] = {}
        # Key digest -> the stored hash the key was proven against with Argon2. The proof
        # holds for as long as that hash is the one stored: when a cache entry expires,
        # the key's row is read again (revocation, expiry, tenant, limits) but Argon2 is
        # not run again (it held every request of the key for ~0.1 s each TTL).
        self._proven: dict[bytes, str] = {}
        self._pending: dict[bytes, asyncio.Future[Principal | None]] = {}
        self._in_progress: dict[str, int] = {}
        # Addresses the throttle refused, until when (monotonic): a local copy of the
        # store's answer, so the edge can refuse their next requests before any work.
        self._blocked: dict[str, float] = {}
        self._generation = 0
        self.last_used: dict[int, datetime] = {}

    def invalidate(self) -> None:
        self._cache.clear()
        self._generation += 1

    async def authenticate(self, authorization: str | None, client_ip: str) -> Principal:
        token = bearer_token(authorization)
        if token is not None:
            digest = cache_digest(token)
            hit = self._cache.get(digest)
            if hit is not None:
                if hit.valid_until > time.monotonic():
                    self.last_used[hit.principal.key_id] = datetime.now(UTC)
                    return hit.principal
                del self._cache[digest]
        limit = self._failures_per_min
        # Verifications of this address still running count as failures already: the
        # allowance bounds the Argon2 runs an address can start in a minute, not only the
        # failures recorded once they end (with 4 in progress: 20 runs, not 24).
        in_progress = self._in_progress.get(client_ip, 0)
        if limit > 0 and in_progress >= limit:
            raise RateLimited(
                "too many authentications in progress", retry_after_s=1, reason="auth_throttle"
            )
        wait = await self._limits.check_auth_throttle(client_ip, limit - in_progress)
        if wait is not None:
            self._block(client_ip, wait)
            raise RateLimited(
                "too many failed authentications", retry_after_s=wait, reason="auth_throttle"
            )
        if token is None:
            await self._fail(client_ip)
        assert token is not None
        principal = await self._verify_once(token, client_ip)
        if principal is None:
            await self._fail(client_ip)
        assert principal is not None
        return principal

    def throttled(self, authorization: str | None, client_ip: str) -> float | None:
        """Seconds left if ``client_ip`` is throttled and ``authorization`` is not a key
        already verified (those pass a throttled address, as in ``authenticate``); else
        None. Reads only this process's memory: the edge asks it before any other work."""
        until = self._blocked.get(client_ip)
        if until is None:
            return None
        left = until - time.monotonic()
        if left <= 0:
            del self._blocked[client_ip]
            return None
        token = bearer_token(authorization)
        if token is not None:
            hit = self._cache.get(cache_digest(token))
            if hit is not None and hit.valid_until > time.monotonic():
                return None
        return left

    def _block(self, client_ip: str, wait_s: float) -> None:
        blocked = self._blocked
        if client_ip not in blocked and len(blocked) >= MAX_BLOCKED_ADDRESSES:
            # Bounded: forget the oldest entry (it only makes a refusal a little slower).
            del blocked[next(iter(blocked))]
        blocked[client_ip] = time.monotonic() + wait_s

    async def _verify_once(self, token: str, client_ip: str) -> Principal | None:
        """Concurrent misses for one key share one verification (no Argon2 stampede on a
        cold cache, after a restart or after a change emptied it).

        The failure count is recorded after hashing, so a burst of different bad keys
        from one address could all pass the throttle check together: new verifications
        in progress are bounded per address, past that the answer is 429 before hashing.
        """
        digest = cache_digest(token)
        pending = self._pending.get(digest)
        if pending is None:
            if self._in_progress.get(client_ip, 0) >= MAX_VERIFICATIONS_PER_IP:
                raise RateLimited(
                    "too many authentications in progress",
                    retry_after_s=1,
                    reason="auth_throttle",
                )
            self._in_progress[client_ip] = self._in_progress.get(client_ip, 0) + 1
            pending = asyncio.ensure_future(self._verify(token))
            self._pending[digest] = pending

            def done(_: object) -> None:
                self._pending.pop(digest, None)
                left = self._in_progress.pop(client_ip, 1) - 1
                if left > 0:
                    self._in_progress[client_ip] = left

            pending.add_done_callback(done)
        return await asyncio.shield(pending)

    async def _verify(self, token: str) -> Principal | None:
        generation = self._generation
        try:
            async with self._sessions() as session:
                row = await key_for_auth(session, key_prefix(token))
        except (SQLAlchemyError, OSError) as exc:
            raise ServiceUnavailable("the key store is unavailable") from exc
        if row is None:
            await self._hasher.verify(None, token)  # equal time for unknown prefixes
            return None
        key, tenant = row
        digest = cache_digest(token)
        if self._proven.get(digest) != key.key_hash:
            if not await self._hasher.verify(key.key_hash, token):
                return None
            if len(self._proven) >= MAX_PROVEN_KEYS:
                del self._proven[next(iter(self._proven))]
            self._proven[digest] = key.key_hash
        now = datetime.now(UTC)
        if key.revoked_at is not None or not tenant.enabled:
            return None
        valid_for = self._ttl
        if key.expires_at is not None:
            remaining = (key.expires_at - now).total_seconds()
            if remaining <= 0:
                return None
            valid_for = min(valid_for, remaining)
        principal = principal_of(key, tenant, self._defaults)
        if valid_for > 0 and generation == self._generation:
            self._cache[digest] = _Cached(principal, time.monotonic() + valid_for)
        self.last_used[key.id] = now
        return principal

    async def _fail(self, client_ip: str) -> None:
        try:
            await self._limits.record_auth_failure(client_ip)
        finally:
            raise Unauthorized()

    async def flush_last_used(self) -> None:
        """Write the keys' last-use times (batched, off the request path)."""
        if not self.last_used:
            return
        pending, self.last_used = self.last_used, {}
        async with self._sessions() as session:
            for key_id, when in pending.items():
                await session.execute(
                    update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when)
                )
            await session.commit()


class RevisionWatcher:
    """Polls the revision counter; on a change, empties the authenticator's cache."""

    def __init__(
        self, sessions: SessionFactory, auth: Authenticator, *, interval_s: float = 0.5
    ) -> None:
        self._sessions = sessions
        self._auth = auth
        self._interval = interval_s
        self._revision: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._ticks = 0

    async def poll_once(self) -> None:
        async with self._sessions() as session:
            revision = await current_revision(session)
        if self._revision is not None and revision != self._revision:
            self._auth.invalidate()
        self._revision = revision

    async def _loop(self) -> None:
        while True:
            try:
                await self.poll_once()
                self._ticks += 1
                if self._ticks % 20 == 0:
                    await self._auth.flush_last_used()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Unknown state: drop the cache, so every key is checked against the store.
                self._auth.invalidate()
                log.warning("revision poll failed", error=type(exc).__name__)
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="revision-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        try:
            await self._auth.flush_last_used()
        except Exception as exc:
            log.warning("last-used flush failed", error=type(exc).__name__)
