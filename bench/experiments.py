"""``bench/experiments.py PATCH ...``: serve the gateway like ``neuronetz-gateway serve``,
with named experimental patches applied in this process first.

The fixes proposed in ``RESULTS.md`` were measured this way, with no edit of ``src/``
(absolute paths: the gateway runs in the run's own directory):

    python -m bench --gateway-command "$PWD/.venv/bin/python $PWD/bench/experiments.py audit_full"
    python -m bench.ab --b-command "$PWD/.venv/bin/python $PWD/bench/experiments.py audit_off"

Each patch replaces one function of the gateway at run time; none of them is meant to be
kept in this form (the proposal is to make the change in ``src/``, with tests).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any


def audit_record() -> None:
    """``AuditRow.record`` without ``dataclasses.asdict`` (which deep-copies every value;
    the row holds immutable values only)."""
    from neuronetz_gateway.audit import writer

    names = tuple(f.name for f in fields(writer.AuditRow) if f.name != "prompt")

    def record(self: writer.AuditRow) -> dict[str, Any]:
        return {name: getattr(self, name) for name in names}

    writer.AuditRow.record = record  # type: ignore[method-assign]  # the experiment


def audit_full() -> None:
    """A request refused because the audit queue is full is not queued for audit itself
    (otherwise each fast 503 keeps the queue full)."""
    from neuronetz_gateway.api.edge import Edge

    original = Edge._finish

    def finish(self: Edge, ctx: Any, kind: str, raw_path: str, status: int, audited: bool) -> None:
        if ctx.refusal == "audit_full":
            audited = False
        original(self, ctx, kind, raw_path, status, audited)

    Edge._finish = finish  # type: ignore[method-assign]  # the experiment


def audit_multivalues() -> None:
    """Each batch as one multi-row INSERT (one statement step instead of one per row)."""
    from neuronetz_gateway.audit import writer

    async def write(self: writer.AuditWriter, batch: list[writer.AuditRow]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(writer._REQUESTS.insert().values([r.record() for r in batch]))
            prompts = [
                {"request_id": r.request_id, **asdict(r.prompt)}
                for r in batch
                if r.prompt is not None
            ]
            if prompts:
                await conn.execute(writer._PROMPTS.insert(), prompts)

    writer.AuditWriter._write = write  # type: ignore[method-assign]  # the experiment


def audit_rawsql(chunk: int = 100) -> None:
    """SQLite only: each batch as multi-row INSERTs of ``chunk`` rows, from SQL text built
    once per row count and run on the driver (no compilation per batch, one statement
    step per ``chunk`` rows instead of one per row)."""
    from datetime import UTC, datetime

    from neuronetz_gateway.audit import writer

    columns = [c.name for c in writer._REQUESTS.columns if c.name in writer._RECORD_FIELDS]
    # Names from our own table definition, values bound as parameters.
    head = f"INSERT INTO {writer._REQUESTS.name} ({', '.join(columns)}) VALUES "  # noqa: S608
    one = "(" + ", ".join("?" for _ in columns) + ")"
    texts: dict[int, str] = {}

    def plain(value: object) -> object:
        if isinstance(value, datetime):  # what UTCDateTime binds on SQLite
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
        return value

    original = writer.AuditWriter._write

    async def write(self: writer.AuditWriter, batch: list[writer.AuditRow]) -> None:
        if any(r.prompt is not None for r in batch) or self._engine.dialect.name != "sqlite":
            await original(self, batch)
            return
        async with self._engine.begin() as conn:
            for start in range(0, len(batch), chunk):
                part = batch[start : start + chunk]
                text = texts.get(len(part))
                if text is None:
                    text = texts[len(part)] = head + ", ".join([one] * len(part))
                params = tuple(plain(getattr(r, name)) for r in part for name in columns)
                await conn.exec_driver_sql(text, params)

    writer.AuditWriter._write = write  # type: ignore[method-assign]  # the experiment


def audit_off() -> None:
    """Upper bound only, not a proposal: audit rows are dropped."""
    from neuronetz_gateway.audit import writer

    def submit(self: writer.AuditWriter, row: writer.AuditRow) -> None:
        return None

    writer.AuditWriter.submit = submit  # type: ignore[method-assign]  # the experiment


def auth_singleflight(max_per_ip: int = 4) -> None:
    """Concurrent cache misses of one key share one verification, and at most
    ``max_per_ip`` verifications wait or run per client IP (429 beyond, before hashing):
    the failure throttle then bounds the Argon2 work of a flood from one address."""
    from neuronetz_gateway.auth import authenticator as module
    from neuronetz_gateway.auth.keys import bearer_token, cache_digest
    from neuronetz_gateway.errors import RateLimited

    original = module.Authenticator.authenticate
    inflight: dict[bytes, asyncio.Future[module.Principal]] = {}
    pending: dict[str, int] = {}

    async def authenticate(
        self: module.Authenticator, authorization: str | None, client_ip: str
    ) -> module.Principal:
        token = bearer_token(authorization)
        if token is None:
            return await original(self, authorization, client_ip)
        digest = cache_digest(token)
        hit = self._cache.get(digest)
        if hit is not None and hit.valid_until > time.monotonic():
            return await original(self, authorization, client_ip)
        shared = inflight.get(digest)
        if shared is not None:
            return await asyncio.shield(shared)
        waiting = pending.get(client_ip, 0)
        if waiting >= max_per_ip:
            raise RateLimited(
                "too many failed authentications", retry_after_s=1, reason="auth_throttle"
            )
        pending[client_ip] = waiting + 1
        future: asyncio.Future[module.Principal] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: None if f.cancelled() else f.exception())
        inflight[digest] = future
        try:
            principal = await original(self, authorization, client_ip)
        except Exception as exc:
            future.set_exception(exc)
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(principal)
            return principal
        finally:
            del inflight[digest]
            left = pending[client_ip] - 1
            if left:
                pending[client_ip] = left
            else:
                del pending[client_ip]

    module.Authenticator.authenticate = authenticate  # type: ignore[method-assign]


def pool64() -> None:
    """The default upstream pool of 64 connections (the harness sets 4,096)."""
    os.environ["OLLAMA_MAX_CONNECTIONS"] = "64"


PATCHES: dict[str, Callable[[], None]] = {
    "audit_record": audit_record,
    "audit_full": audit_full,
    "audit_multivalues": audit_multivalues,
    "audit_rawsql": audit_rawsql,
    "audit_off": audit_off,
    "auth_singleflight": auth_singleflight,
    "pool64": pool64,
}


def main(argv: list[str]) -> None:
    unknown = [name for name in argv if name not in PATCHES]
    if unknown:
        sys.exit(f"unknown patch(es) {', '.join(unknown)}; known: {', '.join(PATCHES)}")
    for name in argv:
        PATCHES[name]()
    from neuronetz_gateway.cli.main import main as gateway_main

    gateway_main(["serve"])


if __name__ == "__main__":
    main(sys.argv[1:])
