"""Every process the benchmark starts, and the guarantee that it ends with the benchmark.

Servers run in sessions of their own (a Ctrl-C in the terminal reaches only the harness,
which then stops them in order) and, where util-linux ``setpriv`` exists, with a
parent-death signal, so even a harness killed with SIGKILL takes them along.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

STOP_TIMEOUT_S = 10.0


class BenchError(RuntimeError):
    """The benchmark cannot go on; the message says why and what to do."""


def _pdeathsig_prefix(sig: signal.Signals) -> list[str]:
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", sig.name] if setpriv else []


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    stop_signal: signal.Signals

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class Supervisor:
    """Starts servers and stops all of them, newest first, on ``close``.

    ``on_close`` registers other cleanups (the PostgreSQL and Redis fixtures) to run in
    the same order.
    """

    def __init__(self) -> None:
        self._cleanups: list[Callable[[], None]] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> Child:
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [*_pdeathsig_prefix(signal.SIGKILL), *argv],
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(name, process, log_path, stop_signal)
        self._cleanups.append(lambda: stop(child))
        return child

    def on_close(self, cleanup: Callable[[], None]) -> None:
        self._cleanups.append(cleanup)

    def close(self) -> None:
        while self._cleanups:
            cleanup = self._cleanups.pop()
            try:
                cleanup()
            except Exception as exc:  # one failed cleanup must not leak the others
                print(f"bench: cleanup failed: {type(exc).__name__}: {exc}")


def stop(child: Child, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop one child by its pid (its stop signal, then SIGKILL after ``timeout``)."""
    if not child.running():
        return
    child.process.send_signal(child.stop_signal)
    try:
        child.process.wait(timeout)
    except subprocess.TimeoutExpired:
        child.process.kill()
        child.process.wait()


@dataclass(frozen=True, slots=True)
class ToolOutput:
    returncode: int
    stdout: str
    stderr: str


async def run_tool(argv: Sequence[str], *, timeout: float, cwd: Path | None = None) -> ToolOutput:
    """Run a short-lived tool (wrk, py-spy) to completion; it is killed if it outlives
    ``timeout`` or if the caller is cancelled."""
    process = await asyncio.create_subprocess_exec(
        *_pdeathsig_prefix(signal.SIGKILL),
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return ToolOutput(
        process.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    )


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it);
    return the new soft limit. 2,000 held streams need ~4,000 fds in the gateway."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def venv_bin(name: str) -> str:
    """A console script of the interpreter running the harness (the project's venv)."""
    import sys

    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise BenchError(f"{name!r} not found next to {sys.executable}; run `make setup`")
    return found


def child_env(**values: str) -> dict[str, str]:
    """The harness's environment without any gateway setting it might carry, plus
    ``values``: the settings each child gets are exactly the ones the harness chose."""
    from neuronetz_gateway.settings import Settings

    ours = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in ours}
    env.update(values)
    return env
