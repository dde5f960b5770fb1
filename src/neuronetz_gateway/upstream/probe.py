"""Asking a backend, once, whether it answers: its `/api/tags`, with the gateway's headers.

Used by the operator's commands (`add-backend`, `probe-ollama`, `list-models`). The
request is the one discovery makes, through a ``Backend`` built from the same
``BackendSpec``, so a probe that passes means the gateway will be let in too. Errors are
described without the request's headers (they carry the token).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
import orjson

from neuronetz_gateway.settings import BackendSpec
from neuronetz_gateway.upstream.backends import Backend, UpstreamTimeouts
from neuronetz_gateway.upstream.discovery import fetch_models


@dataclass(frozen=True, slots=True)
class ProbeResult:
    name: str
    url: str
    ok: bool
    latency_s: float
    models: tuple[str, ...] = ()
    error: str | None = None


def describe_failure(exc: BaseException) -> str:
    """A short, secret-free reason for a failed probe."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        errno = exc.os_error.errno
        reason = os.strerror(errno).lower() if errno else type(exc.os_error).__name__
        return f"cannot connect ({reason})"
    if isinstance(exc, orjson.JSONDecodeError):
        return "answer is not JSON (is this an Ollama server?)"
    if isinstance(exc, RuntimeError):
        return str(exc)  # fetch_models' own messages: "status 401", "no model list"
    return type(exc).__name__


async def probe(spec: BackendSpec, *, timeout_s: float = 5.0) -> ProbeResult:
    backend = Backend(
        spec,
        timeouts=UpstreamTimeouts(connect_s=timeout_s, read_s=timeout_s),
        max_connections=1,
        default_parallel=1,
    )
    await backend.start()
    started = time.perf_counter()
    try:
        models = await fetch_models(backend, "/api/tags", timeout_s=timeout_s)
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError, RuntimeError) as exc:
        return ProbeResult(
            spec.name,
            spec.base_url,
            False,
            time.perf_counter() - started,
            (),
            describe_failure(exc),
        )
    finally:
        await backend.close()
    names = tuple(str(m.get("name") or m["model"]) for m in models)
    return ProbeResult(spec.name, spec.base_url, True, time.perf_counter() - started, names)


async def probe_all(specs: Sequence[BackendSpec], *, timeout_s: float = 5.0) -> list[ProbeResult]:
    """Every backend, in parallel, in the given order."""
    return list(await asyncio.gather(*(probe(s, timeout_s=timeout_s) for s in specs)))
