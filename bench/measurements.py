"""What one run measured: rows of direct-vs-gateway figures, target checks, extra facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class Figures:
    """One side of a comparison. ``rate`` is in the row's unit (req/s, chunks/s, ...)."""

    rate: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    cpu_ms_per_op: float | None = None
    rss_mb: float | None = None


@dataclass(frozen=True, slots=True)
class Row:
    """A scenario measured directly against the mock and through a proxy in the same run."""

    scenario: str
    unit: str
    direct: Figures | None
    gateway: Figures

    @property
    def ratio(self) -> float | None:
        """Gateway rate over direct rate."""
        if self.direct is None or not self.direct.rate or self.gateway.rate is None:
            return None
        return self.gateway.rate / self.direct.rate

    @property
    def added_p50_ms(self) -> float | None:
        return _minus(self.gateway.p50_ms, self.direct.p50_ms if self.direct else None)

    @property
    def added_p99_ms(self) -> float | None:
        return _minus(self.gateway.p99_ms, self.direct.p99_ms if self.direct else None)


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


@dataclass(frozen=True, slots=True)
class Check:
    """One target of the issue: the measured ``figure`` against its ``bound``.

    ``kind`` ``"max"``: the figure must not exceed the bound; ``"min"``: not fall below it.
    A figure of ``None`` means the scenario did not run (neither pass nor fail).
    """

    target: str
    what: str
    figure: float | None
    bound: float
    unit: str
    kind: Literal["max", "min"]

    @property
    def passed(self) -> bool | None:
        if self.figure is None:
            return None
        return self.figure <= self.bound if self.kind == "max" else self.figure >= self.bound


@dataclass
class ModeResult:
    """Everything measured for one gateway mode (``embedded``, ``scale-out``) or a proxy."""

    mode: str
    rows: list[Row] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    profile: str | None = None

    def fact(self, name: str, value: str) -> None:
        self.facts.append((name, value))
