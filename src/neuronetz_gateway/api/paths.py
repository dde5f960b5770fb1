"""The route allowlist: which raw request paths may reach a handler. Pure functions.

Ollama's management, account and cloud endpoints must answer 403 for every spelling of
their path, and nothing Ollama adds later under ``/api/`` may slip through. So the rule
is deny by default: any path whose canonical form lies under ``/api`` and is not one of
the model endpoints below is blocked, whatever the method. Only the exact spelling of a
known route reaches its handler; other spellings of known routes are unknown (404).
"""

from __future__ import annotations

import unicodedata
from typing import Literal
from urllib.parse import unquote

# Native model endpoints that a tenant's key may use.
NATIVE_ROUTES = frozenset(
    {
        "/api/chat",
        "/api/generate",
        "/api/embed",
        "/api/embeddings",
        "/api/tags",
        "/api/show",
        "/api/version",
    }
)
OPENAI_ROUTES = frozenset(
    {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models"}
)
OPS_ROUTES = frozenset(
    {"/healthz", "/readyz", "/metrics", "/openapi.json", "/playground", "/playground/"}
)
KNOWN_ROUTES = NATIVE_ROUTES | OPENAI_ROUTES | OPS_ROUTES

PathClass = Literal["route", "blocked", "unknown"]


def canonical_path(raw: str) -> str:
    """Reduce any spelling of a path to one form: decoded, NFKC, lower case, no dot segments,
    no ``;params``, no empty segments, no trailing slash."""
    path = raw
    for _ in range(5):  # %252f → %2f → /
        decoded = unquote(path, errors="replace")
        if decoded == path:
            break
        path = decoded
    path = unicodedata.normalize("NFKC", path).replace("\\", "/")
    path = "".join(c for c in path if c.isprintable() and not c.isspace())
    segments: list[str] = []
    for segment in path.split("/"):
        segment = segment.split(";", 1)[0].lower()
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    return "/" + "/".join(segments)


def classify(raw_path: str) -> PathClass:
    """``route`` for an exact known route, ``blocked`` for anything under /api that is not
    a model endpoint, ``unknown`` otherwise."""
    if raw_path in KNOWN_ROUTES or _is_model_lookup(raw_path):
        return "route"
    canonical = canonical_path(raw_path)
    if (canonical == "/api" or canonical.startswith("/api/")) and canonical not in NATIVE_ROUTES:
        return "blocked"
    return "unknown"


def _is_model_lookup(raw_path: str) -> bool:
    # GET /v1/models/{model}: one segment of safe characters, no dot segments.
    if not raw_path.startswith("/v1/models/"):
        return False
    name = raw_path[len("/v1/models/") :]
    return (
        0 < len(name) <= 256
        and name not in (".", "..")
        and all(c.isalnum() or c in "-_.:" for c in name)
        and name.isascii()
    )
