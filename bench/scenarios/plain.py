"""Non-streamed chat through wrk: added latency at concurrency 1, throughput at 32
(targets 1 and 2), what INFO logging costs, and a py-spy profile under load."""

from __future__ import annotations

from bench.measurements import Check, Row
from bench.procstat import thread_cpu_seconds
from bench.profiling import record
from bench.report import number
from bench.scenarios import NATIVE, OPENAI, Context

CONCURRENCY = (1, 32)


async def warm_up(ctx: Context) -> None:
    """Connections, key cache, code paths: the first second of load is not measured."""
    for path in (NATIVE, OPENAI):
        await ctx.wrk_phase(path, 8, direct=False, name="warmup", duration_s=1)
    await ctx.wrk_phase(NATIVE, 8, direct=True, name="warmup-direct", duration_s=1)


async def request_response(ctx: Context) -> None:
    b = ctx.bounds
    for connections in CONCURRENCY:
        ctx.say(f"non-streamed chat, concurrency {connections}")
        _, direct = await ctx.wrk_phase(
            NATIVE, connections, direct=True, name=f"direct-c{connections}"
        )
        for path in (NATIVE, OPENAI):
            run, gateway = await ctx.wrk_phase(
                path, connections, direct=False, name=f"gw{path.replace('/', '-')}-c{connections}"
            )
            ctx.peak[f"{path} c={connections}"] = run
            ctx.peak_figures[f"{path} c={connections}"] = gateway
            row = Row(f"{path} c={connections}", "req/s", direct, gateway)
            ctx.result.rows.append(row)
            if connections == 1:
                ctx.result.checks.append(
                    Check(
                        "1",
                        f"added p50, {path} c=1",
                        row.added_p50_ms,
                        b.added_p50_c1_ms,
                        "ms",
                        "max",
                    )
                )
                if b.added_p99_c1_ms is not None:
                    ctx.result.checks.append(
                        Check(
                            "1",
                            f"added p99, {path} c=1",
                            row.added_p99_ms,
                            b.added_p99_c1_ms,
                            "ms",
                            "max",
                        )
                    )
            else:
                ctx.result.checks.append(
                    Check("2", f"req/s, {path} c=32", gateway.rate, b.rps_c32, "req/s", "min")
                )
                ctx.result.checks.append(
                    Check(
                        "2",
                        f"added p99, {path} c=32",
                        row.added_p99_ms,
                        b.added_p99_c32_ms,
                        "ms",
                        "max",
                    )
                )


async def info_logging_cost(ctx: Context) -> None:
    """Restart at INFO (one log line per request), measure /api/chat, restart at WARNING."""
    ctx.say("INFO logging cost")
    ctx.gateway.stop()
    await ctx.gateway.start(log_level="INFO")
    await ctx.wrk_phase(NATIVE, 8, direct=False, name="warmup-info", duration_s=1)
    figures = []
    for connections in CONCURRENCY:
        _, gw = await ctx.wrk_phase(NATIVE, connections, direct=False, name=f"info-c{connections}")
        warning = ctx.peak_figures.get(f"{NATIVE} c={connections}")
        figures.append(
            f"c={connections}: {gw.rate or 0:,.0f} req/s, p50 {number(gw.p50_ms, 3)} ms, "
            f"CPU {number(gw.cpu_ms_per_op, 3)} ms/req"
            + (
                f" (at WARNING: {warning.rate or 0:,.0f} req/s, "
                f"p50 {number(warning.p50_ms, 3)} ms, "
                f"CPU {number(warning.cpu_ms_per_op, 3)} ms/req)"
                if warning
                else ""
            )
        )
    ctx.result.fact("INFO log level, /api/chat", "; ".join(figures))
    ctx.gateway.stop()
    await ctx.gateway.start()


async def profile(ctx: Context) -> None:
    """py-spy on the gateway during a /api/chat c=32 phase; the top costs per request."""
    import asyncio

    ctx.say("profiling /api/chat c=32 with py-spy")
    seconds = max(5.0, ctx.plan.phase_s)
    output = ctx.workdir / f"profile-{ctx.result.mode}.txt"
    recording = asyncio.create_task(record(ctx.gateway.pid, seconds, output))
    await asyncio.sleep(0.2)
    main_before, other_before = thread_cpu_seconds(ctx.gateway.pid)
    run, figures = await ctx.wrk_phase(NATIVE, 32, direct=False, name="profile", duration_s=seconds)
    main_after, other_after = thread_cpu_seconds(ctx.gateway.pid)
    prof = await recording
    requests = max(1, run.requests)
    threads = (
        f"Per request, the event-loop thread used "
        f"{(main_after - main_before) * 1000 / requests:.3f} ms of CPU and the other threads "
        f"(SQLite driver, worker pool) {(other_after - other_before) * 1000 / requests:.3f} ms "
        "(from /proc, while sampled). "
    )
    ctx.result.profile = (
        f"py-spy, {prof.samples} busy samples at 250 Hz during /api/chat c=32 "
        f"({figures.rate or 0:,.0f} req/s under the profiler, "
        f"{number(figures.cpu_ms_per_op, 3)} ms CPU per request). "
        "Self: time in the function itself; with callees: inclusive. "
        "µs/req = share × CPU per request (all threads). "
        + threads
        + "\n\n"
        + prof.report(figures.cpu_ms_per_op)
    )
