"""``python -m bench.ab --b-command CMD``: the stock gateway (A) against a variant (B),
both embedded, in the same run, interleaved round by round so that a busy machine
weighs on both alike. B is any command that serves like ``neuronetz-gateway serve``,
e.g. a script that patches one function and then calls the CLI's ``main(["serve"])``:
an experiment that needs no edit of ``src/``."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from bench.processes import BenchError, Supervisor, raise_fd_limit
from bench.procstat import sample
from bench.report import markdown_table, number
from bench.run import RESULTS_DIR
from bench.scenarios import NATIVE, OPENAI, chat_body
from bench.stack import Gateway, embedded, start_mock
from bench.stats import percentile
from bench.wrk import Wrk, ensure_wrk

Key = tuple[str, int, str]  # (path, connections, variant)


async def _phase(
    wrk: Wrk, gateway: Gateway, path: str, connections: int, seconds: float, name: str
) -> tuple[float, float, float, float]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {gateway.key}"}
    before = sample(gateway.pid)
    run = await wrk.run(
        gateway.url + path,
        body=chat_body(path, stream=False).decode(),
        headers=headers,
        connections=connections,
        duration_s=seconds,
        name=name,
    )
    cpu = (sample(gateway.pid).cpu_s - before.cpu_s) * 1000 / max(1, run.requests)
    if run.error_count:
        print(f"  {name}: {run.error_count} errors, first: {run.first_error}", flush=True)
    return run.ok_rps, run.p50_ms, run.p99_ms, cpu


async def compare(
    a_command: Sequence[str],
    b_command: Sequence[str],
    rounds: int,
    seconds: float,
    paths: Sequence[str],
    concurrency: Sequence[int],
) -> str:
    raise_fd_limit()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = RESULTS_DIR / f"ab-{stamp}"
    workdir.mkdir(parents=True)
    wrk = Wrk(ensure_wrk(), workdir)
    supervisor = Supervisor()
    figures: dict[Key, list[tuple[float, float, float, float]]] = {}
    try:
        mock = await start_mock(supervisor, workdir)
        variants = {}
        for label, command in (("A", a_command), ("B", b_command)):
            gateway = embedded(supervisor, workdir, mock.url, label=label)
            gateway.command = tuple(command)
            gateway.create_key()
            await gateway.start()
            variants[label] = gateway
        for gateway in variants.values():
            for path in paths:
                await _phase(wrk, gateway, path, 8, 1, f"warmup-{gateway.label}")
        for round_ in range(rounds):
            order = ("A", "B") if round_ % 2 == 0 else ("B", "A")
            for path in paths:
                for connections in concurrency:
                    for label in order:
                        name = f"r{round_}-{label}{path.replace('/', '-')}-c{connections}"
                        result = await _phase(
                            wrk, variants[label], path, connections, seconds, name
                        )
                        figures.setdefault((path, connections, label), []).append(result)
            print(f"bench.ab: round {round_ + 1}/{rounds} done", flush=True)
    finally:
        supervisor.close()
    rows = []
    for path in paths:
        for connections in concurrency:
            med = {
                label: [
                    percentile([f[i] for f in figures[(path, connections, label)]], 50)
                    for i in range(4)
                ]
                for label in ("A", "B")
            }
            a, b = med["A"], med["B"]
            rows.append(
                [
                    f"{path} c={connections}",
                    number(a[0], 1),
                    number(b[0], 1),
                    f"{(b[0] / a[0] - 1) * 100:+.1f}%" if a[0] else "–",
                    number(a[1], 3),
                    number(b[1], 3),
                    number(a[2], 3),
                    number(b[2], 3),
                    number(a[3], 3),
                    number(b[3], 3),
                    f"{(b[3] / a[3] - 1) * 100:+.1f}%" if a[3] else "–",
                ]
            )
    table = markdown_table(
        (
            "scenario (medians)",
            "A req/s",
            "B req/s",
            "Δ req/s",
            "A p50 ms",
            "B p50 ms",
            "A p99 ms",
            "B p99 ms",
            "A CPU ms/req",
            "B CPU ms/req",
            "Δ CPU",
        ),
        rows,
    )
    text = (
        f"A: `{shlex.join(a_command) or 'neuronetz-gateway serve'}`\n\n"
        f"B: `{shlex.join(b_command)}`\n\n"
        f"{rounds} rounds of {seconds:.0f} s, interleaved.\n\n{table}\n"
    )
    (workdir / "ab.md").write_text(text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("--b-command", required=True, help="serves the variant B")
    parser.add_argument(
        "--a-command", default="", help="serves A (default: neuronetz-gateway serve)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--phase-seconds", type=float, default=5.0)
    parser.add_argument("--openai", action="store_true", help="also /v1/chat/completions")
    parser.add_argument("--concurrency", default="1,32", help="comma-separated, default 1,32")
    args = parser.parse_args(argv)
    paths = (NATIVE, OPENAI) if args.openai else (NATIVE,)
    concurrency = tuple(int(c) for c in args.concurrency.split(","))
    try:
        import uvloop

        text = uvloop.run(
            compare(
                shlex.split(args.a_command),
                shlex.split(args.b_command),
                args.rounds,
                args.phase_seconds,
                paths,
                concurrency,
            )
        )
    except BenchError as exc:
        print(f"bench.ab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
