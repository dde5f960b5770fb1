"""RESULTS.md keeps people's notes around the generated block (benchmark harness)."""

from __future__ import annotations

from pathlib import Path

from bench.results_file import BEGIN, END, update


def test_update_creates_the_file_with_markers(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    update(path, "table one\n")
    text = path.read_text()
    assert text.startswith("# Benchmark results\n")
    assert f"{BEGIN}\ntable one\n{END}\n" in text


def test_update_replaces_only_the_generated_block(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text(f"# Notes\n\nbefore\n\n{BEGIN}\nold\n{END}\n\nafter: findings\n")
    update(path, "new\n")
    assert path.read_text() == f"# Notes\n\nbefore\n\n{BEGIN}\nnew\n{END}\n\nafter: findings\n"


def test_update_appends_the_block_when_markers_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text("# Notes\n")
    update(path, "new\n")
    assert path.read_text() == f"# Notes\n\n{BEGIN}\nnew\n{END}\n"
