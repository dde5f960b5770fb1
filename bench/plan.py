"""How long and how hard each scenario runs: the full run, or ``--quick`` for a smoke run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ModeName = Literal["embedded", "scale-out"]


@dataclass(frozen=True, slots=True)
class Plan:
    modes: tuple[ModeName, ...] = ("embedded", "scale-out")
    phase_s: float = 10.0  # each wrk phase
    ttfb_count: int = 300
    chunk_count: int = 1000  # chunks of the long stream
    chunk_streams: int = 100  # per side, ~6 ms each; 10, then 30, left the ratio to a few
    hold_count: int = 2000
    hold_chunks: int = 30
    hold_chunk_delay_s: float = 0.5
    flood_rate: float = 300.0
    flood_s: float = 60.0
    soak_s: float = 600.0  # target 6: ten minutes
    soak_warmup_s: float = 60.0
    starts: int = 3
    quiesce_s: float = 60.0  # longest wait for the gateway and machine to idle in between
    profile: bool = True
    info_log_check: bool = True
    with_litellm: bool = False
    gateway_command: tuple[str, ...] = ()
    only: tuple[str, ...] = ()  # scenario names (bench.__main__.SCENARIOS); empty: all

    @classmethod
    def quick(cls) -> Plan:
        """A smoke run of every scenario, in well under two minutes."""
        return cls(
            phase_s=2.0,
            ttfb_count=50,
            chunk_streams=3,
            hold_count=200,
            hold_chunks=10,
            hold_chunk_delay_s=0.4,
            flood_s=2.0,
            soak_s=6.0,
            soak_warmup_s=2.0,
            starts=1,
            quiesce_s=5.0,
            profile=False,
            info_log_check=False,
        )
