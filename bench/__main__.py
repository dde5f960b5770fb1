"""``python -m bench [--quick] [--soak-seconds N] [--with-litellm] ...`` (``make bench``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import shlex
import signal
import sys
from collections.abc import Sequence

from bench.plan import ModeName, Plan
from bench.processes import BenchError

SCENARIOS = ("chat", "ttfb", "long-stream", "soak", "held", "flood", "profile", "start", "info-log")
MODES: dict[str, tuple[ModeName, ...]] = {
    "both": ("embedded", "scale-out"),
    "embedded": ("embedded",),
    "scale-out": ("scale-out",),
    "none": (),  # with --with-litellm: LiteLLM only
}


def parse_args(argv: Sequence[str] | None = None) -> tuple[Plan, bool]:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the gateway against the mock Ollama (everything on 127.0.0.1).",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run of every scenario (< 2 min)"
    )
    parser.add_argument("--modes", choices=sorted(MODES), default="both")
    parser.add_argument(
        "--soak-seconds",
        type=float,
        help="soak length after a 60-s warm-up (full: 600, the target)",
    )
    parser.add_argument("--phase-seconds", type=float, help="length of each wrk phase")
    parser.add_argument("--hold-streams", type=int, help="concurrent slow streams (full: 2000)")
    parser.add_argument(
        "--profile", action=argparse.BooleanOptionalAction, default=None, help="py-spy profile"
    )
    parser.add_argument("--with-litellm", action="store_true", help="add LiteLLM's proxy")
    parser.add_argument(
        "--only",
        help=f"comma-separated scenarios to run (of: {', '.join(SCENARIOS)}); default: all",
    )
    parser.add_argument(
        "--gateway-command",
        help="serve the gateway with this command instead of `neuronetz-gateway serve` "
        "(A/B experiments, e.g. a script that patches one function, then serves)",
    )
    parser.add_argument(
        "--write-results",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="update bench/RESULTS.md (default: on for full runs, off for --quick)",
    )
    args = parser.parse_args(argv)
    plan = Plan.quick() if args.quick else Plan()
    changes: dict[str, object] = {"modes": MODES[args.modes], "with_litellm": args.with_litellm}
    if args.soak_seconds is not None:
        changes["soak_s"] = args.soak_seconds
    if args.phase_seconds is not None:
        changes["phase_s"] = args.phase_seconds
    if args.hold_streams is not None:
        changes["hold_count"] = args.hold_streams
    if args.only:
        only = tuple(name.strip() for name in args.only.split(",") if name.strip())
        unknown = sorted(set(only) - set(SCENARIOS))
        if unknown:
            parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
        changes["only"] = only
    if args.gateway_command:
        changes["gateway_command"] = tuple(shlex.split(args.gateway_command))
    if args.profile is not None:
        changes["profile"] = args.profile
    plan = dataclasses.replace(plan, **changes)  # type: ignore[arg-type]  # keys are Plan fields
    write = args.write_results if args.write_results is not None else not args.quick
    return plan, write


def main(argv: Sequence[str] | None = None) -> int:
    plan, write = parse_args(argv)
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else list(argv))

    async def guarded() -> None:
        from bench.run import run

        task = asyncio.current_task()
        assert task is not None
        # SIGTERM cancels like Ctrl-C does, so every server is stopped on the way out.
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await run(plan, command=command.strip(), update_results_md=write)

    try:
        import uvloop

        uvloop.run(guarded())
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("bench: interrupted; every server was stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
