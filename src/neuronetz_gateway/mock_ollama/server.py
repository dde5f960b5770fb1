"""``MockOllama``: the mock as a real HTTP server on the caller's event loop."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Unpack

from aiohttp import web

from neuronetz_gateway.mock_ollama.app import MockOllamaApp
from neuronetz_gateway.mock_ollama.config import MockConfig, MockConfigUpdate
from neuronetz_gateway.mock_ollama.request_log import RecordedRequest
from neuronetz_gateway.mock_ollama.state import MockState

# Streams still running when the server stops are cut after this long.
SHUTDOWN_TIMEOUT_S = 0.5


class MockOllama:
    """An Ollama look-alike on a real socket, with a request log and fault injection.

    ``MockOllama(**config)`` validates ``config`` at once (``MockConfigError``); the
    same keys are accepted by ``configure``. ``reset`` returns to this configuration.
    Use ``async with MockOllama() as mock`` or ``await start()`` / ``await stop()``.
    """

    def __init__(self, **config: Unpack[MockConfigUpdate]) -> None:
        self._state = MockState(config)
        self._runner: web.ServerRunner | None = None
        self._url: str | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (0: a free port); returns once connections are accepted."""
        if self._runner is not None:
            raise RuntimeError("MockOllama is already started")
        server = web.Server(MockOllamaApp(self._state), access_log=None)
        runner = web.ServerRunner(server, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        bound_port = runner.addresses[0][1]
        self._runner = runner
        self._url = f"http://{_url_host(host)}:{bound_port}"

    async def stop(self) -> None:
        """Close the socket and every connection; idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> MockOllama:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123`` (no trailing slash)."""
        if self._url is None:
            raise RuntimeError("MockOllama is not started")
        return self._url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the request log, oldest first."""
        return self._state.log.snapshot()

    def clear_requests(self) -> None:
        self._state.log.clear()

    @property
    def config(self) -> MockConfig:
        return self._state.config

    def configure(self, **changes: Unpack[MockConfigUpdate]) -> None:
        """Change only the named keys; raises ``MockConfigError`` and changes nothing
        if one is invalid."""
        self._state.configure(changes)

    def reset(self) -> None:
        self._state.reset()

    def stats(self) -> dict[str, Any]:
        return self._state.stats()


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
