"""One renderer for every refusal, in the shape the caller's API surface expects."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from neuronetz_gateway.errors import GatewayError
from neuronetz_gateway.proxy.responses import JsonResponse
from neuronetz_gateway.translate import openai_error_body


def error_body(surface: str, error: GatewayError, request_id: str) -> bytes:
    if surface == "openai":
        return orjson.dumps(
            openai_error_body(error.status, error.message, param=error.param, request_id=request_id)
        )
    # Ollama's clients read {"error": "<text>"}; the request id ties it to the audit row.
    return orjson.dumps({"error": error.message, "request_id": request_id})


def error_response(surface: str, error: GatewayError, request_id: str) -> Response:
    headers = dict(error.headers)
    if error.status == 429 or error.status >= 500:
        # The OpenAI SDK retries 429 and 5xx; a refused request is never charged, so
        # retries are safe, but tell it not to hammer a store that is down.
        headers.setdefault("x-should-retry", "true" if error.status in (429, 502) else "false")
    return JsonResponse(error_body(surface, error, request_id), error.status, headers)
