"""The scenarios of one gateway mode. Each takes a ``Context`` and adds its rows, target
checks and facts to ``context.result``; the order is chosen in ``bench.run``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench.measurements import Figures, ModeResult
from bench.plan import Plan
from bench.procstat import machine_busy_seconds, sample
from bench.stack import MODEL, Gateway, Mock
from bench.targets import Bounds
from bench.wrk import Wrk, WrkResult

NATIVE = "/api/chat"
OPENAI = "/v1/chat/completions"
_MESSAGES = [{"role": "user", "content": "Say hello in five words"}]


def chat_body(path: str, *, stream: bool) -> bytes:
    """The request body of the chat surface at ``path`` (streaming on or off)."""
    return orjson.dumps({"model": MODEL, "messages": _MESSAGES, "stream": stream})


@dataclass
class Context:
    plan: Plan
    bounds: Bounds
    wrk: Wrk
    mock: Mock
    gateway: Gateway
    result: ModeResult
    workdir: Path
    peak: dict[str, WrkResult] = field(default_factory=dict)  # by "path c=N"
    peak_figures: dict[str, Figures] = field(default_factory=dict)

    def headers(self, *, direct: bool) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if not direct:
            headers["Authorization"] = f"Bearer {self.gateway.key}"
        return headers

    def url(self, path: str, *, direct: bool) -> str:
        return (self.mock.url if direct else self.gateway.url) + path

    async def quiesce(self, timeout_s: float = 60.0) -> float:
        """Wait until the gateway is idle (under 10 % of a core for half a second) and so
        is the machine (under 20 % of one core over all processes: PostgreSQL, Redis and
        the mock too), so one scenario's backlog is not billed to the next; return the
        seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            before = sample(self.gateway.pid).cpu_s
            busy_before = machine_busy_seconds()
            await asyncio.sleep(0.5)
            gateway = sample(self.gateway.pid).cpu_s - before
            if gateway < 0.05 and machine_busy_seconds() - busy_before < 0.1:
                break
        return time.monotonic() - started

    def say(self, message: str) -> None:
        print(f"bench {time.strftime('%H:%M:%S')} [{self.result.mode}] {message}", flush=True)

    async def wrk_phase(
        self,
        path: str,
        connections: int,
        *,
        direct: bool,
        name: str,
        duration_s: float | None = None,
        delay_ms: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> tuple[WrkResult, Figures]:
        """One wrk run on the mock (``direct``) or the gateway, with the CPU that the
        target process spent per request and its RSS afterwards."""
        pid = self.mock.child.pid if direct else self.gateway.pid
        before = sample(pid)
        result = await self.wrk.run(
            self.url(path, direct=direct),
            body=chat_body(path, stream=False).decode(),
            headers={**self.headers(direct=direct), **(extra_headers or {})},
            connections=connections,
            duration_s=duration_s or self.plan.phase_s,
            delay_ms=delay_ms,
            name=f"{self.result.mode}-{name}",
        )
        after = sample(pid)
        cpu = (after.cpu_s - before.cpu_s) * 1000 / result.requests if result.requests else None
        if result.error_count:
            self.result.fact(
                f"errors in {name}",
                f"{result.error_count} of {result.requests} ({dict(result.errors)}); "
                f"first: {result.first_error or '–'}",
            )
        return result, Figures(
            rate=result.ok_rps,
            p50_ms=result.p50_ms,
            p99_ms=result.p99_ms,
            errors=result.error_count,
            cpu_ms_per_op=cpu,
            rss_mb=after.rss_mb,
        )
