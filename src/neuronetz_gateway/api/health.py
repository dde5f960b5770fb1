"""Operations endpoints: liveness, readiness, metrics (loopback only)."""

from __future__ import annotations

import asyncio
import ipaddress

import orjson
from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import Response

from neuronetz_gateway.api.dependencies import gateway
from neuronetz_gateway.errors import NotFound
from neuronetz_gateway.proxy.responses import json_response

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Response:
    return json_response(b'{"status":"ok"}', 200, {})


@router.get("/readyz", summary="Readiness: SQL store, Redis (if configured) and a backend")
async def readyz(request: Request) -> Response:
    state = gateway(request)
    checks: dict[str, str] = {}

    async def sql() -> None:
        async with state.sessions() as session:
            await session.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(sql(), 2.0)
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "down"
    if state.settings.redis_url:
        try:
            checks["redis"] = "ok" if await asyncio.wait_for(state.limits.ping(), 1.0) else "down"
        except Exception:
            checks["redis"] = "down"
    backends = {}
    breakers = {}
    for backend in state.backends:
        fresh = (
            bool(state.discovery.models_of(backend.name))
            or backend.name in state.discovery.reachable()
        )
        breaker = state.breakers[backend.name].state
        breakers[backend.name] = breaker
        backends[backend.name] = (
            "ok" if fresh and breaker != "open" else ("open" if breaker == "open" else "down")
        )
    checks["backends"] = "ok" if any(v == "ok" for v in backends.values()) else "down"
    ready = all(v == "ok" for v in checks.values())
    body = {
        "status": "ready" if ready else "not ready",
        "checks": checks,
        "backends": backends,
        "breakers": breakers,
    }
    return json_response(orjson.dumps(body), 200 if ready else 503, {})


@router.get(
    "/metrics", summary="Prometheus metrics (loopback clients only)", include_in_schema=False
)
async def metrics(request: Request) -> Response:
    state = gateway(request)
    peer = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        loopback = False
    # The peer, not X-Forwarded-For: behind a proxy, /metrics is not for the outside.
    if not loopback or request.headers.get("x-forwarded-for"):
        raise NotFound("unknown path")
    state.refresh_gauges()
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
