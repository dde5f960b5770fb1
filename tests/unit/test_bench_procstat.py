"""Reading CPU time and RSS from /proc (benchmark harness)."""

from __future__ import annotations

import os

import pytest
from bench.procstat import (
    machine_busy_seconds,
    parse_busy_seconds,
    parse_cpu_seconds,
    parse_rss_bytes,
    sample,
    thread_cpu_seconds,
)


def test_cpu_seconds_counts_fields_after_the_last_parenthesis() -> None:
    # A process name may hold spaces and parentheses.
    line = "42 (we(ird) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1 2 3"
    assert parse_cpu_seconds(line, ticks_per_s=100) == pytest.approx(3.0)


def test_rss_bytes_from_status() -> None:
    assert parse_rss_bytes("Name:\tx\nVmRSS:\t  2048 kB\nThreads: 1\n") == 2048 * 1024
    with pytest.raises(ValueError):
        parse_rss_bytes("Name:\tzombie\n")


def test_sample_of_this_process() -> None:
    now = sample(os.getpid())
    assert now.cpu_s > 0
    assert now.rss_mb > 1
    assert now.fds >= 3


def test_thread_cpu_splits_the_main_thread_from_the_others() -> None:
    import threading

    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(1000))

    worker = threading.Thread(target=spin)
    worker.start()
    try:
        stop.wait(0.3)
        main, other = thread_cpu_seconds(os.getpid())
    finally:
        stop.set()
        worker.join()
    assert main > 0
    assert other > 0


def test_busy_seconds_leave_out_idle_and_iowait() -> None:
    text = "cpu  100 20 30 5000 70 4 6 2 0 0\ncpu0 50 10 15 2500 35 2 3 1 0 0\n"
    # user + nice + system + irq + softirq + steal = 100 + 20 + 30 + 4 + 6 + 2
    assert parse_busy_seconds(text, ticks_per_s=100) == pytest.approx(1.62)
    with pytest.raises(ValueError):
        parse_busy_seconds("intr 1 2 3\n")
    assert machine_busy_seconds() > 0
