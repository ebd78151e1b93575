"""Data-driven parser tests: adding a case is adding a file under fixtures/valid or fixtures/invalid."""

from __future__ import annotations

from pathlib import Path

import pytest

from .fixture_cases import display_path, invalid_cases, invalid_output, valid_cases, valid_output


@pytest.mark.parametrize("path", valid_cases(), ids=display_path)
def test_valid_fixture_parses_to_golden_json(path: Path) -> None:
    golden = path.with_suffix(".json")
    assert golden.exists(), f"no golden file for {path}: run python -m tests.fixture_cases and check it by hand"
    assert valid_output(path) == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", invalid_cases(), ids=display_path)
def test_invalid_fixture_gives_golden_diagnostics(path: Path) -> None:
    golden = path.with_suffix(".txt")
    assert golden.exists(), f"no golden file for {path}: run python -m tests.fixture_cases and check it by hand"
    output = invalid_output(path)
    assert output.strip(), f"{path} produced no diagnostic"
    assert output == golden.read_text(encoding="utf-8")


def test_fixture_counts_meet_the_floor() -> None:
    assert len(valid_cases()) >= 60
    assert len(invalid_cases()) >= 40
