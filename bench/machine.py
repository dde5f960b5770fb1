"""What machine the figures come from (they mean little without it)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _command_line(argv: list[str], *, any_exit: bool = False) -> str:
    """The first line a command prints (``any_exit``: even when it exits non-zero, as
    ``wrk --version`` does)."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if result.returncode != 0 and not any_exit:
        return "unknown"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else ""


def describe(wrk: str) -> list[tuple[str, str]]:
    memory = memory_gib()
    load = os.getloadavg()
    commit = _command_line(["git", "rev-parse", "--short", "HEAD"])
    dirty = _command_line(["git", "status", "--porcelain", "--untracked-files=no", "src"])
    return [
        ("CPUs (nproc)", str(os.cpu_count())),
        ("CPU model", cpu_model()),
        ("memory", f"{memory:.1f} GiB" if memory else "unknown"),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("wrk", _command_line([wrk, "--version"], any_exit=True).split(" Copyright")[0]),
        ("load average at start", " ".join(f"{x:.2f}" for x in load)),
        (
            "gateway source",
            commit + (" + uncommitted changes in src/" if dirty not in ("", "unknown") else ""),
        ),
    ]
