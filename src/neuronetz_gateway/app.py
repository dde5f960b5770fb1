"""Composition root: ``create_app(settings)`` builds the app; its lifespan opens and closes
every engine, client and background task, kept on one typed ``GatewayState``."""

from __future__ import annotations

import gc
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from neuronetz_gateway import __version__
from neuronetz_gateway.api import health, native, openai, playground
from neuronetz_gateway.api.edge import Edge
from neuronetz_gateway.api.openapi import security_schemes
from neuronetz_gateway.audit.retention import RetentionTask
from neuronetz_gateway.audit.usage import SqlUsage
from neuronetz_gateway.audit.writer import AuditWriter
from neuronetz_gateway.auth.authenticator import (
    Authenticator,
    DefaultLimits,
    Principal,
    RevisionWatcher,
)
from neuronetz_gateway.auth.hashing import Argon2Params, KeyHasher
from neuronetz_gateway.db.engine import SessionFactory, create_engine, session_factory
from neuronetz_gateway.db.migrate import upgrade
from neuronetz_gateway.errors import (
    BadRequest,
    GatewayError,
    MethodNotAllowed,
    NotFound,
)
from neuronetz_gateway.limits.base import LimitStore
from neuronetz_gateway.limits.memory import MemoryLimitStore
from neuronetz_gateway.limits.redis import RedisLimitStore
from neuronetz_gateway.observability.logging import configure_logging
from neuronetz_gateway.observability.metrics import Metrics
from neuronetz_gateway.proxy.context import context_of
from neuronetz_gateway.proxy.native import CallPolicy, model_name_key
from neuronetz_gateway.proxy.pipeline import Pipeline
from neuronetz_gateway.proxy.render import error_response
from neuronetz_gateway.redis_scripts import ScriptClient
from neuronetz_gateway.settings import Settings
from neuronetz_gateway.upstream.backends import Backend, UpstreamTimeouts
from neuronetz_gateway.upstream.breaker import CircuitBreaker
from neuronetz_gateway.upstream.discovery import Discovery
from neuronetz_gateway.upstream.router import Router
from neuronetz_gateway.upstream.scheduler import MemoryScheduler, Scheduler
from neuronetz_gateway.upstream.scheduler_redis import RedisScheduler


@dataclass
class GatewayState:
    """Everything the request path needs, built once per process by the lifespan."""

    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    limits: LimitStore
    auth: Authenticator
    watcher: RevisionWatcher
    backends: list[Backend]
    breakers: dict[str, CircuitBreaker]
    discovery: Discovery
    router: Router
    scheduler: Scheduler
    pipeline: Pipeline
    audit: AuditWriter
    retention: RetentionTask
    metrics: Metrics
    call_policy: CallPolicy
    redis: ScriptClient | None = None
    """The hot-path Redis connection the limit store and the scheduler share."""
    _models_cache: dict[tuple[int, int], list[dict[str, Any]]] = field(default_factory=dict)

    def effective_models(self, principal: Principal) -> list[dict[str, Any]]:
        """The discovered models this tenant may use (cached per discovery version)."""
        cache_key = (principal.tenant_id, self.discovery.version)
        cached = self._models_cache.get(cache_key)
        union = self.discovery.union()
        if cached is not None and cache_key[1] == self.discovery.version:
            return cached
        models = [
            m
            for m in union
            if principal.allow_all_models
            or model_name_key(m.get("name") or m.get("model") or "") in principal.allowed_models
        ]
        if len(self._models_cache) > 10_000:
            self._models_cache.clear()
        self._models_cache[cache_key] = models
        return models

    def refresh_gauges(self) -> None:
        self.metrics.audit_queue.set(self.audit.depth)
        age = self.discovery.age_s()
        self.metrics.discovery_age.set(age if age is not None else -1)
        for name, breaker in self.breakers.items():
            current = breaker.state
            self.metrics.breaker_state.labels(name).set(1 if current == "open" else 0)
            for state in ("closed", "open", "half_open"):
                self.metrics.breaker_states.labels(name, state).set(1 if state == current else 0)
        for backend in self.backends:
            self.metrics.backend_in_flight.labels(backend.name).set(backend.in_flight)
            self.metrics.backend_slots_in_use.labels(backend.name).set(
                self.scheduler.in_use(backend.name)
            )
            self.metrics.backend_capacity.labels(backend.name).set(backend.capacity)


