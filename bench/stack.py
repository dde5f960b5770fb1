"""The servers of a run: the mock Ollama, PostgreSQL and Redis for scale-out mode, and the
gateway itself as ``neuronetz-gateway serve`` with a tenant and a key of generous limits."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
from tests.fixtures import free_port

from bench.processes import BenchError, Child, Supervisor, child_env, stop, venv_bin

Mode = Literal["embedded", "scale-out"]
MODEL = "llama3.2"
HEALTHY_TIMEOUT_S = 60.0

# Checked on every request, never binding: the benchmark measures the cost of the checks.
# (Each request reserves ~4,100 tokens; the columns are 32-bit in PostgreSQL.)
GENEROUS_LIMITS = {"rpm": 1_000_000_000, "tpm": 2_000_000_000, "concurrent": 1_000_000}

# The mock's base behaviour between scenarios; a short request log keeps its memory flat.
MOCK_BASE_CONFIG: dict[str, Any] = {
    "chunks": None,
    "chunk_delay_s": 0.0,
    "delay_s": 0.0,
    "fail": None,
    "request_log_size": 100,
}


def mock_backends(mock_url: str) -> str:
    """``OLLAMA_BACKENDS`` for the mock. The gateway never sends a backend more requests than
    its ``parallel`` (at most 1,024; 4 by default), and the mock, unlike a GPU, has no such
    limit: two entries for the same mock give the 2,048 slots that 2,000 held streams need
    (the first is preferred while it has a free slot)."""
    return json.dumps(
        [{"name": name, "url": mock_url, "parallel": 1024} for name in ("mock-a", "mock-b")]
    )


async def wait_healthy(url: str, child: Child, timeout: float = HEALTHY_TIMEOUT_S) -> float:
    """Poll ``url`` until it answers 200; return the seconds it took. ``BenchError`` with
    the end of the child's log if it exits or takes longer than ``timeout``."""
    started = time.perf_counter()
    probe = aiohttp.ClientTimeout(total=1.0)
    async with aiohttp.ClientSession(timeout=probe) as session:
        while True:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except (aiohttp.ClientError, TimeoutError):
                pass
            if not child.running():
                raise BenchError(f"{child.name} exited while starting:\n{child.log_tail()}")
            if time.perf_counter() - started > timeout:
                raise BenchError(f"{child.name} not healthy after {timeout:.0f} s")
            await asyncio.sleep(0.005)


@dataclass
class Mock:
    child: Child
    url: str

    async def configure(self, **changes: Any) -> None:
        config = {**MOCK_BASE_CONFIG, **changes}
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.url}/_mock/config", json=config) as response,
        ):
            if response.status != 200:
                raise BenchError(f"mock refused {config}: {await response.text()}")


async def start_mock(supervisor: Supervisor, workdir: Path) -> Mock:
    port = free_port()
    child = supervisor.start(
        "mock-ollama",
        [venv_bin("neuronetz-gateway"), "mock-ollama", "--port", str(port)],
        env=child_env(),
        cwd=workdir,
        log_path=workdir / "mock.log",
    )
    mock = Mock(child, f"http://127.0.0.1:{port}")
    await wait_healthy(f"{mock.url}/api/version", child)
    await mock.configure()
    return mock


@dataclass
class Gateway:
    """One gateway mode: its stores, its process (restartable), and a valid key."""

    mode: Mode
    supervisor: Supervisor
    workdir: Path
    mock_url: str
    database_url: str
    redis_url: str | None
    port: int = field(default_factory=free_port)
    key: str = ""
    command: tuple[str, ...] = ()  # instead of `neuronetz-gateway serve` (A/B experiments)
    label: str = ""  # names its log files; the mode when empty
    child: Child | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.child is None:
            raise BenchError("the gateway is not running")
        return self.child.pid

    def env(self, log_level: str = "WARNING") -> dict[str, str]:
        values = {
            "GATEWAY_BIND_HOST": "127.0.0.1",
            "GATEWAY_BIND_PORT": str(self.port),
            "GATEWAY_LOG_LEVEL": log_level,
            "DATABASE_URL": self.database_url,
            "OLLAMA_BASE_URL": self.mock_url,
            "OLLAMA_BACKENDS": mock_backends(self.mock_url),
            # 2,000 held streams need 2,000 upstream connections (the default pool is 64).
            "OLLAMA_MAX_CONNECTIONS": "4096",
            "DEFAULT_RPM": str(GENEROUS_LIMITS["rpm"]),
            "DEFAULT_TPM": str(GENEROUS_LIMITS["tpm"]),
            "DEFAULT_CONCURRENT": str(GENEROUS_LIMITS["concurrent"]),
        }
        if self.redis_url:
            values["REDIS_URL"] = self.redis_url
        return child_env(**values)

    def create_key(self) -> str:
        """A tenant allowed every model, with limits that never bind, and a key of it."""
        cli = venv_bin("neuronetz-gateway")
        limits = [f"--{name}={value}" for name, value in GENEROUS_LIMITS.items()]
        self._cli([cli, "create-tenant", "--name", "bench", "--allow-all-models", *limits])
        out = self._cli([cli, "create-key", "--tenant", "bench", "--name", "bench", "--json"])
        self.key = str(json.loads(out)["key"])
        return self.key

    def _cli(self, argv: list[str]) -> str:
        result = subprocess.run(
            argv, env=self.env(), cwd=self.workdir, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise BenchError(f"{' '.join(argv[1:3])} failed:\n{result.stderr[-1500:]}")
        return result.stdout

    async def start(self, log_level: str = "WARNING") -> float:
        """Start ``neuronetz-gateway serve``; return the seconds from spawn to healthy."""
        if self.child is not None and self.child.running():
            raise BenchError("the gateway already runs")
        self.starts += 1
        self.child = self.supervisor.start(
            f"gateway ({self.mode})",
            list(self.command) or [venv_bin("neuronetz-gateway"), "serve"],
            env=self.env(log_level),
            cwd=self.workdir,
            log_path=self.workdir / f"gateway-{self.label or self.mode}-{self.starts}.log",
        )
        return await wait_healthy(f"{self.url}/healthz", self.child)

    def stop(self) -> None:
        if self.child is not None:
            stop(self.child)
            self.child = None


def embedded(supervisor: Supervisor, workdir: Path, mock_url: str, label: str = "") -> Gateway:
    db = workdir / f"{label or 'embedded'}.db"
    return Gateway(
        "embedded",
        supervisor,
        workdir,
        mock_url,
        f"sqlite+aiosqlite:///{db}",
        redis_url=None,
        label=label,
    )


def scale_out(supervisor: Supervisor, workdir: Path, mock_url: str) -> Gateway:
    """PostgreSQL and Redis from the test wheels, started the way the test fixtures do."""
    from tests.fixtures.postgres import PostgresServer
    from tests.fixtures.redis import RedisServer

    postgres = PostgresServer.spawn()
    supervisor.on_close(postgres.close)
    redis = RedisServer.spawn()
    supervisor.on_close(redis.close)
    database_url = postgres.create_database("bench")
    return Gateway("scale-out", supervisor, workdir, mock_url, database_url, redis.url)
