"""Folding py-spy samples per function and per package (benchmark harness)."""

from __future__ import annotations

import pytest
from bench.profiling import Profile, frame_name, package_of, parked_frames, parse_collapsed


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (
            "Edge.__call__ (/work/main/src/neuronetz_gateway/api/edge.py:116)",
            "neuronetz_gateway/api/edge.py:Edge.__call__",
        ),
        (
            "_request (/x/.venv/lib/python3.11/site-packages/aiohttp/client.py:12)",
            "aiohttp/client.py:_request",
        ),
        ("run (/usr/lib/python3.11/asyncio/runners.py:118)", "asyncio/runners.py:run"),
        ("<module> (neuronetz-gateway:6)", "neuronetz-gateway:<module>"),
        ("no location", "no location"),
    ],
)
def test_frame_name_drops_line_numbers_and_install_prefixes(frame: str, expected: str) -> None:
    assert frame_name(frame) == expected


def test_parse_collapsed_reads_stacks_root_first() -> None:
    stacks = parse_collapsed(
        [
            "main (a/app.py:1);work (a/app.py:5) 7",
            "",
            "garbage",
            "main (a/app.py:1) 3",
        ]
    )
    assert stacks == [(["a/app.py:main", "a/app.py:work"], 7), (["a/app.py:main"], 3)]


def test_profile_counts_self_and_inclusive_samples_once_per_stack() -> None:
    profile = Profile.of(
        [
            (["p/m.py:main", "p/m.py:f", "p/m.py:f"], 4),  # recursion counts once
            (["p/m.py:main", "q/n.py:g"], 6),
        ]
    )
    assert profile.samples == 10
    assert profile.self_counts == {"p/m.py:f": 4, "q/n.py:g": 6}
    assert profile.total_counts["p/m.py:main"] == 10
    assert profile.total_counts["p/m.py:f"] == 4
    assert profile.by_package() == {"p": 4, "q": 6}


def test_package_of() -> None:
    assert package_of("aiohttp/client.py:_request") == "aiohttp"
    assert package_of("contextlib.py:ExitStack.__init__") == "contextlib"


def test_report_estimates_cost_per_request_from_the_share() -> None:
    profile = Profile.of([(["neuronetz_gateway/x.py:f"], 1), (["other/y.py:g"], 3)])
    report = profile.report(cpu_ms_per_request=2.0)
    assert "| other/y.py:g " in report and "75.0%" in report and "1500" in report
    assert "neuronetz_gateway/x.py:f" in report.split("with callees")[1]


def test_parse_collapsed_drops_threads_parked_on_a_queue() -> None:
    worker = "run (threading.py:1);_connection_worker_thread (/x/site-packages/aiosqlite/core.py"
    stacks = parse_collapsed(
        [f"{worker}:59) 40", f"{worker}:63) 7"],
        idle=["aiosqlite/core.py:59)"],
    )
    assert stacks == [(["threading.py:run", "aiosqlite/core.py:_connection_worker_thread"], 7)]


def test_parked_frames_point_at_the_waiting_lines() -> None:
    frames = parked_frames()
    assert any(f.startswith("aiosqlite/core.py:") for f in frames)
    assert all(f.endswith(")") for f in frames)
