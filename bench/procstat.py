"""CPU time, RSS and open file descriptors of a process, read from ``/proc``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcSample:
    cpu_s: float
    rss_bytes: int
    fds: int

    @property
    def rss_mb(self) -> float:
        return self.rss_bytes / 2**20


def parse_cpu_seconds(stat_line: str, ticks_per_s: int = _TICKS_PER_S) -> float:
    """User + system time from a ``/proc/PID/stat`` line (the name may hold spaces and
    parentheses, so fields are counted after the last ``)``)."""
    fields = stat_line[stat_line.rindex(")") + 2 :].split()
    # After the name: state(0) ... utime(11) stime(12), i.e. fields 14 and 15 of proc(5).
    return (int(fields[11]) + int(fields[12])) / ticks_per_s


def parse_rss_bytes(status_text: str) -> int:
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError("no VmRSS line (a zombie process?)")


def sample(pid: int) -> ProcSample:
    base = Path("/proc") / str(pid)
    return ProcSample(
        cpu_s=parse_cpu_seconds((base / "stat").read_text()),
        rss_bytes=parse_rss_bytes((base / "status").read_text()),
        fds=len(os.listdir(base / "fd")),
    )


def thread_cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds of the process's main thread (its event loop) and of all its other
    threads together (database driver, worker pool), dead threads not included."""
    main = other = 0.0
    for task in (Path("/proc") / str(pid) / "task").iterdir():
        try:
            seconds = parse_cpu_seconds((task / "stat").read_text())
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
        if task.name == str(pid):
            main = seconds
        else:
            other += seconds
    return main, other


def parse_busy_seconds(proc_stat: str, ticks_per_s: int = _TICKS_PER_S) -> float:
    """CPU seconds all CPUs spent on anything but idling, from ``/proc/stat``'s ``cpu``
    line (user, nice, system, irq, softirq, steal; not idle or iowait)."""
    for line in proc_stat.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
            return (user + nice + system + irq + softirq + steal) / ticks_per_s
    raise ValueError("no cpu line in /proc/stat")


def machine_busy_seconds() -> float:
    return parse_busy_seconds(Path("/proc/stat").read_text())
