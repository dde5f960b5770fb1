"""The ways the mock misbehaves on model requests, and when.

Observable by a client:

* ``busy`` — 503 ``server busy, please try again.  maximum pending requests exceeded``;
* ``before_first_chunk`` — 500 ``{"error": ...}`` before any byte of the answer;
* ``error_500_with_trace`` — 500 whose ``error`` holds a Go panic trace with
  ``/usr/lib/ollama`` paths (the gateway must never pass upstream text on);
* ``reset_before_first_byte`` — TCP reset, no response at all;
* ``after_first_chunk`` — first NDJSON line, then the connection is cut (non-streamed:
  half the body, then cut);
* ``error_after_first_chunk`` — first line, then an Ollama-style ``{"error": ...}``
  line and a normal end (non-streamed: a plain 500, as Ollama does).
"""

from __future__ import annotations

from aiohttp import web

from neuronetz_gateway.mock_ollama.config import FailMode
from neuronetz_gateway.mock_ollama.wire import StreamFault, error_response, reset_connection

BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"
RUNNER_DIED = "llama runner process has terminated: exit status 2"
GO_TRACE = (
    "llama runner process has terminated: signal: segmentation fault (core dumped)\n"
    "panic: runtime error: invalid memory address or nil pointer dereference\n"
    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x5b3d2e]\n\n"
    "goroutine 1123 [running]:\n"
    "github.com/ollama/ollama/llm.(*llmServer).Completion(0xc0004a6000, {0x1f2b8c0, 0xc000}, ...)\n"
    "\t/go/src/github.com/ollama/ollama/llm/server.go:812 +0x3ce\n"
    "github.com/ollama/ollama/server.(*Server).ChatHandler.func2()\n"
    "\t/go/src/github.com/ollama/ollama/server/routes.go:1544 +0x1a5\n"
    "created by github.com/ollama/ollama/server.(*Server).ChatHandler in goroutine 1098\n"
    "runner: /usr/lib/ollama/cuda_v12/libggml-cuda.so model: "
    "/root/.ollama/models/blobs/sha256-dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff"
)


class FaultSchedule:
    """Hands out ``mode`` to the next ``count`` model requests (``None``: to all)."""

    __slots__ = ("mode", "remaining")

    def __init__(self, mode: FailMode | None, count: int | None) -> None:
        self.mode = mode
        self.remaining = count

    def draw(self) -> FailMode | None:
        if self.mode is None:
            return None
        if self.remaining is None:
            return self.mode
        if self.remaining <= 0:
            return None
        self.remaining -= 1
        return self.mode


def early_failure(request: web.BaseRequest, mode: FailMode | None) -> web.StreamResponse | None:
    """The answer for a fault that strikes before any output, else ``None``."""
    if mode is None or mode in ("after_first_chunk", "error_after_first_chunk"):
        return None
    if mode == "busy":
        return error_response(503, BUSY_MESSAGE)
    if mode == "before_first_chunk":
        return error_response(500, RUNNER_DIED)
    if mode == "error_500_with_trace":
        return error_response(500, GO_TRACE)
    return reset_connection(request)


def stream_fault(mode: FailMode | None) -> StreamFault | None:
    if mode == "after_first_chunk" or mode == "error_after_first_chunk":
        return mode
    return None
