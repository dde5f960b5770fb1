"""Sustained pressure: a bad-key flood next to valid traffic (target 5) and the soak
(target 6)."""

from __future__ import annotations

import asyncio

from bench.client import bad_key_flood
from bench.measurements import Check, Figures, Row
from bench.procstat import ProcSample, sample
from bench.scenarios import NATIVE, Context, chat_body
from bench.wrk import WrkResult

# Another loopback address: the flood must be throttled as one client, not the valid one.
FLOOD_SOURCE_IP = "127.0.0.2"
SOAK_CONNECTIONS = 16


async def bad_key_flood_cost(ctx: Context) -> None:
    """Valid /api/chat c=32 without, then with the flood; the cost is the drop.

    The flood lasts one full throttle window (60 s), measured in four quarters: the
    throttle lets ``AUTH_FAILURE_RATE_LIMIT_PER_IP_PER_MIN`` failures per minute through
    to Argon2 and they all come in the first second, so a shorter window overstates a
    sustained flood's cost and a longer one dilutes it.

    The throughput without the flood is the mean of the runs just before and just after
    it: the valid traffic's own throughput drifts over a few minutes (its exact RPM log
    fills during its first minute; the runs after a flood measured 2-5 % below the runs
    before it with the flood's answers long gone), so one run on one side would bill that
    drift to the flood. The cost against the run before alone is printed as well."""
    seconds = ctx.plan.flood_s
    quarter_s = seconds / 4
    rate = ctx.plan.flood_rate
    ctx.say(
        f"bad-key flood {rate:.0f} req/s from {FLOOD_SOURCE_IP}, "
        f"valid traffic c=32, {seconds:.0f} s"
    )
    before, _ = await ctx.wrk_phase(
        NATIVE, 32, direct=False, name="flood-before", duration_s=quarter_s
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
    quarters: list[WrkResult] = []
    figures: list[Figures] = []
    for i in range(4):
        run, fig = await ctx.wrk_phase(
            NATIVE, 32, direct=False, name=f"flood-during-{i + 1}", duration_s=quarter_s
        )
        quarters.append(run)
        figures.append(fig)
    flooded = await flood
    after, _ = await ctx.wrk_phase(
        NATIVE, 32, direct=False, name="flood-after", duration_s=quarter_s
    )
    baseline = (before.ok_rps + after.ok_rps) / 2
    during_rps = sum(q.ok_rps for q in quarters) / len(quarters)
    cost_pct = (1 - during_rps / baseline) * 100 if baseline else None
    cost_vs_before = (1 - during_rps / before.ok_rps) * 100 if before.ok_rps else 0.0
    ctx.result.rows.append(
        Row(
            f"{NATIVE} c=32 + bad-key flood ({seconds:.0f} s)",
            "req/s",
            None,
            Figures(
                rate=during_rps,
                p50_ms=_max([f.p50_ms for f in figures]),
                p99_ms=_max([f.p99_ms for f in figures]),
                errors=sum(f.errors for f in figures),
                cpu_ms_per_op=_mean([f.cpu_ms_per_op for f in figures]),
                rss_mb=_max([f.rss_mb for f in figures]),
            ),
        )
    )
    ctx.result.checks.append(
        Check(
            "5",
            f"valid throughput lost to a {rate:.0f} req/s bad-key flood ({seconds:.0f} s)",
            cost_pct,
            ctx.bounds.flood_cost_pct,
            "%",
            "max",
        )
    )
    by_quarter = ", ".join(f"{q.ok_rps:,.0f}" for q in quarters)
    ctx.result.fact(
        "bad-key flood",
        f"valid c=32: {before.ok_rps:,.0f} → {during_rps:,.0f} with flood "
        f"(by {quarter_s:g}-s quarter: {by_quarter}) → {after.ok_rps:,.0f} req/s just after; "
        f"cost {cost_pct or 0:.1f} % against their mean, {cost_vs_before:.1f} % against "
        f"the run before alone; "
        f"flood sent {flooded.sent} at {flooded.rate:.0f}/s, "
        f"answers {dict(sorted(flooded.statuses.items()))}",
    )


def _max(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


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
    # Warm-up at the same rate, not measured: one full 60-s limit window fills the
    # sliding RPM log (one timestamp per request in it), pools and caches.
    warmup_s = ctx.plan.soak_warmup_s
    if warmup_s > 0:
        ctx.say(f"soak warm-up {warmup_s:.0f} s")
        await ctx.wrk_phase(
            NATIVE,
            SOAK_CONNECTIONS,
            direct=False,
            name="soak-warmup",
            duration_s=warmup_s,
            delay_ms=delay_ms,
        )
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
    # Growth is measured from the first sample of the soak proper (after the warm-up).
    settle = 1
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
        f"after a {warmup_s:.0f}-s warm-up: RSS {start.rss_mb:.1f} MB → {end.rss_mb:.1f} MB, "
        f"max {max_rss:.1f} MB; fds idle {idle_before.fds} → {idle_after.fds}, "
        f"max under load {max(s.fds for s in samples)}",
    )
