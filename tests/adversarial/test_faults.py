"""Faults with real processes: Redis, PostgreSQL and a backend are stopped (a backend is
SIGKILLed) and started again while clients keep sending. Clients see only 200, 502 or
503; every request has its audit row in PostgreSQL and every token a client was told
about is in it; the same gateway recovers from each fault without a restart.

Run with ``-s`` for the figures."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from neuronetz_gateway.db.models import RequestRecord
from tests.adversarial.conftest import MakeServed
from tests.fixtures.gateway import RunningGateway
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.redis import RedisServer

CLIENTS = 4
BODY = orjson.dumps(
    {"model": "llama3.2", "stream": False, "messages": [{"role": "user", "content": "hi there"}]}
)


class MockProcess:
    """A mock Ollama in a process of its own, restartable on the same port."""

    def __init__(self) -> None:
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "neuronetz_gateway.mock_ollama", "--port", str(self.port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.proc.stdout.readline())
        assert match, "the mock did not start"
        self.port = int(match.group(1))

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def model_calls(self) -> int:
        stats = httpx.get(self.url + "/_mock/requests", timeout=2).json()
        return sum(1 for r in stats if r["path"] == "/api/chat")


@pytest.fixture
def backends() -> Iterator[list[MockProcess]]:
    started = [MockProcess(), MockProcess()]
    try:
        for mock in started:
            mock.start()
        yield started
    finally:
        for mock in started:
            mock.close()


@dataclass
class Load:
    gw: RunningGateway
    key: str
    statuses: Counter[int] = field(default_factory=Counter)
    tokens_seen: int = 0
    transport_errors: list[str] = field(default_factory=list)
    sent: int = 0
    timeline: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _client(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        with httpx.Client(base_url=self.gw.url, timeout=15, headers=headers) as client:
            while not self._stop.is_set():
                try:
                    resp = client.post("/api/chat", content=BODY)
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.sent += 1
                        self.transport_errors.append(type(exc).__name__)
                    continue
                tokens = 0
                if resp.status_code == 200:
                    data = resp.json()
                    tokens = data["prompt_eval_count"] + data["eval_count"]
                with self._lock:
                    self.sent += 1
                    self.statuses[resp.status_code] += 1
                    self.tokens_seen += tokens
                    self.timeline.append((time.monotonic(), resp.status_code))
                if resp.status_code != 200:
                    time.sleep(0.02)  # a refused client backs off a little, as SDKs do

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._client) for _ in range(CLIENTS)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def recovered_within(self, since: float, limit: float) -> float:
        """Seconds from ``since`` to the first 200 after it (fails past ``limit``)."""
        deadline = since + limit
        while time.monotonic() < deadline:
            with self._lock:
                ok = [t for t, status in self.timeline if t > since and status == 200]
            if ok:
                return ok[0] - since
            time.sleep(0.05)
        raise AssertionError(f"no 200 within {limit} s of the restart")


def _outage(stop: Callable[[], None], start: Callable[[], None], load: Load, down_s: float) -> str:
    before = load.statuses.copy()
    stop()
    time.sleep(down_s)
    during = load.statuses - before
    start()
    restarted = time.monotonic()
    recovery = load.recovered_within(restarted, 20)
    return f"during={dict(during)} recovered_in={recovery:.2f}s"


def test_redis_postgres_and_a_backend_die_under_load(
    make_served: MakeServed,
    pg_url: str,
    redis_url: str,
    redis_server: RedisServer,
    postgres_server: PostgresServer,
    backends: list[MockProcess],
) -> None:
    a, b = backends
    gw = make_served(
        database_url=pg_url,
        redis_url=redis_url,
        ollama_backends=[{"name": "a", "url": a.url}, {"name": "b", "url": b.url}],
        breaker_failure_threshold=2,
        breaker_cooldown_s=0.5,
        ollama_connect_timeout_s=1.0,
        redis_timeout_s=1.0,
    )
    key = gw.admin.tenant_and_key("load")
    load = Load(gw, key)
    load.start()
    figures: dict[str, str] = {}
    try:
        time.sleep(0.5)
        figures["redis"] = _outage(redis_server.stop, redis_server.start, load, 1.0)
        figures["postgres"] = _outage(postgres_server.stop, postgres_server.start, load, 1.5)
        calls_before = b.model_calls()
        figures["backend a"] = _outage(a.kill, a.start, load, 1.0)
        assert b.model_calls() > calls_before  # a's share failed over to b while it was down
        deadline = time.monotonic() + 15
        while a.model_calls() == 0:  # the restarted process (empty log) is used again
            assert time.monotonic() < deadline, "the restarted backend never served again"
            time.sleep(0.1)
        time.sleep(0.3)
    finally:
        load.stop()
    gw.wait_audit_flushed(timeout=30)
    rows = gw.admin.query(lambda s: s.scalar(select(func.count()).select_from(RequestRecord)))
    tokens = gw.admin.query(
        lambda s: s.scalar(
            select(func.coalesce(func.sum(RequestRecord.tokens_in + RequestRecord.tokens_out), 0))
            .where(RequestRecord.status == 200)
        )
    )  # fmt: skip
    print(
        f"[adversarial] faults: requests={load.sent} statuses={dict(load.statuses)} "
        f"audit_rows={rows} tokens client={load.tokens_seen} sql={tokens} "
        + " ".join(f"{name}: {text}" for name, text in figures.items())
    )
    assert load.transport_errors == []
    assert set(load.statuses) <= {200, 502, 503}, load.statuses
    assert load.statuses[500] == 0
    assert rows == load.sent  # no lost audit row, no duplicate
    assert tokens == load.tokens_seen  # no lost usage
