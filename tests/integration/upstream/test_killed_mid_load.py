"""Three backends under load; one is killed (SIGKILL) in the middle of it.

What clients may see: nothing at all for requests that had not received a byte (they
fail over); a well-formed error frame for streams that were being answered by the
killed backend (no failover after the first byte). Every request is audited once.
Run with ``-s`` to see the summary line.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import orjson
import pytest

from tests.fixtures.gateway import RunningGateway
from tests.integration.upstream.conftest import MakeGateway, audit_rows, chat_body, metric

LOAD_S = 2.5
KILL_AT_S = 1.0
CLIENTS = 12


@dataclass
class Outcome:
    stream: bool
    status: int
    chunks: int  # content frames received
    done: bool  # the final frame arrived
    error_frame: bool  # ended with {"error": ...}


@pytest.fixture
def processes() -> Iterator[list[tuple[subprocess.Popen[str], str]]]:
    """Three mock Ollamas in processes of their own, so one can really be killed."""
    started: list[tuple[subprocess.Popen[str], str]] = []
    try:
        for _ in range(3):
            proc = subprocess.Popen(
                [sys.executable, "-m", "neuronetz_gateway.mock_ollama", "--port", "0"],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdout is not None
            match = re.search(r"listening on (\S+)", proc.stdout.readline())
            assert match, "the mock did not start"
            started.append((proc, match.group(1)))
        yield started
    finally:
        for proc, _ in started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()


def one_request(client: httpx.Client, gw: RunningGateway, key: str, stream: bool) -> Outcome:
    headers = {"Authorization": f"Bearer {key}"}
    body = chat_body(stream=stream, text="tell me about the weather in Leipzig")
    with client.stream("POST", gw.url + "/api/chat", content=body, headers=headers) as response:
        raw = response.read()
    frames = [orjson.loads(line) for line in raw.splitlines() if line.strip()]
    error = bool(frames) and "error" in frames[-1]
    content = [f for f in frames if "message" in f and not f.get("done")]
    done = bool(frames) and frames[-1].get("done") is True
    return Outcome(stream, response.status_code, len(content), done, error)


@pytest.mark.parametrize("policy", ["priority", "warm"])
def test_one_backend_killed_mid_load(
    processes: list[tuple[subprocess.Popen[str], str]],  # first: stopped after the gateway
    make_gateway: MakeGateway,
    policy: str,
) -> None:
    for _, url in processes:
        httpx.post(
            url + "/_mock/config", json={"delay_s": 0.1, "chunk_delay_s": 0.03, "chunks": 8}
        ).raise_for_status()
    gw = make_gateway(
        ollama_backends=[{"name": n, "url": u} for n, (_, u) in zip("abc", processes, strict=True)],
        routing_policy=policy,
    )
    key = gw.admin.tenant_and_key("load")
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client_loop(index: int) -> None:
        with httpx.Client(timeout=10) as client:
            n = index
            while not stop.is_set():
                outcome = one_request(client, gw, key, stream=n % 3 != 0)
                n += 1
                with lock:
                    outcomes.append(outcome)

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(KILL_AT_S)
    victim, _ = processes[0]
    os.kill(victim.pid, signal.SIGKILL)
    killed_at = len(outcomes)
    time.sleep(LOAD_S - KILL_AT_S)
    stop.set()
    for thread in threads:
        thread.join(20)

    rows = audit_rows(gw)
    by_backend = Counter(r.backend for r in rows)
    failovers = sum(r.attempts > 1 for r in rows)
    attempts_failed = metric(gw, "nz_upstream_errors_total", backend="a")
    broken = [o for o in outcomes if o.error_frame]
    summary = (
        f"[{policy}] requests={len(outcomes)} (done before the kill: {killed_at}) "
        f"served_ok={sum(o.done for o in outcomes)} by_backend={dict(by_backend)} "
        f"failed_over={failovers} failed_attempts_on_a={attempts_failed:.0f} "
        f"non_200={sum(o.status != 200 for o in outcomes)} "
        f"streams_cut_after_first_byte={len(broken)} "
        f"breaker_a={gw.state.breakers['a'].state}"
    )
    print(summary)

    assert len(rows) == len(outcomes)  # every request audited, once
    assert all(o.status == 200 for o in outcomes)  # nothing failed before the first byte
    for o in broken:  # an error frame only ever follows delivered content, on a stream
        assert o.stream
        assert o.chunks >= 1
    assert all(o.done for o in outcomes if not o.error_frame)
    assert len(broken) == sum(r.error_class == "upstream_stream_broken" for r in rows)
    assert {r.backend for r in rows if r.error_class == "upstream_stream_broken"} <= {"a"}
    assert by_backend["a"] > 0
    assert by_backend["b"] > 0
    assert failovers > 0
    assert attempts_failed >= failovers
    assert gw.state.breakers["a"].state == "open"
    assert [b.in_flight for b in gw.state.backends] == [0, 0, 0]  # nothing leaked
