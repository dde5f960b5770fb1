"""The request pipeline after authentication and parsing: model policy → admission →
upstream (with failover) → response (whole or streamed) → settlement.

Every exit path settles the reservation exactly once: with the real token count when
the backend reported it, with what was delivered when a stream broke or the client
left, and with zero when nothing was produced.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any, Protocol

import aiohttp
import orjson
import structlog
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from neuronetz_gateway.auth.authenticator import Principal
from neuronetz_gateway.errors import Forbidden, GatewayError, UpstreamUnavailable
from neuronetz_gateway.limits.base import LimitStore, QuotaSnapshot, Reservation
from neuronetz_gateway.proxy.context import RequestContext
from neuronetz_gateway.proxy.native import ModelCall, model_name_key
from neuronetz_gateway.proxy.responses import (
    ClientGone,
    StreamResponse,
    json_response,
    unless_disconnected,
)
from neuronetz_gateway.proxy.streaming import TruncatedStream
from neuronetz_gateway.upstream.backends import Backend
from neuronetz_gateway.upstream.discovery import Discovery
from neuronetz_gateway.upstream.router import Router, UpstreamCall
from neuronetz_gateway.upstream.scheduler import SlotRequest

log = structlog.get_logger("neuronetz.pipeline")

STREAM_FAILED = "the model server failed while answering"


class ResponseAdapter(Protocol):
    """Shapes upstream output for one API surface."""

    media_type: str
    # True when ``feed`` returns the upstream line unchanged (plus its newline): the
    # pipeline then forwards the line itself and never calls ``feed``.
    passthrough: bool

    def whole(self, native: dict[str, Any], raw: bytes) -> bytes: ...

    def feed(self, native: dict[str, Any], raw_line: bytes) -> list[bytes]: ...

    def finish(self) -> list[bytes]: ...

    def error_frame(self, message: str) -> bytes: ...


def quota_headers(quota: QuotaSnapshot) -> dict[str, str]:
    headers: dict[str, str] = {}
    if quota.limit_requests is not None:
        headers["X-RateLimit-Limit-Requests"] = str(quota.limit_requests)
        headers["X-RateLimit-Remaining-Requests"] = str(max(0, quota.remaining_requests or 0))
    if quota.limit_tokens is not None:
        headers["X-RateLimit-Limit-Tokens"] = str(quota.limit_tokens)
        headers["X-RateLimit-Remaining-Tokens"] = str(max(0, quota.remaining_tokens or 0))
    if quota.budget_period is not None:
        headers["X-Budget-Period"] = quota.budget_period
        headers["X-Budget-Tokens-Remaining"] = str(max(0, quota.budget_remaining or 0))
    return headers


def tokens_of(native: dict[str, Any]) -> tuple[int, int]:
    def count(name: str) -> int:
        value = native.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    return count("prompt_eval_count"), count("eval_count")


class Pipeline:
    def __init__(self, *, limits: LimitStore, discovery: Discovery, router: Router) -> None:
        self.limits = limits
        self.discovery = discovery
        self.router = router

    def candidates(self, principal: Principal, model: str) -> list[Backend]:
        """Backends that may serve ``model`` for this tenant; the same 403 whether the
        model is forbidden or exists nowhere (no existence disclosure)."""
        if not principal.allow_all_models and model_name_key(model) not in principal.allowed_models:
            raise Forbidden("model not available", reason="model_forbidden")
        backends = self.discovery.backends_for(model)
        if not backends:
            raise Forbidden("model not available", reason="model_forbidden")
        return backends

    async def run(
        self,
        request: Request,
        ctx: RequestContext,
        call: ModelCall,
        adapter: ResponseAdapter,
    ) -> Response:
        principal = ctx.principal
        assert principal is not None
        ctx.model = call.model
        if principal.log_prompts:
            ctx.prompt = call.prompt_log
        backends = self.candidates(principal, call.model)
        admission: asyncio.Future[Reservation] | None = None
        reservation: Reservation | None = None
        if self.limits.in_process:
            reservation = await self.limits.admit(
                ctx.request_id, principal.subjects, call.reserve_tokens
            )
        else:
            # A remote store: the admission and the backend slot are asked for in the same
            # round trip; the router sends nothing upstream before the admission is in.
            admission = asyncio.ensure_future(
                self.limits.admit(ctx.request_id, principal.subjects, call.reserve_tokens)
            )
        prompt_estimate = max(
            0, call.reserve_tokens - int(call.payload.get("options", {}).get("num_predict", 0))
        )
        # Backend capacity: the call may wait in the tenant's queue (upstream.scheduler).
        slot_request = SlotRequest(
            principal.tenant_id, principal.tenant_name, principal.weight, principal.queue_timeout_s
        )
        try:
            body = orjson.dumps(call.payload)
            upstream = await unless_disconnected(
                request.scope,
                request.receive,
                self.router.call(
                    backends,
                    call.upstream_path,
                    body,
                    stream=call.stream,
                    model=call.model,
                    slot_request=slot_request,
                    gate=admission,
                ),
            )
        except BaseException as exc:
            if admission is not None:
                # The admission's own refusal comes first; an admitted request is released.
                reservation = await _admitted(admission)
            if reservation is not None:
                await self._settle(reservation, 0)
            if isinstance(exc, UpstreamUnavailable):
                ctx.attempts = exc.attempts
            if isinstance(exc, ClientGone):
                ctx.error_class = "client_disconnected"
                return Response(status_code=499)
            raise
        if admission is not None:
            reservation = admission.result()  # the router waited for it
        assert reservation is not None
        headers = quota_headers(reservation.quota)
        ctx.backend = upstream.backend.name
        ctx.attempts = upstream.attempts
        if not call.stream:
            return await self._whole(ctx, upstream, adapter, reservation, headers, call)
        ctx.streamed = True
        later: list[asyncio.Future[None]] = []
        return StreamResponse(
            self._stream(ctx, upstream, adapter, reservation, prompt_estimate, later),
            media_type=adapter.media_type,
            headers=headers,
            after=later,
        )

    async def _settle(self, reservation: Reservation, used: int) -> None:
        try:
            if self.limits.in_process:
                await self.limits.settle(reservation, used)  # never suspends
            else:
                await asyncio.shield(self.limits.settle(reservation, used))
        except Exception as exc:  # the store expires the lease; never fail the response here
            log.error(
                "settlement failed", request_id=reservation.request_id, error=type(exc).__name__
            )

    async def _whole(
        self,
        ctx: RequestContext,
        upstream: UpstreamCall,
        adapter: ResponseAdapter,
        reservation: Reservation,
        headers: dict[str, str],
        call: ModelCall,
    ) -> Response:
        used = 0
        response: Response | None = None
        try:
            raw = upstream.body or b""
            try:
                native = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise UpstreamUnavailable(STREAM_FAILED, reason="upstream_bad_body") from None
            if not isinstance(native, dict) or "error" in native:
                raise UpstreamUnavailable(STREAM_FAILED, reason="upstream_error")
            tokens_in, tokens_out = tokens_of(native)
            if call.upstream_path == "/api/embeddings" and tokens_in == 0:
                tokens_in = call.reserve_tokens  # the legacy endpoint reports no count
            ctx.tokens_in, ctx.tokens_out = tokens_in, tokens_out
            used = tokens_in + tokens_out
            out = adapter.whole(native, raw)
            if ctx.collect_response():
                ctx.response_parts = [_response_text(native)]
            response = json_response(out, 200, headers)
            return response
        finally:
            upstream.release()
            if response is None or self.limits.in_process:
                await self._settle(reservation, used)
            else:
                # A remote store's settlement goes out now, but the answer does not wait
                # for its reply: it is awaited after the body is sent (a round trip less
                # per request). On one connection the store sees it before any later
                # admission of this process (docs/LIMITS.md, "Settlement").
                settling = asyncio.ensure_future(self._settle(reservation, used))
                response.background = BackgroundTask(_wait, settling)

    async def _stream(
        self,
        ctx: RequestContext,
        upstream: UpstreamCall,
        adapter: ResponseAdapter,
        reservation: Reservation,
        prompt_estimate: int,
        later: list[asyncio.Future[None]] | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """Every line of one upstream read is validated and shaped, and the frames of the
        whole read go to the client as one chunk: one write per read, not per line."""
        reader = upstream.reader
        assert reader is not None
        delivered = 0
        final: dict[str, Any] | None = None
        parts: list[str] | None = None
        if ctx.collect_response():
            ctx.response_parts = parts = []
        passthrough = adapter.passthrough
        feed = adapter.feed
        loads = orjson.loads
        out: list[bytes] = []
        clean = False
        try:
            first = upstream.first_line
            lines = [] if first is None else [first, *reader.buffered_lines()]
            while lines:
                for line in lines:
                    try:
                        obj = loads(line)
                    except orjson.JSONDecodeError:
                        raise TruncatedStream("not JSON") from None
                    if not isinstance(obj, dict) or "error" in obj:
                        raise TruncatedStream("upstream error frame")
                    if obj.get("done") is True:
                        final = obj
                    else:
                        delivered += 1
                        if parts is not None:
                            parts.append(_response_text(obj))
                    if passthrough:
                        out.append(line)
                        out.append(b"\n")
                    else:
                        out += feed(obj, line)
                    if final is not None:
                        break  # whatever follows the final frame is never sent
                if final is not None:
                    break
                if out:
                    if ctx.first_byte is None:
                        ctx.first_byte = time.perf_counter()
                    body = b"".join(out)
                    out.clear()
                    yield body
                lines = await reader.next_lines()
            if final is None:
                raise TruncatedStream("stream ended without a final frame")
            out += adapter.finish()
            if out:
                if ctx.first_byte is None:
                    ctx.first_byte = time.perf_counter()
                body = b"".join(out)
                out.clear()
                yield body
            clean = True
        except (TimeoutError, aiohttp.ClientError, TruncatedStream, OSError) as exc:
            ctx.error_class = "upstream_stream_broken"
            log.warning(
                "stream broke",
                request_id=ctx.request_id,
                backend=ctx.backend,
                error=type(exc).__name__,
            )
            # The good frames of the read that held the bad line go first, in one write.
            out.append(adapter.error_frame(STREAM_FAILED))
            yield b"".join(out)
        except GatewayError as exc:
            ctx.error_class = exc.code
            out.append(adapter.error_frame(exc.message))
            yield b"".join(out)
        finally:
            if final is not None:
                ctx.tokens_in, ctx.tokens_out = tokens_of(final)
            else:
                # Broken or abandoned: the prompt was processed and the chunks delivered.
                ctx.tokens_in, ctx.tokens_out = prompt_estimate, delivered
                if ctx.error_class is None:
                    ctx.error_class = "client_disconnected"
            if clean:
                upstream.release()
            else:
                upstream.abort()  # closes the upstream connection: Ollama stops generating
            used = ctx.tokens_in + ctx.tokens_out
            if clean and later is not None and not self.limits.in_process:
                # A remote store: the client gets the end of the stream without waiting for
                # the settlement's reply; the response awaits it after its last write (as a
                # whole answer does). Sent now, it reaches the store before any later
                # admission of this process (docs/LIMITS.md, "Settlement").
                later.append(asyncio.ensure_future(self._settle(reservation, used)))
            else:
                await self._settle(reservation, used)


async def _admitted(admission: asyncio.Future[Reservation]) -> Reservation | None:
    """The reservation of an admission that succeeded; its refusal if it was refused
    (raised); None if it was cancelled."""
    try:
        return await asyncio.shield(admission)
    except asyncio.CancelledError:
        if admission.cancelled():
            return None
        raise  # cancelled again while waiting: an admission that lands expires by its lease


async def _wait(task: asyncio.Future[None]) -> None:
    await task


def _response_text(native: dict[str, Any]) -> str:
    message = native.get("message")
    if isinstance(message, dict):
        content = message.get("content")
        return content if isinstance(content, str) else ""
    response = native.get("response")
    return response if isinstance(response, str) else ""
