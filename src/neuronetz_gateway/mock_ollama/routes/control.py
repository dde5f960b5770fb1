"""``/_mock/*``: drive a mock that runs in another process. Never logged, never
behind ``require_token``.

* ``GET /_mock/requests`` — the request log; ``DELETE`` clears it;
* ``GET /_mock/config`` — the configuration; ``POST`` applies a partial update;
* ``POST /_mock/reset`` — the start configuration back, log and counters cleared;
* ``GET /_mock/stats`` — in-flight and peak concurrent requests, log size.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from neuronetz_gateway.mock_ollama.config import MockConfigError
from neuronetz_gateway.mock_ollama.request_log import record_as_json
from neuronetz_gateway.mock_ollama.state import MockState
from neuronetz_gateway.mock_ollama.wire import error_response, json_response, text_response

PREFIX = "/_mock/"


async def handle(request: web.BaseRequest, state: MockState) -> web.StreamResponse:
    route = (request.method, request.path)
    if route == ("GET", "/_mock/requests"):
        return json_response([record_as_json(record) for record in state.log.snapshot()])
    if route == ("DELETE", "/_mock/requests"):
        return json_response({"cleared": state.log.clear()})
    if route == ("GET", "/_mock/config"):
        return json_response(state.config.as_json())
    if route == ("POST", "/_mock/config"):
        return await _configure(request, state)
    if route == ("POST", "/_mock/reset"):
        state.reset()
        return json_response(state.config.as_json())
    if route == ("GET", "/_mock/stats"):
        return json_response(state.stats())
    return text_response(404, "404 page not found")


async def _configure(request: web.BaseRequest, state: MockState) -> web.StreamResponse:
    try:
        changes = orjson.loads(await request.content.read())
    except orjson.JSONDecodeError as exc:
        return error_response(400, f"invalid JSON: {exc}")
    if not isinstance(changes, dict):
        return error_response(400, "expected a JSON object of config keys")
    try:
        state.configure(changes)
    except MockConfigError as exc:
        return error_response(400, str(exc))
    return json_response(state.config.as_json())
