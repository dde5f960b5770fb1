"""Where the gateway's CPU goes: py-spy samples taken under load, folded per function."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.processes import BenchError, run_tool, venv_bin
from bench.report import markdown_table

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
_PREFIXES = ("site-packages/", "src/", "lib/python3.11/", "lib/python3.12/", "lib/python3.13/")


def frame_name(frame: str) -> str:
    """``"Foo.bar (/x/site-packages/pkg/mod.py:12)"`` → ``"pkg/mod.py:Foo.bar"``."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for prefix in _PREFIXES:
        if prefix in path:
            path = path.rsplit(prefix, 1)[1]
            break
    return f"{path}:{match['func']}"


def parse_collapsed(lines: Iterable[str], idle: Iterable[str] = ()) -> list[tuple[list[str], int]]:
    """py-spy's ``raw`` output: ``frame;frame;... COUNT`` per line, root first. Stacks
    whose innermost frame ends with one of ``idle`` (``"path.py:LINE)"``) are dropped."""
    idle_suffixes = tuple(idle)
    stacks = []
    for line in lines:
        line = line.rstrip()
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if idle_suffixes and frames[-1].endswith(idle_suffixes):
            continue
        stacks.append(([frame_name(f) for f in frames], int(count)))
    return stacks


# Worker threads parked on a queue look busy to a non-blocking sampler: the wait is a C
# call inside a Python frame. Their lines are looked up in the installed sources.
_PARKED = (
    ("aiosqlite.core", "tx.get()"),
    ("concurrent.futures.thread", "work_queue.get(block=True)"),
)


def parked_frames() -> list[str]:
    """``"path.py:LINE)"`` suffixes of the frames where worker threads wait for work."""
    import importlib.util

    suffixes = []
    for module, needle in _PARKED:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            continue
        path = Path(spec.origin)
        for number, text in enumerate(path.read_text().splitlines(), start=1):
            if needle in text and not text.lstrip().startswith("#"):
                suffixes.append(f"{path.parent.name}/{path.name}:{number})")
    return suffixes


@dataclass(frozen=True, slots=True)
class Profile:
    samples: int
    self_counts: Counter[str]
    total_counts: Counter[str]

    @classmethod
    def of(cls, stacks: list[tuple[list[str], int]], exclude_idle: bool = True) -> Profile:
        self_counts: Counter[str] = Counter()
        total_counts: Counter[str] = Counter()
        samples = 0
        for frames, count in stacks:
            if not frames or (exclude_idle and _idle(frames[-1])):
                continue
            samples += count
            self_counts[frames[-1]] += count
            for name in set(frames):
                total_counts[name] += count
        return cls(samples, self_counts, total_counts)

    def by_package(self) -> Counter[str]:
        """Self samples per top-level package (``aiohttp``, ``neuronetz_gateway``, ``asyncio``)."""
        packages: Counter[str] = Counter()
        for name, count in self.self_counts.items():
            packages[package_of(name)] += count
        return packages

    def report(self, cpu_ms_per_request: float | None, top: int = 15) -> str:
        """Three tables: self time per package, the costliest functions themselves, and
        the gateway's own functions with their callees."""

        def cells(name: str, count: int) -> list[str]:
            share = count / self.samples if self.samples else 0.0
            cost = "–" if cpu_ms_per_request is None else f"{share * cpu_ms_per_request * 1000:.0f}"
            return [name, f"{share * 100:.1f}%", cost]

        headers = ("share of busy samples", "share", "µs/req")
        own = Counter(
            {n: c for n, c in self.total_counts.items() if n.startswith(OWN) and "/cli/" not in n}
        )
        sections = [
            ("self time by package", self.by_package()),
            ("functions, self time", self.self_counts),
            ("the gateway's functions, with callees", own),
        ]
        parts = []
        for title, counts in sections:
            rows = [cells(n, c) for n, c in counts.most_common(top)]
            parts.append(markdown_table((title, *headers[1:]), rows))
        return "\n\n".join(parts)


OWN = "neuronetz_gateway/"


def package_of(name: str) -> str:
    path = name.split(":", 1)[0]
    head = path.split("/", 1)[0]
    return head.removesuffix(".py")


def _idle(leaf: str) -> bool:
    # An event loop waiting in epoll is idle, not cost.
    return leaf.endswith((":select", ":poll", ":_run_once")) and "selectors" in leaf


async def record(pid: int, seconds: float, output: Path, rate: int = 250) -> Profile:
    """Sample ``pid`` for ``seconds`` with py-spy (``pip install py-spy`` into the venv)."""
    try:
        binary = venv_bin("py-spy")
    except BenchError:
        raise BenchError("py-spy is not installed: .venv/bin/pip install py-spy") from None
    result = await run_tool(
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(output),
        ],
        timeout=seconds + 60,
    )
    if result.returncode != 0 or not output.exists():
        raise BenchError(f"py-spy failed ({result.returncode}): {result.stderr[-800:]}")
    return Profile.of(parse_collapsed(output.read_text().splitlines(), parked_frames()))
