"""The targets of issue 9, per gateway mode (bounds only; the scenarios measure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bounds:
    added_p50_c1_ms: float
    added_p99_c1_ms: float | None  # bound in embedded mode only
    rps_c32: float
    added_p99_c32_ms: float = 20.0
    ttfb_added_p50_ms: float = 1.0
    chunk_ratio: float = 0.90
    hold_errors: float = 0
    hold_rss_mb: float = 250.0
    flood_cost_pct: float = 10.0
    soak_rss_growth_pct: float = 5.0
    soak_fd_growth: float = 0
    start_s: float = 2.0


BOUNDS: dict[str, Bounds] = {
    "embedded": Bounds(added_p50_c1_ms=0.5, added_p99_c1_ms=2.0, rps_c32=3000),
    "scale-out": Bounds(added_p50_c1_ms=1.0, added_p99_c1_ms=None, rps_c32=2000),
}
