"""`neuronetz-gateway demo` as a newcomer runs it: start, paste the printed commands, Ctrl-C."""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.gateway import free_port


@pytest.fixture
def demo() -> subprocess.Popen[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "neuronetz_gateway", "demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 30) -> str:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return "".join(lines)
    raise AssertionError("demo output ended early:\n" + "".join(lines))


def _run(command: str) -> str:
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_demo_prints_working_commands_and_cleans_up(demo: subprocess.Popen[str]) -> None:
    started = time.monotonic()
    output = _read_until(demo, "Ctrl-C stops")
    assert time.monotonic() - started < 30
    key = re.search(r"API key\s+(nz_\w{41})", output)
    workdir = re.search(r"data\s+(\S+) \(removed on exit\)", output)
    assert key and workdir and Path(workdir.group(1)).exists()
    commands = [line for line in output.splitlines() if line.startswith("curl ")]
    assert len(commands) == 5
    sse, ndjson, models, unauthorized, pull = (_run(c) for c in commands)
    events = [e for e in sse.split("\n\n") if e.strip()]
    assert events[-1] == "data: [DONE]" and len(events) > 3
    assert "".join(
        json.loads(e[6:])["choices"][0]["delta"].get("content", "")
        for e in events[:-1]
        if json.loads(e[6:])["choices"]
    ).startswith("Echo:")
    lines = [json.loads(line) for line in ndjson.splitlines()]
    assert lines[-1]["done"] is True and len(lines) > 2
    assert {m["id"] for m in json.loads(models)["data"]} >= {"llama3.2:latest"}
    assert unauthorized.startswith("HTTP/1.1 401")
    assert pull.startswith("HTTP/1.1 403")
    demo.send_signal(signal.SIGINT)
    assert demo.wait(20) == 0 or demo.returncode in (0, 130, -2)
    assert not Path(workdir.group(1)).exists()
