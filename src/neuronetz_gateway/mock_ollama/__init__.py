"""The project's own Ollama emulator, faithful to ``ollama-api.md`` §2.

A real HTTP server (low-level aiohttp) for the test suite, the demo and the
benchmark: deterministic answers, a request log, and faults on demand, driven from
Python or over HTTP under ``/_mock/``.

* ``MockOllama`` — async: ``await start(host, port)``, ``.url``, ``await stop()``;
* ``MockOllamaThread`` / ``running_mock(...)`` — the same in a thread of its own;
* ``run(host, port)`` — serve in the foreground (CLI: ``python -m`` this package).
"""

from neuronetz_gateway.mock_ollama.catalog import DEFAULT_MODEL_NAMES, SYSTEM_PROMPT, ModelSpec
from neuronetz_gateway.mock_ollama.config import (
    FAIL_MODES,
    FailMode,
    MockConfig,
    MockConfigError,
    MockConfigUpdate,
)
from neuronetz_gateway.mock_ollama.request_log import RecordedRequest
from neuronetz_gateway.mock_ollama.runner import MockOllamaThread, run, running_mock
from neuronetz_gateway.mock_ollama.server import MockOllama

__all__ = [
    "DEFAULT_MODEL_NAMES",
    "FAIL_MODES",
    "SYSTEM_PROMPT",
    "FailMode",
    "MockConfig",
    "MockConfigError",
    "MockConfigUpdate",
    "MockOllama",
    "MockOllamaThread",
    "ModelSpec",
    "RecordedRequest",
    "run",
    "running_mock",
]
