"""Sustained pressure: a bad-key flood next to valid traffic (target 5) and the soak
(target 6)."""

from __future__ import annotations

import asyncio

from bench.client import bad_key_flood
from bench.measurements import Check, Row
from bench.procstat import ProcSample, sample
from bench.scenarios import NATIVE, Context, chat_body

# Another loopback address: the flood must be throttled as one client, not the valid one.
FLOOD_SOURCE_IP = "127.0.0.2"
SOAK_CONNECTIONS = 16


async def bad_key_flood_cost(ctx: Context) -> None:
    """Valid /api/chat c=32 without, then with the flood; the cost is the drop. The run
    after the flood shows the recovery (a backlog of verifications is part of the cost,
    so it is no baseline)."""
    seconds = ctx.plan.flood_s
    rate = ctx.plan.flood_rate
    ctx.say(
        f"bad-key flood {rate:.0f} req/s from {FLOOD_SOURCE_IP}, "
        f"valid traffic c=32, {seconds:.0f} s"
    )
    before, _ = await ctx.wrk_phase(
        NATIVE, 32, direct=False, name="flood-before", duration_s=seconds
    )
    flood = asyncio.create_task(
        bad_key_flood(
            ctx.url(NATIVE, direct=False),
            chat_body(NATIVE, stream=False),
            rate=rate,
            duration_s=seconds + 1,
            source_ip=FLOOD_SOURCE_IP,
        )
    )
    await asyncio.sleep(0.5)
    during, figures = await ctx.wrk_phase(
        NATIVE, 32, direct=False, name="flood-during", duration_s=seconds
    )
    flooded = await flood
    after, _ = await ctx.wrk_phase(NATIVE, 32, direct=False, name="flood-after", duration_s=seconds)
    baseline = before.ok_rps
    cost_pct = (1 - during.ok_rps / baseline) * 100 if baseline else None
    ctx.result.rows.append(
        Row(
            f"{NATIVE} c=32 + bad-key flood",
            "req/s",
            None,
            figures,
        )
    )
    ctx.result.checks.append(
        Check(
            "5",
            "valid throughput lost to a 300 req/s bad-key flood",
            cost_pct,
            ctx.bounds.flood_cost_pct,
            "%",
            "max",
        )
    )
    ctx.result.fact(
        "bad-key flood",
        f"valid c=32: {before.ok_rps:,.0f} → {during.ok_rps:,.0f} with flood → "
        f"{after.ok_rps:,.0f} req/s just after; "
        f"flood sent {flooded.sent} at {flooded.rate:.0f}/s, "
        f"answers {dict(sorted(flooded.statuses.items()))}",
    )


async def soak(ctx: Context) -> None:
    """/api/chat at about half of this mode's peak c=32 rate, paced by wrk's ``delay``
    hook; RSS and fds sampled every second, fds compared at idle before and after."""
    seconds = ctx.plan.soak_s
    peak = ctx.peak.get(f"{NATIVE} c=32")
    c1 = ctx.peak.get(f"{NATIVE} c=1")
    target_rate = (peak.ok_rps if peak else 2000.0) / 2
    latency_ms = c1.p50_ms if c1 else 0.5
    delay_ms = max(1, round(SOAK_CONNECTIONS * 1000 / target_rate - latency_ms))
    ctx.say(
        f"soak {seconds:.0f} s at ~{target_rate:,.0f} req/s "
        f"(delay {delay_ms} ms × {SOAK_CONNECTIONS} conns)"
    )
    pid = ctx.gateway.pid
    await asyncio.sleep(1)
    idle_before = sample(pid)
    samples: list[ProcSample] = []
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            samples.append(sample(pid))
            await asyncio.sleep(1)

    watcher = asyncio.create_task(watch())
    try:
        run, figures = await ctx.wrk_phase(
            NATIVE,
            SOAK_CONNECTIONS,
            direct=False,
            name="soak",
            duration_s=seconds,
            delay_ms=delay_ms,
        )
    finally:
        stop.set()
        await watcher
    await asyncio.sleep(1)
    idle_after = sample(pid)
    # The first seconds fill pools and caches; growth is measured from the end of them.
    settle = min(len(samples) - 1, max(1, len(samples) // 10))
    steady = samples[settle:]
    start, end = steady[0], steady[-1]
    growth_pct = (end.rss_bytes / start.rss_bytes - 1) * 100
    # Pooled connections come and go by one or two; a leak lifts the floor: growth is
    # how far the last quarter's lowest count stands above the first quarter's highest.
    quarter = max(1, len(steady) // 4)
    fd_growth = max(0, min(s.fds for s in steady[-quarter:]) - max(s.fds for s in steady[:quarter]))
    ctx.result.rows.append(Row(f"soak {NATIVE} c={SOAK_CONNECTIONS} paced", "req/s", None, figures))
    ctx.result.checks.append(
        Check(
            "6",
            f"RSS growth over a {seconds:.0f} s soak",
            growth_pct,
            ctx.bounds.soak_rss_growth_pct,
            "%",
            "max",
        )
    )
    ctx.result.checks.append(
        Check(
            "6",
            "fd growth (last quarter's floor over first quarter's peak)",
            fd_growth,
            ctx.bounds.soak_fd_growth,
            "",
            "max",
        )
    )
    max_rss = max(s.rss_bytes for s in samples) / 2**20
    ctx.result.fact(
        f"soak {seconds:.0f} s",
        f"{run.requests:,} requests at {run.ok_rps:,.0f} req/s (target ~{target_rate:,.0f}), "
        f"errors {run.error_count}; "
        f"RSS {start.rss_mb:.1f} MB (after {settle} s) → {end.rss_mb:.1f} MB, "
        f"max {max_rss:.1f} MB; fds idle {idle_before.fds} → {idle_after.fds}, "
        f"max under load {max(s.fds for s in samples)}",
    )
