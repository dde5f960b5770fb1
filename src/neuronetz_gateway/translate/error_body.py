"""OpenAI-shaped error bodies, typed so the ``openai`` SDK raises the matching class.

The SDK picks its exception class from the HTTP status and reads ``message``, ``type``,
``param`` and ``code`` from ``body["error"]`` (reference §4.2), so all four keys are
always present.
"""

from __future__ import annotations

from typing import TypedDict


class OpenAIError(TypedDict):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIErrorBody(TypedDict):
    error: OpenAIError
    request_id: str | None


_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
_CODES = {413: "request_too_large", 429: "rate_limit_exceeded"}


def openai_error_type(status: int) -> str:
    if status >= 500:
        return "api_error"
    return _TYPES.get(status, "invalid_request_error")


def openai_error_body(
    status: int,
    message: str,
    *,
    type_: str | None = None,
    param: str | None = None,
    code: str | None = None,
    request_id: str | None = None,
) -> OpenAIErrorBody:
    """The body for an error response of ``status``; ``type_``/``code`` override the defaults."""
    return {
        "error": {
            "message": message,
            "type": type_ or openai_error_type(status),
            "param": param,
            "code": code or _CODES.get(status),
        },
        "request_id": request_id,
    }
