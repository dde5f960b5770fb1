"""The mutable state of one mock server, and one request as the dispatcher read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from neuronetz_gateway.mock_ollama.config import MockConfig
from neuronetz_gateway.mock_ollama.decoding import request_object
from neuronetz_gateway.mock_ollama.faults import FaultSchedule
from neuronetz_gateway.mock_ollama.request_log import RecordedRequest, RequestLog


class MockState:
    """Configuration, fault schedule, request log and concurrency counters.

    Lives on the server's event loop; other threads go through ``MockOllamaThread``.
    """

    def __init__(self, changes: Mapping[str, object]) -> None:
        self._initial = MockConfig().updated(changes)
        self.config = self._initial
        self.log = RequestLog(self.config.request_log_size)
        self.faults = FaultSchedule(self.config.fail, self.config.fail_count)
        self.in_flight = 0
        self.peak_in_flight = 0

    def configure(self, changes: Mapping[str, object]) -> None:
        """Apply ``changes`` (all or nothing); a new ``fail``/``fail_count`` restarts the count."""
        self.config = self.config.updated(changes)
        self.log.resize(self.config.request_log_size)
        if "fail" in changes or "fail_count" in changes:
            self.faults = FaultSchedule(self.config.fail, self.config.fail_count)

    def reset(self) -> None:
        """Back to the configuration the server was created with; empty log and counters."""
        self.config = self._initial
        self.log = RequestLog(self.config.request_log_size)
        self.faults = FaultSchedule(self.config.fail, self.config.fail_count)
        self.peak_in_flight = self.in_flight

    def stats(self) -> dict[str, Any]:
        return {
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "logged_requests": len(self.log),
            "fail_remaining": self.faults.remaining if self.faults.mode is not None else 0,
        }


@dataclass(frozen=True, slots=True)
class Received:
    """A request whose body has been read and parsed once, for the log and the handler."""

    request: web.BaseRequest
    raw: bytes
    body: Any
    json_error: str | None
    record: RecordedRequest

    def decode(self, go_type: str) -> dict[str, Any]:
        """The body as Ollama's handler for ``api.<go_type>`` decodes it (400 otherwise)."""
        return request_object(self.raw, self.body, self.json_error, go_type)
