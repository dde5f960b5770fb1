"""The edge: the first and last code every HTTP request meets (pure ASGI, no framework).

In: a request id, the client's address, the route allowlist (403 for Ollama's
management and account paths in every spelling, 404 for unknown paths — neither ever
reaches a handler, let alone a backend) and the audit back-pressure gate (503 while the
audit queue is full). Out: the ``X-Request-ID`` header, metrics, the access log line and
the audit row.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import unquote

import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from neuronetz_gateway.api.paths import OPS_ROUTES, classify
from neuronetz_gateway.audit.writer import AuditRow, PromptRow
from neuronetz_gateway.auth.client_ip import client_ip
from neuronetz_gateway.errors import (
    Forbidden,
    GatewayError,
    NotFound,
    RateLimited,
    ServiceUnavailable,
)
from neuronetz_gateway.proxy.context import RequestContext, Surface
from neuronetz_gateway.proxy.render import error_response

if TYPE_CHECKING:
    from neuronetz_gateway.app import GatewayState

log = structlog.get_logger("neuronetz.access")


def _surface(raw_path: str) -> Surface:
    if raw_path.startswith("/v1/"):
        return "openai"
    if raw_path.startswith("/api/"):
        return "native"
    return "ops"


_KEYLIKE = re.compile(r"nz_[0-9A-Za-z]{9,}")
# Answers to an address the auth throttle blocks wait for the next tick of this clock.
TARPIT_TICK_S = 0.025


async def _tarpit() -> None:
    """Hold the answer to a blocked address until the next shared tick. All the refusals
    of one tick go out in the same loop turn: a flood wakes its sender once per tick, not
    once per request (on loopback and in VMs each wake-up costs the writer tens of µs),
    and the flood itself is slowed down."""
    now = asyncio.get_running_loop().time()
    await asyncio.sleep(TARPIT_TICK_S - now % TARPIT_TICK_S)


def recorded_path(raw_path: str) -> str:
    """A refused request's path as audited: decoded, anything key-like blanked, capped."""
    return _KEYLIKE.sub("nz_…", unquote(raw_path, errors="replace"))[:128]


def _route_label(raw_path: str, kind: str) -> str:
    if kind != "route":
        return kind
    if raw_path.startswith("/v1/models/"):
        return "/v1/models/{model}"
    return raw_path


Handler = Callable[[Request], Awaitable[Response]]
ErrorRenderer = Callable[[Request, Exception], Awaitable[Response]]


