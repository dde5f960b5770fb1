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
    values = request.headers.getlist("authorization")
    # Two Authorization headers are ambiguous (proxies disagree on which one counts): refuse.
    header = values[0] if len(values) == 1 else None
    ctx.principal = await state.auth.authenticate(header, ctx.client_ip)
    return ctx


async def read_body(request: Request) -> dict[str, Any]:
    state = gateway(request)
    encoding = request.headers.get("content-encoding")
    if encoding and encoding.lower() != "identity":
        raise UnsupportedMediaType("compressed request bodies are not accepted")
    raw = await read_capped(
        request.stream(),
        request.headers.get("content-length"),
        state.settings.max_request_body_bytes,
    )
    return parse_object(raw)
