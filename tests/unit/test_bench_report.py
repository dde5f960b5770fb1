"""Tables and target verdicts of the benchmark harness."""

from __future__ import annotations

import pytest
from bench.measurements import Check, Figures, ModeResult, Row
from bench.report import checks_table, markdown_table, mode_section, number, row_cells, signed


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [
        (None, 2, "–"),
        (0.1234, 3, "0.123"),
        (12.345, 1, "12.3"),
        (123.4, 3, "123"),
        (5903.7, 1, "5,904"),
        (-1500.0, 2, "-1,500"),
    ],
)
def test_number(value: float | None, digits: int, expected: str) -> None:
    assert number(value, digits) == expected


def test_signed_marks_positive_figures() -> None:
    assert signed(0.25) == "+0.25"
    assert signed(-0.25) == "-0.25"
    assert signed(None) == "–"


def test_markdown_table_pads_columns_and_aligns_figures_right() -> None:
    table = markdown_table(("name", "value"), [["a", "1"], ["longer", "12345"]])
    assert table.splitlines() == [
        "| name   | value |",
        "|:-------|------:|",
        "| a      |     1 |",
        "| longer | 12345 |",
    ]


def test_markdown_table_refuses_ragged_rows() -> None:
    with pytest.raises(ValueError, match="2 cells"):
        markdown_table(("a", "b", "c"), [["1", "2"]])


def test_row_derives_ratio_and_added_latency_from_the_direct_call() -> None:
    row = Row(
        "/api/chat c=1",
        "req/s",
        Figures(rate=5000, p50_ms=0.15, p99_ms=0.5),
        Figures(rate=2500, p50_ms=0.4, p99_ms=1.5, errors=2, cpu_ms_per_op=0.3, rss_mb=100),
    )
    assert row.ratio == pytest.approx(0.5)
    assert row.added_p50_ms == pytest.approx(0.25)
    assert row.added_p99_ms == pytest.approx(1.0)
    cells = row_cells(row)
    assert cells[:5] == ["/api/chat c=1", "req/s", "5,000", "2,500", "0.500"]
    assert cells[7] == "+0.250"
    assert cells[-1] == "2"


def test_row_without_direct_figures_has_no_ratio() -> None:
    row = Row("flood", "req/s", None, Figures(rate=100))
    assert row.ratio is None
    assert row.added_p50_ms is None


@pytest.mark.parametrize(
    ("figure", "kind", "passed"),
    [
        (0.4, "max", True),
        (0.5, "max", True),
        (0.6, "max", False),
        (3500.0, "min", True),
        (2999.0, "min", False),
        (None, "max", None),
    ],
)
def test_check_verdicts(figure: float | None, kind: str, passed: bool | None) -> None:
    bound = 0.5 if kind == "max" else 3000.0
    check = Check("1", "x", figure, bound, "ms", kind)  # type: ignore[arg-type]
    assert check.passed is passed


def test_checks_table_shows_figure_bound_and_verdict() -> None:
    table = checks_table(
        [
            Check("1", "added p50", 0.3, 0.5, "ms", "max"),
            Check("2", "req/s", 2000, 3000, "req/s", "min"),
            Check("6", "soak", None, 5, "%", "max"),
        ]
    )
    lines = table.splitlines()
    assert "0.300 ms" in lines[2] and "≤ 0.500 ms" in lines[2] and "PASS" in lines[2]
    assert "≥ 3,000 req/s" in lines[3] and "FAIL" in lines[3]
    assert "not run" in lines[4]


def test_mode_section_has_a_heading_and_every_table() -> None:
    result = ModeResult("embedded")
    result.rows.append(Row("r", "req/s", None, Figures(rate=1)))
    result.checks.append(Check("7", "start", 1.0, 2.0, "s", "max"))
    result.fact("start to healthy", "1.00 s")
    text = mode_section(result)
    assert text.startswith("### embedded\n")
    assert "| r " in text and "PASS" in text and "start to healthy" in text
