"""`neuronetz-gateway serve` as real processes: start-up, refusal of unsafe set-ups, and
two instances sharing PostgreSQL and Redis enforcing one global limit."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import ollama

from neuronetz_gateway.mock_ollama import MockOllamaThread
from tests.fixtures.gateway import Admin, LoopThread, free_port


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "GATEWAY_"))}
    env.update(
        ARGON2_MEMORY_COST_KIB="1024",
        ARGON2_TIME_COST="1",
        GATEWAY_LOG_LEVEL="WARNING",
        MODEL_DISCOVERY_REFRESH_S="1",
        **extra,
    )
    return env


@contextmanager
def serve(**extra: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "neuronetz_gateway", "serve"],
        env=_env(GATEWAY_BIND_PORT=str(port), **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "gateway did not become healthy"
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


def test_serve_from_the_environment(
    mock: MockOllamaThread, tmp_path: object, admin_loop: LoopThread
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/serve.db"
    with serve(DATABASE_URL=db, OLLAMA_BASE_URL=mock.url) as url:
        key = Admin(db, admin_loop).tenant_and_key("acme")
        client = ollama.Client(host=url, headers={"Authorization": f"Bearer {key}"})
        parts = list(
            client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}], stream=True)
        )
        assert "".join(p.message.content or "" for p in parts) == "Echo: hi"
        assert httpx.get(url + "/readyz").status_code == 200
        assert httpx.post(url + "/api/pull", json={}).status_code == 403
        assert "server" not in httpx.get(url + "/healthz").headers


def test_several_workers_without_redis_refuse_to_start(tmp_path: object) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "neuronetz_gateway", "serve"],
        env=_env(GATEWAY_WORKERS="2", DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/w.db"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "GATEWAY_WORKERS" in done.stderr and "REDIS_URL" in done.stderr
    assert "Traceback" not in done.stderr


def test_two_instances_enforce_one_global_limit(
    mock: MockOllamaThread, pg_url: str, redis_url: str, admin_loop: LoopThread
) -> None:
    env = {"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "OLLAMA_BASE_URL": mock.url}
    with serve(**env) as first, serve(**env) as second:
        admin = Admin(pg_url, admin_loop)
        admin.tenant("acme", rpm=10)
        key = admin.key("acme")
        auth = {"Authorization": f"Bearer {key}"}
        body = {
            "model": "llama3.2",
            "stream": False,
            "messages": [{"role": "user", "content": "x"}],
        }
        statuses = [
            httpx.post((first, second)[i % 2] + "/api/chat", json=body, headers=auth).status_code
            for i in range(30)
        ]
    assert statuses.count(200) == 10 and statuses.count(429) == 20
