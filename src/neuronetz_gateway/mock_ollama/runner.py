"""Running the mock outside the caller's event loop: in a thread, or in the foreground.

* ``MockOllamaThread`` / ``running_mock(...)`` — for synchronous callers (sync tests,
  a demo): the mock gets a thread and an event loop of its own;
* ``run(host, port)`` — blocks serving until Ctrl-C or SIGTERM (the CLI, the benchmark).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, TypeVar, Unpack

from neuronetz_gateway.mock_ollama.config import MockConfig, MockConfigUpdate
from neuronetz_gateway.mock_ollama.request_log import RecordedRequest
from neuronetz_gateway.mock_ollama.server import MockOllama

T = TypeVar("T")
_CALL_TIMEOUT_S = 10.0


def _new_loop() -> asyncio.AbstractEventLoop:
    if sys.platform != "win32":
        with contextlib.suppress(ImportError):
            import uvloop

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


class MockOllamaThread:
    """A ``MockOllama`` served from a daemon thread with its own event loop.

    Every method may be called from any thread; they run on the mock's loop.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, **config: Unpack[MockConfigUpdate]
    ) -> None:
        self.mock = MockOllama(**config)
        self._address = (host, port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> MockOllamaThread:
        """Start serving; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("MockOllamaThread is already started")
        started: concurrent.futures.Future[asyncio.AbstractEventLoop] = concurrent.futures.Future()
        thread = threading.Thread(
            target=self._serve, args=(started,), name="mock-ollama", daemon=True
        )
        thread.start()
        self._loop = started.result(timeout=_CALL_TIMEOUT_S)
        self._thread = thread
        return self

    def _serve(self, started: concurrent.futures.Future[asyncio.AbstractEventLoop]) -> None:
        loop = _new_loop()
        try:
            loop.run_until_complete(self.mock.start(*self._address))
        except BaseException as exc:
            loop.close()
            started.set_exception(exc)
            return
        started.set_result(loop)
        try:
            loop.run_forever()
            loop.run_until_complete(self.mock.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    def stop(self) -> None:
        """Stop serving and join the thread; idempotent."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=_CALL_TIMEOUT_S)

    def __enter__(self) -> MockOllamaThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _call(self, function: Callable[[], T]) -> T:
        loop = self._loop
        if loop is None:
            raise RuntimeError("MockOllamaThread is not started")
        result: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            try:
                result.set_result(function())
            except Exception as exc:
                result.set_exception(exc)

        loop.call_soon_threadsafe(call)
        return result.result(timeout=_CALL_TIMEOUT_S)

    @property
    def url(self) -> str:
        return self.mock.url

    @property
    def port(self) -> int:
        return self.mock.port

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._call(lambda: self.mock.requests)

    def clear_requests(self) -> None:
        self._call(self.mock.clear_requests)

    @property
    def config(self) -> MockConfig:
        return self._call(lambda: self.mock.config)

    def configure(self, **changes: Unpack[MockConfigUpdate]) -> None:
        self._call(lambda: self.mock.configure(**changes))

    def reset(self) -> None:
        self._call(self.mock.reset)

    def stats(self) -> dict[str, Any]:
        return self._call(self.mock.stats)


@contextlib.contextmanager
def running_mock(
    host: str = "127.0.0.1", port: int = 0, **config: Unpack[MockConfigUpdate]
) -> Iterator[MockOllamaThread]:
    """``with running_mock(models=[...]) as mock: ... mock.url ...``"""
    with MockOllamaThread(host, port, **config) as mock:
        yield mock


def run(
    host: str = "127.0.0.1",
    port: int = 11434,
    *,
    on_ready: Callable[[str], None] | None = None,
    **config: Unpack[MockConfigUpdate],
) -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM.

    ``on_ready`` receives the base URL once the port accepts connections; by default
    one line ``mock Ollama listening on <url>`` is printed (and flushed), which a
    parent process can wait for when ``port`` is 0.
    """
    mock = MockOllama(**config)
    announce = on_ready or _print_ready
    with asyncio.Runner(loop_factory=_new_loop) as runner, contextlib.suppress(KeyboardInterrupt):
        runner.run(_serve_until_stopped(mock, host, port, announce))


def _print_ready(url: str) -> None:
    print(f"mock Ollama listening on {url}", flush=True)


async def _serve_until_stopped(
    mock: MockOllama, host: str, port: int, announce: Callable[[str], None]
) -> None:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Also when started in the background, where SIGINT is ignored by default.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stopped.set)
    await mock.start(host, port)
    try:
        announce(mock.url)
        await stopped.wait()
    finally:
        await mock.stop()
