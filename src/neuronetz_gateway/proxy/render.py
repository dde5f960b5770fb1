"""One renderer for every refusal, in the shape the caller's API surface expects."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from neuronetz_gateway.errors import GatewayError

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
_OPENAI_CODES = {413: "request_too_large", 429: "rate_limit_exceeded", 401: "invalid_api_key"}


def error_body(surface: str, error: GatewayError, request_id: str) -> bytes:
    if surface == "openai":
        return orjson.dumps(
            {
                "error": {
                    "message": error.message,
                    "type": _OPENAI_TYPES.get(error.status, "api_error"),
                    "param": error.param,
                    "code": _OPENAI_CODES.get(error.status, error.code),
                },
                "request_id": request_id,
            }
        )
    # Ollama's clients read {"error": "<text>"}; the request id ties it to the audit row.
    return orjson.dumps({"error": error.message, "request_id": request_id})


def error_response(surface: str, error: GatewayError, request_id: str) -> Response:
    headers = dict(error.headers)
    if error.status == 429 or error.status >= 500:
        # The OpenAI SDK retries 429 and 5xx; a refused request is never charged, so
        # retries are safe, but tell it not to hammer a store that is down.
        headers.setdefault("x-should-retry", "true" if error.status in (429, 502) else "false")
    return Response(
        content=error_body(surface, error, request_id),
        status_code=error.status,
        headers=headers,
        media_type="application/json",
    )