class RequestIds:
    """Unique, cheap request ids: a random per-process prefix and a counter (no syscall
    per request, unlike uuid4). They correlate; they are not secrets."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


class Edge:
    """Outermost ASGI layer. ``fast`` maps (method, exact path) of the model endpoints to
    their handlers, which it calls directly: the framework's routing, dependency solving
    and middleware layers cost more than the gateway's own work on the hot path."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        fast: dict[tuple[str, str], Handler] | None = None,
        render_error: ErrorRenderer | None = None,
    ) -> None:
        self.app = app
        self._fast = fast or {}
        self._render_error = render_error
        self._state: GatewayState | None = None
        self._id_header = b"x-request-id"
        self._access_log = True
        self._ids = RequestIds()

    def _bind(self, scope: Scope) -> GatewayState:
        # The lifespan builds the state after the middleware stack exists.
        state: GatewayState = scope["app"].state.gateway
        self._state = state
        self._id_header = state.settings.gateway_request_id_header.lower().encode("latin-1")
        # Below INFO the request line is dropped anyway; not calling the logger saves its
        # lazy binding on every request.
        self._access_log = state.settings.gateway_log_level in ("DEBUG", "INFO")
        return state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self._state or self._bind(scope)
        raw_path = (scope.get("raw_path") or scope["path"].encode("utf-8")).decode("latin-1")
        kind = classify(raw_path)
        surface = _surface(raw_path)
        request_id = self._ids.next()
        forwarded = None
        authorization: bytes | None = None
        authorizations = 0
        length: bytes | None = None
        encoding: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                if length is None:
                    length = value
            elif name == b"authorization":
                authorization = value
                authorizations += 1
            elif name == b"x-forwarded-for":
                if forwarded is None:
                    forwarded = value.decode("latin-1")
            elif name == b"content-encoding":
                if encoding is None:
                    encoding = value
        peer = scope["client"][0] if scope.get("client") else None
        ctx = RequestContext(
            request_id=request_id,
            started=time.perf_counter(),
            started_at=datetime.now(UTC),
            client_ip=client_ip(peer, forwarded, state.settings.gateway_trusted_proxies),
            surface=surface,
            method=scope["method"],
            # An exact route is a clean constant; anything else is decoded and blanked.
            path=raw_path if kind == "route" else recorded_path(raw_path),
            # Two Authorization headers are ambiguous (proxies disagree on which one
            # counts): the handlers see none.
            authorization=(
                authorization.decode("latin-1")
                if authorization is not None and authorizations == 1
                else None
            ),
            content_length=None if length is None else length.decode("latin-1"),
            content_encoding=None if encoding is None else encoding.decode("latin-1"),
        )
        scope.setdefault("state", {})["nz"] = ctx
        status = 0
        id_header = (self._id_header, request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), id_header]
            elif ctx.first_byte is None and message.get("body"):
                ctx.first_byte = time.perf_counter()
            await send(message)

        audited = not (kind == "route" and raw_path in OPS_ROUTES)
        try:
            refusal: GatewayError | None = None
            tarpit = False
            if kind == "blocked":
                refusal = Forbidden(
                    "this endpoint is not available through the gateway", reason="blocked_path"
                )
            elif kind == "unknown":
                refusal = NotFound("unknown path", reason="unknown_path")
            elif audited and state.audit.is_full():
                refusal = ServiceUnavailable(
                    "the audit log is saturated; try again shortly", reason="audit_full"
                )
                # Counted in metrics, not queued: fast refusals must not keep the queue full.
                audited = False
            handler = self._fast.get((scope["method"], raw_path)) if kind == "route" else None
            if refusal is None and handler is not None:
                # An address the auth throttle refuses is answered before anything else
                # (a flood of bad keys costs as little as possible); verified keys pass.
                wait = state.auth.throttled(ctx.authorization, ctx.client_ip)
                if wait is not None:
                    refusal = RateLimited(
                        "too many failed authentications",
                        retry_after_s=wait,
                        reason="auth_throttle",
                    )
                    tarpit = True
            if refusal is not None:
                ctx.refusal = refusal.reason
                if tarpit:
                    await _tarpit()
                await error_response(surface, refusal, request_id)(scope, receive, send_with_id)
            elif handler is not None and self._render_error is not None:
                request = Request(scope, receive, send)
                try:
                    response = await handler(request)
                except GatewayError as exc:
                    response = await self._render_error(request, exc)
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            ctx.error_class = "client_disconnected"  # left while sending its body
        except Exception as exc:
            ctx.error_class = type(exc).__name__
            log.error(
                "unhandled error", request_id=request_id, error=type(exc).__name__, exc_info=exc
            )
            if status == 0:
                status = 500
                err = GatewayError()
                await error_response(surface, err, request_id)(scope, receive, send_with_id)
        finally:
            self._finish(ctx, kind, raw_path, status or 499, audited)

    @staticmethod
    def _log_request(ctx: RequestContext, route: str, status: int, latency: float) -> None:
        principal = ctx.principal
        log.info(
            "request",
            request_id=ctx.request_id,
            method=ctx.method,
            route=route,
            status=status,
            ms=round(latency * 1000, 3),
            tenant=principal.tenant_name if principal else None,
            key=principal.key_prefix if principal else None,
            model=ctx.model,
            backend=ctx.backend,
            tokens_in=ctx.tokens_in,
            tokens_out=ctx.tokens_out,
        )

    def _finish(
        self, ctx: RequestContext, kind: str, raw_path: str, status: int, audited: bool
    ) -> None:
        state = self._state
        assert state is not None
        now = time.perf_counter()
        latency = now - ctx.started
        route = _route_label(raw_path, kind)
        metrics = state.metrics
        metrics.observe_request(
            ctx.surface,
            route,
            status,
            latency,
            None if ctx.first_byte is None else ctx.first_byte - ctx.started,
        )
        if ctx.refusal is not None:
            metrics.refused(ctx.refusal)
        principal = ctx.principal
        if principal is not None and ctx.model is not None and (ctx.tokens_in or ctx.tokens_out):
            model_label = ctx.model if len(ctx.model) <= 128 else "other"
            metrics.count_tokens(principal.tenant_name, model_label, ctx.tokens_in, ctx.tokens_out)
        if self._access_log:
            self._log_request(ctx, route, status, latency)
        if not audited:
            return
        finished_at = ctx.started_at + timedelta(seconds=latency)
        prompt = None
        if principal is not None and principal.log_prompts and ctx.prompt is not None:
            days = (
                principal.prompt_retention_days or state.settings.prompt_log_default_retention_days
            )
            prompt = PromptRow(
                tenant_id=principal.tenant_id,
                key_id=principal.key_id,
                created_at=ctx.started_at,
                expires_at=ctx.started_at + timedelta(days=days),
                model=ctx.model,
                prompt=ctx.prompt,
                response="".join(ctx.response_parts or []),
            )
        state.audit.submit(
            AuditRow(
                request_id=ctx.request_id,
                started_at=ctx.started_at,
                finished_at=finished_at,
                tenant_id=principal.tenant_id if principal else None,
                key_id=principal.key_id if principal else None,
                key_prefix=principal.key_prefix if principal else None,
                client_ip=ctx.client_ip[:64],
                surface=ctx.surface,
                method=ctx.method[:8],
                path=(route if kind == "route" else recorded_path(raw_path))[:128],
                model=(ctx.model or None) and ctx.model[:256],
                backend=ctx.backend,
                status=status,
                tokens_in=ctx.tokens_in,
                tokens_out=ctx.tokens_out,
                latency_ms=round(latency * 1000, 3),
                ttfb_ms=round((ctx.first_byte - ctx.started) * 1000, 3) if ctx.first_byte else None,
                error_class=ctx.error_class or ctx.refusal,
                attempts=ctx.attempts,
                streamed=ctx.streamed,
                prompt=prompt,
            )
        )
