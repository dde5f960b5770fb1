"""Running the mock in a thread, and as ``python -m neuronetz_gateway.mock_ollama``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest

from neuronetz_gateway.mock_ollama import MockOllama, MockOllamaThread, running_mock


def fetch(url: str, body: object = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(url, data=data, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_running_mock_serves_synchronous_callers() -> None:
    with running_mock(models=["phi3"]) as mock:
        status, tags = fetch(f"{mock.url}/api/tags")
        mock.configure(fail="busy", fail_count=1)
        busy, _ = fetch(f"{mock.url}/api/generate", {"model": "phi3", "prompt": "x"})

        assert status == 200
        assert [m["name"] for m in tags["models"]] == ["phi3:latest"]
        assert busy == 503
        assert [r["path"] for r in mock.requests] == ["/api/tags", "/api/generate"]
        assert mock.stats()["logged_requests"] == 2
        mock.reset()
        assert mock.requests == []
        assert mock.config.fail is None


def test_thread_stop_is_idempotent_and_frees_the_port() -> None:
    mock = MockOllamaThread().start()
    url = mock.url
    assert fetch(f"{url}/api/version")[0] == 200

    mock.stop()
    mock.stop()

    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/api/version", timeout=2)


def test_thread_start_reports_a_port_in_use() -> None:
    with MockOllamaThread() as first, pytest.raises(OSError, match="address already in use"):
        MockOllamaThread(port=first.port).start()


async def test_async_start_twice_is_refused() -> None:
    async with MockOllama() as mock:
        with pytest.raises(RuntimeError, match="already started"):
            await mock.start()


def test_url_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = MockOllama().url


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_module_entry_point_serves_until_signalled(stop_signal: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "neuronetz_gateway.mock_ollama", "--port", "0", "--model", "phi3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("mock Ollama listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1].strip()

        status, tags = fetch(f"{url}/api/tags")

        assert status == 200
        assert [m["name"] for m in tags["models"]] == ["phi3:latest"]
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
