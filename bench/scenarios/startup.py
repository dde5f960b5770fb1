"""Start to healthy (target 7): spawn of ``neuronetz-gateway serve`` to the first 200 on
``/healthz``, over several restarts (the database exists and is migrated)."""

from __future__ import annotations

from bench.measurements import Check
from bench.scenarios import Context
from bench.stats import percentile


async def start_to_healthy(ctx: Context, first_start_s: float) -> None:
    times = [first_start_s]
    for _ in range(ctx.plan.starts - 1):
        ctx.gateway.stop()
        times.append(await ctx.gateway.start())
    median = percentile(times, 50)
    ctx.say(f"start to healthy: {', '.join(f'{t:.2f}' for t in times)} s")
    ctx.result.checks.append(
        Check(
            "7",
            f"start to healthy (median of {len(times)})",
            median,
            ctx.bounds.start_s,
            "s",
            "max",
        )
    )
    ctx.result.fact("start to healthy", ", ".join(f"{t:.2f} s" for t in times))
