"""Tables for the terminal and for ``RESULTS.md`` (pure: strings in, strings out)."""

from __future__ import annotations

from collections.abc import Sequence

from bench.measurements import Check, Figures, ModeResult, Row

DASH = "–"


def number(value: float | None, digits: int = 2) -> str:
    """A figure for a table: ``–`` when absent, thousands separated from 1,000 up."""
    if value is None:
        return DASH
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def signed(value: float | None, digits: int = 2) -> str:
    if value is None:
        return DASH
    return ("+" if value >= 0 else "") + number(value, digits)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub table whose columns are padded, so it also reads well in a terminal.
    The first column is left-aligned, the others right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells, expected {len(headers)}: {row!r}")
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        ("-" * (w + 1) + ":") if i else (":" + "-" * (w + 1)) for i, w in enumerate(widths)
    )
    return "\n".join([line(headers), rule + "|", *(line(r) for r in rows)])


ROW_HEADERS = (
    "scenario",
    "unit",
    "direct rate",
    "gw rate",
    "gw/direct",
    "direct p50 ms",
    "gw p50 ms",
    "added p50",
    "direct p99 ms",
    "gw p99 ms",
    "added p99",
    "gw CPU ms/op",
    "gw RSS MB",
    "errors",
)


def _rate(figures: Figures | None) -> str:
    return number(figures.rate if figures else None, 1)


def row_cells(row: Row) -> list[str]:
    gw, direct = row.gateway, row.direct
    errors = gw.errors + (direct.errors if direct else 0)
    return [
        row.scenario,
        row.unit,
        _rate(direct),
        _rate(gw),
        number(row.ratio, 3),
        number(direct.p50_ms if direct else None, 3),
        number(gw.p50_ms, 3),
        signed(row.added_p50_ms, 3),
        number(direct.p99_ms if direct else None, 3),
        number(gw.p99_ms, 3),
        signed(row.added_p99_ms, 3),
        number(gw.cpu_ms_per_op, 3),
        number(gw.rss_mb, 1),
        str(errors),
    ]


def rows_table(rows: Sequence[Row]) -> str:
    return markdown_table(ROW_HEADERS, [row_cells(r) for r in rows])


def verdict(check: Check) -> str:
    passed = check.passed
    return "not run" if passed is None else ("PASS" if passed else "FAIL")


def checks_table(checks: Sequence[Check]) -> str:
    return markdown_table(
        ("#", "target", "figure", "bound", "result"),
        [
            [
                c.target,
                c.what,
                f"{number(c.figure, 3)} {c.unit}".strip(),
                f"{'≤' if c.kind == 'max' else '≥'} {number(c.bound, 3)} {c.unit}".strip(),
                verdict(c),
            ]
            for c in checks
        ],
    )


def facts_table(facts: Sequence[tuple[str, str]]) -> str:
    return markdown_table(("measurement", "value"), [[k, v] for k, v in facts])


def mode_section(result: ModeResult, level: int = 3) -> str:
    """One mode's tables: direct vs gateway, the targets, then the other measurements."""
    hashes = "#" * level
    parts = [f"{hashes} {result.mode}", "", rows_table(result.rows), ""]
    if result.checks:
        parts += [checks_table(result.checks), ""]
    if result.facts:
        parts += [facts_table(result.facts), ""]
    return "\n".join(parts)