async def build_state(settings: Settings, *, migrate: bool = True) -> GatewayState:
    engine = create_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        pool_overflow=settings.database_pool_overflow,
    )
    if migrate:
        await upgrade(settings.database_url, engine=engine)
    sessions = session_factory(engine)
    usage = SqlUsage(sessions)
    limits: LimitStore
    redis: ScriptClient | None = None
    if settings.redis_url:
        redis = ScriptClient(settings.redis_url, timeout_s=settings.redis_timeout_s)
        limits = RedisLimitStore(
            settings.redis_url,
            usage,
            timeout_s=settings.redis_timeout_s,
            lease_s=settings.ollama_read_timeout_s + 60,
            client=redis,
        )
    else:
        limits = MemoryLimitStore(usage, lease_s=settings.ollama_read_timeout_s + 60)
    hasher = KeyHasher(
        Argon2Params(
            settings.argon2_time_cost, settings.argon2_memory_cost_kib, settings.argon2_parallelism
        )
    )
    auth = Authenticator(
        sessions=sessions,
        hasher=hasher,
        limits=limits,
        defaults=DefaultLimits(
            settings.default_rpm,
            settings.default_tpm,
            settings.default_concurrent,
            settings.default_daily_budget,
            settings.default_monthly_budget,
            settings.default_total_budget,
        ),
        cache_ttl_s=settings.redis_key_cache_ttl_s,
        failures_per_ip_per_min=settings.auth_failure_rate_limit_per_ip_per_min,
    )
    timeouts = UpstreamTimeouts(settings.ollama_connect_timeout_s, settings.ollama_read_timeout_s)
    backends = [
        Backend(
            spec,
            timeouts=timeouts,
            max_connections=settings.ollama_max_connections,
            default_parallel=settings.ollama_default_parallel,
        )
        for spec in settings.effective_backends()
    ]
    breakers = {
        b.name: CircuitBreaker(
            failure_threshold=settings.breaker_failure_threshold,
            cooldown_s=settings.breaker_cooldown_s,
        )
        for b in backends
    }
    metrics = Metrics()
    discovery = Discovery(
        backends,
        refresh_s=settings.model_discovery_refresh_s,
        ttl_s=settings.model_discovery_cache_ttl_s,
        routing_policy=settings.routing_policy,
    )
    scheduler = build_scheduler(settings, backends, metrics, redis)
    router = Router(
        breakers, observer=metrics, on_served=discovery.note_served, scheduler=scheduler
    )
    return GatewayState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        limits=limits,
        auth=auth,
        watcher=RevisionWatcher(sessions, auth),
        backends=backends,
        breakers=breakers,
        discovery=discovery,
        router=router,
        scheduler=scheduler,
        pipeline=Pipeline(limits=limits, discovery=discovery, router=router),
        audit=AuditWriter(engine, capacity=settings.audit_buffer_size),
        retention=RetentionTask(
            sessions, audit_retention_days=settings.audit_log_default_retention_days
        ),
        metrics=metrics,
        call_policy=CallPolicy(
            max_num_predict=settings.max_num_predict,
            keep_alive_min_s=settings.keep_alive_min_s,
            keep_alive_max_s=settings.keep_alive_max_s,
        ),
        redis=redis,
    )


def build_scheduler(
    settings: Settings,
    backends: list[Backend],
    metrics: Metrics,
    redis: ScriptClient | None = None,
) -> Scheduler:
    """Backend capacity and tenant queues: in Redis when scaled out, else in-process."""
    if settings.redis_url:
        return RedisScheduler(
            settings.redis_url,
            backends,
            default_timeout_s=settings.queue_wait_timeout_s,
            max_depth_per_tenant=settings.queue_max_depth_per_tenant,
            policy=settings.scheduling_policy,
            observer=metrics,
            timeout_s=settings.redis_timeout_s,
            client=redis,
        )
    return MemoryScheduler(
        backends,
        default_timeout_s=settings.queue_wait_timeout_s,
        max_depth_per_tenant=settings.queue_max_depth_per_tenant,
        policy=settings.scheduling_policy,
        observer=metrics,
    )


def _surface_of(request: Request) -> str:
    path: str = request.scope["path"]  # not request.url: that parses the whole URL
    return "openai" if path.startswith("/v1/") else "native"


def _request_id(request: Request) -> str:
    try:
        return context_of(request.scope.get("state", {})).request_id
    except RuntimeError:
        return ""


