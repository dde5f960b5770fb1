"""The request handler of the low-level aiohttp server: log, authenticate, route.

Routing follows gin as Ollama configures it: exact, case-sensitive paths; one
``:param`` segment for blobs and user keys; a trailing slash is redirected (301 for
GET, 307 otherwise); an unknown path is text/plain ``404 page not found``; a known
path with another method is ``405 method not allowed``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from neuronetz_gateway.mock_ollama.decoding import parse_body
from neuronetz_gateway.mock_ollama.request_log import record_request
from neuronetz_gateway.mock_ollama.routes import control, inference, management, models
from neuronetz_gateway.mock_ollama.state import MockState, Received
from neuronetz_gateway.mock_ollama.wire import OllamaError, error_response, text_response

Handler = Callable[[Received, MockState], Awaitable[web.StreamResponse]]

ROUTES: dict[str, dict[str, Handler]] = {
    "/": {"GET": models.root, "HEAD": models.root},
    "/api/version": {"GET": models.version, "HEAD": models.version},
    "/api/status": {"GET": models.status},
    "/api/tags": {"GET": models.tags, "HEAD": models.tags},
    "/api/ps": {"GET": models.ps},
    "/api/show": {"POST": models.show},
    "/api/chat": {"POST": inference.chat},
    "/api/generate": {"POST": inference.generate},
    "/api/embed": {"POST": inference.embed},
    "/api/embeddings": {"POST": inference.embeddings},
    "/api/pull": {"POST": management.pull},
    "/api/push": {"POST": management.push},
    "/api/create": {"POST": management.create},
    "/api/copy": {"POST": management.copy},
    "/api/delete": {"DELETE": management.delete},
    "/api/me": {"POST": management.me},
    "/api/signout": {"POST": management.signout},
    "/api/experimental/web_search": {"POST": management.web_search},
    "/api/experimental/web_fetch": {"POST": management.web_fetch},
    "/api/experimental/model-recommendations": {"GET": management.model_recommendations},
}
PARAM_ROUTES: tuple[tuple[str, dict[str, Handler]], ...] = (
    ("/api/blobs/", {"HEAD": management.blob_exists, "POST": management.blob_upload}),
    ("/api/user/keys/", {"DELETE": management.signout}),
)


class MockOllamaApp:
    """Callable handed to ``aiohttp.web.Server``; one per mock, holding its state."""

    def __init__(self, state: MockState) -> None:
        self.state = state

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        state = self.state
        if request.path.startswith(control.PREFIX):
            return await control.handle(request, state)
        # content.read(), unlike request.read(), has no 1 MiB cap: image bodies are large.
        raw = await request.content.read()
        body, json_error = parse_body(raw)
        record = record_request(request, raw, body)
        state.log.add(record)
        token = state.config.require_token
        if token is not None and request.headers.get("Authorization") != f"Bearer {token}":
            return error_response(401, "unauthorized")
        handler = resolve(request)
        if isinstance(handler, web.StreamResponse):
            return handler
        state.in_flight += 1
        state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
        try:
            return await handler(Received(request, raw, body, json_error, record), state)
        except OllamaError as exc:
            return error_response(exc.status, exc.message)
        finally:
            state.in_flight -= 1


def resolve(request: web.BaseRequest) -> Handler | web.StreamResponse:
    """The handler for the request, or the 404/405/redirect gin would send."""
    path, method = request.path, request.method
    methods = _methods(path)
    if methods is not None:
        handler = methods.get(method)
        return handler if handler is not None else text_response(405, "405 method not allowed")
    if len(path) > 1 and path.endswith("/"):
        target = _methods(path[:-1])
        if target is not None and method in target:
            location = path[:-1] + (f"?{request.query_string}" if request.query_string else "")
            status = 301 if method == "GET" else 307
            return web.Response(status=status, headers={"Location": location})
    return text_response(404, "404 page not found")


def _methods(path: str) -> dict[str, Handler] | None:
    methods = ROUTES.get(path)
    if methods is not None:
        return methods
    for prefix, param_methods in PARAM_ROUTES:
        if path.startswith(prefix) and len(path) > len(prefix) and "/" not in path[len(prefix) :]:
            return param_methods
    return None
