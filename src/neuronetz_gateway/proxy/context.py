"""Per-request facts gathered along the pipeline; the edge turns them into the audit row."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from neuronetz_gateway.auth.authenticator import Principal

Surface = Literal["native", "openai", "ops"]


@dataclass(slots=True)
class RequestContext:
    request_id: str
    started: float  # perf_counter
    started_at: datetime
    client_ip: str
    surface: Surface
    method: str
    path: str
    principal: Principal | None = None
    model: str | None = None
    backend: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    first_byte: float | None = None  # perf_counter of the first body byte sent
    error_class: str | None = None
    attempts: int = 0
    streamed: bool = False
    prompt: Any = None
    response_parts: list[str] | None = field(default=None)
    refusal: str | None = None  # bounded reason label for metrics
    # Request headers the handlers need, read once by the edge (first value each;
    # ``authorization`` is None when there was none or more than one).
    authorization: str | None = None
    content_length: str | None = None
    content_encoding: str | None = None

    def collect_response(self) -> bool:
        return self.principal is not None and self.principal.log_prompts


def context_of(scope_state: dict[str, Any]) -> RequestContext:
    ctx = scope_state.get("nz")
    if not isinstance(ctx, RequestContext):
        raise RuntimeError("request context missing: is the edge middleware installed?")
    return ctx
