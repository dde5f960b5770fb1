"""Streams: added time to first byte, 1,000-chunk throughput (target 3), and 2,000 slow
streams held open at once (target 4)."""

from __future__ import annotations

import asyncio

from bench.client import hold_streams, stream_throughput, time_to_first_byte
from bench.measurements import Check, Figures, Row
from bench.procstat import sample
from bench.scenarios import NATIVE, OPENAI, Context, chat_body
from bench.stats import Latency


async def first_byte(ctx: Context) -> None:
    ctx.say(f"stream time to first byte, c=1, {ctx.plan.ttfb_count} requests")
    await ctx.mock.configure()
    count = ctx.plan.ttfb_count
    body = chat_body(NATIVE, stream=True)
    samples, errors = await time_to_first_byte(
        ctx.url(NATIVE, direct=True), body, ctx.headers(direct=True), count
    )
    direct = _latency_figures(samples, errors)
    for path in (NATIVE, OPENAI):
        before = sample(ctx.gateway.pid)
        samples, errors = await time_to_first_byte(
            ctx.url(path, direct=False),
            chat_body(path, stream=True),
            ctx.headers(direct=False),
            count,
        )
        after = sample(ctx.gateway.pid)
        gateway = _latency_figures(
            samples, errors, cpu_s=after.cpu_s - before.cpu_s, rss_mb=after.rss_mb
        )
        row = Row(f"stream TTFB {path} c=1", "ms", direct, gateway)
        ctx.result.rows.append(row)
        ctx.result.checks.append(
            Check(
                "3",
                f"added TTFB p50, {path} stream",
                row.added_p50_ms,
                ctx.bounds.ttfb_added_p50_ms,
                "ms",
                "max",
            )
        )


def _latency_figures(
    samples: list[float], errors: int, *, cpu_s: float | None = None, rss_mb: float | None = None
) -> Figures:
    latency = Latency.of_seconds(samples)
    total = len(samples) + errors
    return Figures(
        p50_ms=latency.p50_ms,
        p99_ms=latency.p99_ms,
        errors=errors,
        cpu_ms_per_op=cpu_s * 1000 / total if cpu_s is not None and total else None,
        rss_mb=rss_mb,
    )


async def long_stream(ctx: Context) -> None:
    chunks, count = ctx.plan.chunk_count, ctx.plan.chunk_streams
    ctx.say(f"{chunks}-chunk streams, c=1, {count} streams")
    await ctx.mock.configure(chunks=chunks)
    try:
        direct_run = await stream_throughput(
            ctx.url(NATIVE, direct=True),
            chat_body(NATIVE, stream=True),
            ctx.headers(direct=True),
            count,
        )
        direct = _stream_figures(direct_run.durations, chunks, direct_run.errors)
        direct_relay = _stream_figures(direct_run.relay_durations, chunks, direct_run.errors)
        for path in (NATIVE, OPENAI):
            before = sample(ctx.gateway.pid)
            run = await stream_throughput(
                ctx.url(path, direct=False),
                chat_body(path, stream=True),
                ctx.headers(direct=False),
                count,
            )
            after = sample(ctx.gateway.pid)
            gateway = _stream_figures(
                run.durations,
                chunks,
                run.errors,
                cpu_ms=(after.cpu_s - before.cpu_s) * 1000 / (chunks * count),
                rss_mb=after.rss_mb,
            )
            row = Row(f"{chunks}-chunk stream {path}", "chunks/s", direct, gateway)
            relay = Row(
                f"{chunks}-chunk stream {path}, after first byte",
                "chunks/s",
                direct_relay,
                _stream_figures(run.relay_durations, chunks, run.errors),
            )
            ctx.result.rows += [row, relay]
            if path == NATIVE:
                # The rate chunks pass at, from the first byte on: the time to first byte
                # has its own bound (above), and a 1,000-chunk stream of the mock lasts
                # only ~6 ms, so including it would make this a second TTFB check. The
                # whole-stream ratio (row above) is reported next to it.
                ctx.result.checks.append(
                    Check(
                        "3",
                        f"{chunks}-chunk stream after the first byte, gateway/direct",
                        relay.ratio,
                        ctx.bounds.chunk_ratio,
                        "",
                        "min",
                    )
                )
    finally:
        await ctx.mock.configure()


def _stream_figures(
    durations: list[float],
    chunks: int,
    errors: int,
    *,
    cpu_ms: float | None = None,
    rss_mb: float | None = None,
) -> Figures:
    if not durations:
        return Figures(errors=errors)
    latency = Latency.of_seconds(durations)
    return Figures(
        rate=chunks * len(durations) / sum(durations),
        p50_ms=latency.p50_ms,
        p99_ms=latency.p99_ms,
        errors=errors,
        cpu_ms_per_op=cpu_ms,
        rss_mb=rss_mb,
    )


async def held_open(ctx: Context) -> None:
    plan = ctx.plan
    count = plan.hold_count
    seconds = plan.hold_chunks * plan.hold_chunk_delay_s
    ctx.say(f"{count} concurrent slow streams, ~{seconds:.0f} s each")
    await ctx.mock.configure(chunks=plan.hold_chunks, chunk_delay_s=plan.hold_chunk_delay_s)
    body = chat_body(NATIVE, stream=True)
    try:
        direct = await hold_streams(
            ctx.url(NATIVE, direct=True), body, ctx.headers(direct=True), count
        )
        pid = ctx.gateway.pid
        idle = sample(pid)
        peak_rss = idle.rss_bytes
        peak_fds = idle.fds
        stop = asyncio.Event()

        async def watch() -> None:
            nonlocal peak_rss, peak_fds
            while not stop.is_set():
                now = sample(pid)
                peak_rss = max(peak_rss, now.rss_bytes)
                peak_fds = max(peak_fds, now.fds)
                await asyncio.sleep(0.2)

        watcher = asyncio.create_task(watch())
        try:
            gateway = await hold_streams(
                ctx.url(NATIVE, direct=False), body, ctx.headers(direct=False), count
            )
        finally:
            stop.set()
            await watcher
    finally:
        await ctx.mock.configure()
    never_all_open = 0 if gateway.peak_open == count else 1
    errors = gateway.error_count + never_all_open
    rss_mb = peak_rss / 2**20
    ctx.result.rows.append(
        Row(
            f"{count} held streams {NATIVE}",
            "completed",
            Figures(rate=direct.completed, errors=direct.error_count),
            Figures(rate=gateway.completed, errors=errors, rss_mb=rss_mb),
        )
    )
    ctx.result.checks.append(
        Check("4", f"errors, {count} held streams", errors, ctx.bounds.hold_errors, "", "max")
    )
    ctx.result.checks.append(
        Check(
            "4",
            f"gateway peak RSS, {count} held streams",
            rss_mb,
            ctx.bounds.hold_rss_mb,
            "MB",
            "max",
        )
    )
    ctx.result.fact(
        f"{count} held streams",
        f"gateway: {gateway.completed} completed, peak {gateway.peak_open} open at once "
        f"(all open {gateway.ramp_s:.1f} s after the first), errors {dict(gateway.errors) or 0}; "
        f"RSS {idle.rss_bytes / 2**20:.0f} → peak {rss_mb:.0f} MB, "
        f"fds {idle.fds} → peak {peak_fds}; "
        f"direct: {direct.completed} completed, peak {direct.peak_open} open, "
        f"errors {dict(direct.errors) or 0}",
    )
