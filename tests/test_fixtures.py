"""Data-driven parser tests: adding a case is adding a file under fixtures/valid or fixtures/invalid
(or fixtures/syntax/valid and fixtures/syntax/invalid, the constructs the TuskLang SDKs' own files use)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .fixture_cases import display_path, invalid_cases, invalid_output, syntax_cases, valid_cases, valid_output

# The constructs of issue 15 (docs/syntax.md): each has valid fixtures `<prefix>_*.tsk` under
# fixtures/syntax/valid and invalid ones under fixtures/syntax/invalid.
CONSTRUCTS = (
    "semicolon",  # `;` ending a member
    "indent",  # indentation blocks
    "dash",  # `- item` lists
    "member",  # member access and method chains
    "reference",  # bare names of earlier keys
    "arithmetic",  # - * / % and ranges
    "foreign",  # plain calls: foreign code, and directive names called without `@`
    "array",  # items separated by line breaks
    "key_array_words",  # `key [ ... ]` and words as items
    "template",  # backtick templates
    "directive_dotted",  # dotted directive names with calls
    "statement",  # a value alone on its line
)


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


@pytest.mark.parametrize("construct", CONSTRUCTS)
def test_every_construct_has_valid_and_invalid_fixtures(construct: str) -> None:
    for kind in ("valid", "invalid"):
        assert any(path.name.startswith(construct) for path in syntax_cases(kind)), (construct, kind)
