"""The log of every request the mock received (control requests excluded).

Tests read it to prove what reached "Ollama" and, above all, what never did.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, TypedDict

from aiohttp import web


class RecordedRequest(TypedDict):
    """One received request. Header names are lower-cased; ``body`` is the parsed
    JSON (``None`` when the body is empty or not JSON); ``disconnected`` turns true
    when the client went away while a stream was being written."""

    method: str
    path: str
    raw_path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw_body: bytes
    received_at: float
    disconnected: bool


def record_request(request: web.BaseRequest, raw: bytes, body: Any) -> RecordedRequest:
    return {
        "method": request.method,
        "path": request.path,
        "raw_path": request.raw_path,
        "query": dict(request.query) if request.query_string else {},
        "headers": {name.lower(): value for name, value in request.headers.items()},
        "body": body,
        "raw_body": raw,
        "received_at": time.time(),
        "disconnected": False,
    }


def record_as_json(record: RecordedRequest) -> dict[str, Any]:
    out: dict[str, Any] = dict(record)
    out["raw_body"] = record["raw_body"].decode("utf-8", "replace")
    return out


class RequestLog:
    """The newest ``limit`` records, oldest first."""

    def __init__(self, limit: int) -> None:
        self._records: deque[RecordedRequest] = deque(maxlen=limit)

    def add(self, record: RecordedRequest) -> None:
        self._records.append(record)

    def snapshot(self) -> list[RecordedRequest]:
        return [record.copy() for record in self._records]

    def clear(self) -> int:
        count = len(self._records)
        self._records.clear()
        return count

    def resize(self, limit: int) -> None:
        if limit != self._records.maxlen:
            self._records = deque(self._records, maxlen=limit)

    def __len__(self) -> int:
        return len(self._records)