async def _render_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    try:
        ctx = context_of(request.scope.get("state", {}))
        ctx.refusal = exc.reason
        if exc.status >= 500:
            ctx.error_class = exc.code
    except RuntimeError:
        pass
    return error_response(_surface_of(request), exc, _request_id(request))


async def _render_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    error: GatewayError
    if exc.status_code == 405:
        error = MethodNotAllowed()
    elif exc.status_code == 404:
        error = NotFound("unknown path")
    else:
        error = BadRequest("invalid request")
    return await _render_gateway_error(request, error)


async def _render_validation_error(request: Request, exc: Exception) -> Response:
    return await _render_gateway_error(request, BadRequest("invalid request"))


class GatewayApp(FastAPI):
    """FastAPI whose HTTP entry goes straight to the middleware stack (the edge).

    ``FastAPI.__call__`` asks its native OpenTelemetry hook on every request (a tracer
    provider lookup and an environment read, ~3 % of a request's CPU); the gateway has
    its own metrics and request log, so HTTP requests skip it."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["app"] = self
            stack = self.middleware_stack
            if stack is None:
                stack = self.middleware_stack = self.build_middleware_stack()
            await stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, state: GatewayState | None = None) -> FastAPI:
    """Build the ASGI app. The state is built in the lifespan unless given (tests)."""
    configure_logging(settings.gateway_log_level, settings.gateway_log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gw = state or await build_state(settings)
        app.state.gateway = gw
        for backend in gw.backends:
            await backend.start()
        await gw.watcher.poll_once()
        if settings.redis_url:
            # Open the Redis connection now, not in the first burst of traffic.
            await gw.limits.ping()
        await gw.discovery.refresh()
        gw.discovery.start()
        await gw.scheduler.start()
        gw.watcher.start()
        gw.audit.start()
        gw.retention.start()
        # Everything built so far (modules, app, state) lives as long as the process: out
        # of the collector's sight, a full collection scans only what requests create
        # (measured: full collections over the startup heap were the c=32 p99 stalls).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await gw.discovery.stop()
            await gw.watcher.stop()
            await gw.retention.stop()
            await gw.audit.stop()
            await gw.scheduler.aclose()
            for backend in gw.backends:
                await backend.close()
            await gw.limits.aclose()
            if gw.redis is not None:
                await gw.redis.aclose()
            await gw.engine.dispose()

    app = GatewayApp(
        title="neuronetz-gateway",
        version=__version__,
        description="Secure, multi-tenant gateway in front of Ollama.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        redirect_slashes=False,
        default_response_class=Response,
    )
    app.include_router(health.router)
    app.include_router(native.router)
    app.include_router(openai.router)
    app.include_router(playground.router)
    app.add_exception_handler(GatewayError, _render_gateway_error)
    app.add_exception_handler(StarletteHTTPException, _render_http_error)
    app.add_exception_handler(RequestValidationError, _render_validation_error)
    fast = _fast_routes(native.router, openai.router)
    plain_stack = app.build_middleware_stack

    def build_stack() -> Any:
        # The edge wraps everything, the framework's own middleware included.
        return Edge(plain_stack(), fast=fast, render_error=_render_gateway_error)

    app.build_middleware_stack = build_stack  # type: ignore[method-assign]
    _describe_security(app)
    return app


def _fast_routes(*routers: APIRouter) -> dict[tuple[str, str], Any]:
    """(method, path) → handler for the exact-path model endpoints that take only the
    request; the edge calls them without the framework's routing in between."""
    from fastapi.routing import APIRoute

    from neuronetz_gateway.api.paths import NATIVE_ROUTES, OPENAI_ROUTES

    fast: dict[tuple[str, str], Any] = {}
    for route in (route for router in routers for route in router.routes):
        if not isinstance(route, APIRoute) or route.path not in NATIVE_ROUTES | OPENAI_ROUTES:
            continue
        params = list(inspect.signature(route.endpoint).parameters)
        if params != ["request"]:
            continue
        for method in route.methods or ():
            fast[(method, route.path)] = route.endpoint
    return fast


def _describe_security(app: FastAPI) -> None:
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = default()
            schema.setdefault("components", {})["securitySchemes"] = security_schemes()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def app_from_env() -> FastAPI:
    """Factory for uvicorn (``--factory``): settings from the environment."""
    from neuronetz_gateway.settings import load_settings

    return create_app(load_settings())
