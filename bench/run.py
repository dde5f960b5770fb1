"""One benchmark run: the servers up, every scenario per mode, the tables out, all down."""

from __future__ import annotations

import signal
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import results_file
from bench.machine import describe
from bench.measurements import ModeResult
from bench.plan import ModeName, Plan
from bench.processes import BenchError, Supervisor, raise_fd_limit
from bench.report import mode_section
from bench.scenarios import Context, plain, pressure, startup, streams
from bench.stack import Gateway, Mock, embedded, scale_out, start_mock
from bench.targets import BOUNDS
from bench.wrk import Wrk, ensure_wrk

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
RESULTS_MD = BENCH_DIR / "RESULTS.md"


async def run(plan: Plan, *, command: str, update_results_md: bool) -> list[ModeResult]:
    fd_limit = raise_fd_limit()
    wrk_binary = ensure_wrk()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = RESULTS_DIR / f"run-{stamp}"
    workdir.mkdir(parents=True)
    wrk = Wrk(wrk_binary, workdir)
    machine = [*describe(wrk_binary), ("open-file limit", str(fd_limit))]
    started = time.monotonic()
    supervisor = Supervisor()
    results: list[ModeResult] = []
    try:
        mock = await start_mock(supervisor, workdir)
        for mode in plan.modes:
            results.append(await run_mode(mode, plan, supervisor, workdir, wrk, mock))
            print("\n" + mode_section(results[-1]), flush=True)
        if plan.with_litellm:
            results.append(await run_litellm(supervisor, workdir, wrk, mock, plan))
            print("\n" + mode_section(results[-1]), flush=True)
    finally:
        supervisor.close()
    elapsed = time.monotonic() - started
    text = results_file.generated(
        results, machine=machine, command=command, plan=plan, when=stamp, elapsed_s=elapsed
    )
    (workdir / "results.md").write_text(text)
    if update_results_md:
        results_file.update(RESULTS_MD, text)
        print(f"\nbench: wrote {RESULTS_MD.relative_to(BENCH_DIR.parent)}")
    print(f"bench: raw output in {workdir.relative_to(BENCH_DIR.parent)} ({elapsed:.0f} s)")
    return results


async def run_mode(
    mode: ModeName, plan: Plan, supervisor: Supervisor, workdir: Path, wrk: Wrk, mock: Mock
) -> ModeResult:
    result = ModeResult(mode)
    print(f"bench [{mode}] starting the gateway", flush=True)
    gateway: Gateway = (embedded if mode == "embedded" else scale_out)(
        supervisor, workdir, mock.url
    )
    gateway.command = plan.gateway_command
    gateway.create_key()
    first_start = await gateway.start()
    ctx = Context(plan, BOUNDS[mode], wrk, mock, gateway, result, workdir)
    every: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("chat", lambda: plain.request_response(ctx)),
        ("ttfb", lambda: streams.first_byte(ctx)),
        ("long-stream", lambda: streams.long_stream(ctx)),
        ("soak", lambda: pressure.soak(ctx)),
        ("held", lambda: streams.held_open(ctx)),
        ("flood", lambda: pressure.bad_key_flood_cost(ctx)),
        ("profile", lambda: plain.profile(ctx)),
        ("start", lambda: startup.start_to_healthy(ctx, first_start)),
        ("info-log", lambda: plain.info_logging_cost(ctx)),
    ]
    if plan.only:  # named explicitly: run even if the plan would skip it
        wanted = set(plan.only)
    else:
        wanted = {name for name, _ in every}
        if not plan.profile:
            wanted.discard("profile")
        if not plan.info_log_check or mode != "embedded":
            wanted.discard("info-log")
    steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("warm-up", lambda: plain.warm_up(ctx))
    ]
    steps += [(name, step) for name, step in every if name in wanted]
    try:
        for name, step in steps:
            try:
                waited = await ctx.quiesce(plan.quiesce_s)
                if waited > 5:
                    waited_for = f"waited {waited:.0f} s for the gateway and machine to idle"
                    result.fact(f"before {name}", waited_for)
                await step()
            except (BenchError, OSError, ValueError, KeyError) as exc:
                # One broken scenario must not cost the others; a dead gateway ends the mode.
                (workdir / f"error-{mode}-{name.replace(' ', '-')}.txt").write_text(
                    traceback.format_exc()
                )
                ctx.say(f"{name} FAILED: {type(exc).__name__}: {exc}")
                result.fact(f"{name} failed", f"{type(exc).__name__}: {str(exc)[:300]}")
                for child in (gateway.child, mock.child):
                    if child is not None and not child.running():
                        raise BenchError(
                            f"{child.name} exited during {name} "
                            f"({describe_exit(child.process.returncode)})"
                        ) from exc
    finally:
        gateway.stop()
    return result


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}, not by the harness"
    return f"exit code {code}"


async def run_litellm(
    supervisor: Supervisor, workdir: Path, wrk: Wrk, mock: Mock, plan: Plan
) -> ModeResult:
    from bench import litellm

    print("bench [litellm] starting LiteLLM's proxy", flush=True)
    try:
        return await litellm.measure(supervisor, workdir, wrk, mock, plan.phase_s)
    except (BenchError, OSError) as exc:
        result = ModeResult("LiteLLM proxy")
        result.fact("not measured", f"{type(exc).__name__}: {str(exc)[:500]}")
        return result
