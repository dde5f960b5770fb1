"""OpenAPI descriptions of the proxied endpoints.

The handlers read raw bodies (they must refuse case-colliding keys and re-serialise what
they forward, which a pydantic model would hide), so their request and response shapes
are declared here for the OpenAPI document: clients, the playground and schemathesis.
"""

from __future__ import annotations

from typing import Any

_STR: dict[str, Any] = {"type": "string"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_OPTIONS: dict[str, Any] = {
    "type": "object",
    "description": "Ollama model options; num_predict is capped by MAX_NUM_PREDICT.",
    "properties": {
        "num_predict": {"type": "integer", "maximum": 4096},
        "temperature": {"type": "number"},
        "top_p": {"type": "number"},
        "top_k": {"type": "integer"},
        "seed": {"type": "integer"},
        "stop": {"type": "array", "items": _STR},
    },
}
_KEEP_ALIVE: dict[str, Any] = {
    "description": "Seconds or a duration like 5m; clamped to the operator's bounds.",
    "oneOf": [{"type": "number"}, _STR],
}
_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "user", "assistant", "tool"]},
        "content": _STR,
        "images": {"type": "array", "items": _STR},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
        "tool_name": _STR,
    },
}
NATIVE_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error", "request_id"],
    "properties": {"error": _STR, "request_id": _STR},
}
OPENAI_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": _STR,
                "type": _STR,
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        },
        "request_id": {"type": ["string", "null"]},
    },
}

CHAT: dict[str, Any] = {
    "type": "object",
    "required": ["model"],
    "properties": {
        "model": _STR,
        "messages": {"type": "array", "items": _MESSAGE},
        "stream": {"type": ["boolean", "null"], "description": "Missing or null: stream."},
        "format": {"oneOf": [{"type": "string", "enum": ["json", ""]}, {"type": "object"}]},
        "options": _OPTIONS,
        "keep_alive": _KEEP_ALIVE,
        "tools": {"type": "array", "items": {"type": "object"}},
        "think": {"oneOf": [_BOOL, {"type": "string", "enum": ["low", "medium", "high", "max"]}]},
    },
}
GENERATE: dict[str, Any] = {
    "type": "object",
    "required": ["model"],
    "properties": {
        "model": _STR,
        "prompt": _STR,
        "suffix": _STR,
        "system": _STR,
        "stream": {"type": ["boolean", "null"]},
        "raw": _BOOL,
        "images": {"type": "array", "items": _STR},
        "options": _OPTIONS,
        "keep_alive": _KEEP_ALIVE,
    },
}
EMBED: dict[str, Any] = {
    "type": "object",
    "required": ["model"],
    "properties": {
        "model": _STR,
        "input": {"oneOf": [_STR, {"type": "array", "items": _STR}]},
        "truncate": _BOOL,
        "dimensions": {"type": "integer", "minimum": 1},
    },
}
EMBEDDINGS: dict[str, Any] = {
    "type": "object",
    "required": ["model"],
    "properties": {"model": _STR, "prompt": _STR},
}
SHOW: dict[str, Any] = {
    "type": "object",
    "properties": {"model": _STR, "name": _STR, "verbose": _BOOL},
}
OPENAI_CHAT: dict[str, Any] = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": _STR,
        "messages": {"type": "array", "minItems": 1, "items": {"type": "object"}},
        "stream": _BOOL,
        "stream_options": {"type": "object", "properties": {"include_usage": _BOOL}},
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "seed": {"type": "integer"},
        "stop": {"oneOf": [_STR, {"type": "array", "items": _STR}]},
        "tools": {"type": "array", "items": {"type": "object"}},
        "response_format": {"type": "object"},
        "n": {"type": "integer", "enum": [1]},
    },
}
OPENAI_COMPLETION: dict[str, Any] = {
    "type": "object",
    "required": ["model", "prompt"],
    "properties": {
        "model": _STR,
        "prompt": _STR,
        "suffix": _STR,
        "stream": _BOOL,
        "max_tokens": {"type": "integer", "minimum": 1},
        "stop": {"oneOf": [_STR, {"type": "array", "items": _STR}]},
    },
}
OPENAI_EMBEDDINGS: dict[str, Any] = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": _STR,
        "input": {"oneOf": [_STR, {"type": "array", "items": _STR, "minItems": 1}]},
        "encoding_format": {"type": "string", "enum": ["float", "base64"]},
        "dimensions": {"type": "integer", "minimum": 1},
    },
}

_STATUS_TEXT = {
    400: "Invalid request",
    401: "Missing or invalid API key",
    403: "Blocked endpoint, or a model outside the key's set",
    404: "Unknown path (e.g. a model id with characters outside A-Z a-z 0-9 . _ : -)",
    405: "Wrong method",
    413: "Body over MAX_REQUEST_BODY_BYTES",
    415: "Compressed body",
    429: "A limit or budget was hit (Retry-After)",
    502: "No backend could answer (Retry-After)",
    503: "A store the gateway depends on is unavailable",
}


def _errors(schema: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": text, "content": {"application/json": {"schema": schema}}}
        for status, text in _STATUS_TEXT.items()
    }


def native_route(body: dict[str, Any] | None, *, streams: bool = False) -> dict[str, Any]:
    """``APIRouter`` keyword arguments describing a native endpoint."""
    ok: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
    if streams:
        ok["application/x-ndjson"] = {"schema": {"type": "string"}}
    extra: dict[str, Any] = {"security": [{"bearer": []}]}
    if body is not None:
        extra["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    return {
        "openapi_extra": extra,
        "responses": {200: {"description": "OK", "content": ok}, **_errors(NATIVE_ERROR)},
    }


def openai_route(body: dict[str, Any] | None, *, streams: bool = False) -> dict[str, Any]:
    """``APIRouter`` keyword arguments describing an OpenAI-compatible endpoint."""
    ok: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
    if streams:
        ok["text/event-stream"] = {"schema": {"type": "string"}}
    extra: dict[str, Any] = {"security": [{"bearer": []}]}
    if body is not None:
        extra["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    return {
        "openapi_extra": extra,
        "responses": {200: {"description": "OK", "content": ok}, **_errors(OPENAI_ERROR)},
    }


def security_schemes() -> dict[str, Any]:
    return {"bearer": {"type": "http", "scheme": "bearer", "description": "nz_… API key"}}
