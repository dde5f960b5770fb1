"""Small steps shared by the handlers of both surfaces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from starlette.requests import Request

from neuronetz_gateway.errors import UnsupportedMediaType
from neuronetz_gateway.proxy.body import parse_object, read_capped
from neuronetz_gateway.proxy.context import RequestContext, context_of

if TYPE_CHECKING:
    from neuronetz_gateway.app import GatewayState


def gateway(request: Request) -> GatewayState:
    return cast("GatewayState", request.app.state.gateway)


async def authenticate(request: Request) -> RequestContext:
    ctx = context_of(request.scope["state"])
    state = gateway(request)
    # Two Authorization headers are ambiguous (proxies disagree on which one counts): refuse.
    ctx.principal = await state.auth.authenticate(ctx.authorization, ctx.client_ip)
    return ctx


async def read_body(request: Request) -> dict[str, Any]:
    ctx = context_of(request.scope["state"])
    encoding = ctx.content_encoding
    if encoding and encoding.lower() != "identity":
        raise UnsupportedMediaType("compressed request bodies are not accepted")
    raw = await read_capped(
        request.receive, ctx.content_length, gateway(request).settings.max_request_body_bytes
    )
    return parse_object(raw)
