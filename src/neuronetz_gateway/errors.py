"""The gateway's one error tree.

Every refusal the gateway makes is a ``GatewayError``; one renderer per API surface
(``proxy.render``) turns it into the body that surface's clients expect. Foreign
exceptions (aiohttp, redis, SQLAlchemy) are translated at the boundary where they
occur, never rendered directly, so no upstream text or stack trace reaches a client.

    GatewayError
    ├── BadRequest              400  malformed or refused input
    ├── Unauthorized            401  any authentication failure (one body for all)
    ├── Forbidden               403  blocked endpoint, or model outside the effective set
    ├── NotFound                404  unknown path
    ├── MethodNotAllowed        405
    ├── PayloadTooLarge         413
    ├── UnsupportedMediaType    415  compressed bodies are refused
    ├── RateLimited             429  limit or budget hit (carries Retry-After)
    ├── UpstreamUnavailable     502  no backend could serve the request
    ├── ServiceUnavailable      503  a store the gateway depends on is down (fail closed)
    └── UpstreamTimeout         504
"""

from __future__ import annotations

import math
from typing import ClassVar


class GatewayError(Exception):
    """A refusal with an HTTP status, a stable machine code and a client-safe message."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "internal error"

    def __init__(
        self,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        param: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.headers: dict[str, str] = dict(headers or {})
        self.param = param
        # A short, bounded label for metrics and audit (never user input).
        self.reason = reason or self.code
        super().__init__(self.message)


class BadRequest(GatewayError):
    status = 400
    code = "invalid_request"
    default_message = "invalid request"


class Unauthorized(GatewayError):
    status = 401
    code = "unauthorized"
    default_message = "invalid or missing API key"


class Forbidden(GatewayError):
    status = 403
    code = "forbidden"
    default_message = "forbidden"


class NotFound(GatewayError):
    status = 404
    code = "not_found"
    default_message = "not found"


class MethodNotAllowed(GatewayError):
    status = 405
    code = "method_not_allowed"
    default_message = "method not allowed"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "payload_too_large"
    default_message = "request body too large"


class UnsupportedMediaType(GatewayError):
    status = 415
    code = "unsupported_media_type"
    default_message = "unsupported request encoding"


class RateLimited(GatewayError):
    status = 429
    code = "rate_limited"
    default_message = "rate limit exceeded"

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after_s: float,
        reason: str = "rate_limited",
        headers: dict[str, str] | None = None,
    ) -> None:
        merged = dict(headers or {})
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        merged["Retry-After"] = str(self.retry_after_s)
        super().__init__(message, headers=merged, reason=reason)


class UpstreamUnavailable(GatewayError):
    status = 502
    code = "upstream_unavailable"
    default_message = "no backend is available for this request"
    attempts = 0  # how many backends were tried, for the audit row


class ServiceUnavailable(GatewayError):
    status = 503
    code = "service_unavailable"
    default_message = "service temporarily unavailable"


class UpstreamTimeout(GatewayError):
    status = 504
    code = "upstream_timeout"
    default_message = "the backend did not answer in time"
