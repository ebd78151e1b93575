"""What a fixture's golden file holds; shared by the tests and by `python -m tests.fixture_cases --write`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def valid_cases() -> list[Path]:
    """fixtures/valid, then fixtures/syntax/valid (one or more per construct of issue 15)."""
    return sorted((FIXTURES / "valid").rglob("*.tsk")) + syntax_cases("valid")


def invalid_cases() -> list[Path]:
    return sorted((FIXTURES / "invalid").rglob("*.tsk")) + syntax_cases("invalid")


def syntax_cases(kind: str) -> list[Path]:
    return sorted((FIXTURES / "syntax" / kind).glob("*.tsk"))


def display_path(path: Path) -> str:
    return path.relative_to(FIXTURES).as_posix()


def valid_output(path: Path) -> str:
    import tusklang
    from tusklang.values import to_jsonable

    text = path.read_text(encoding="utf-8")
    data = tusklang.loads(text, display_path(path))
    return json.dumps(to_jsonable(data), indent=2, ensure_ascii=False) + "\n"


def invalid_output(path: Path) -> str:
    from tusklang.check import check_text
    from tusklang.diagnostics import render_all

    diagnostics = check_text(path.read_text(encoding="utf-8"), display_path(path))
    return render_all(diagnostics) + "\n"


def write_missing(overwrite: bool = False) -> None:
    """Write golden files that do not exist yet (each is then read and checked by hand)."""
    for path in valid_cases():
        golden = path.with_suffix(".json")
        if overwrite or not golden.exists():
            golden.write_text(valid_output(path), encoding="utf-8")
            print("wrote", golden)
    for path in invalid_cases():
        golden = path.with_suffix(".txt")
        if overwrite or not golden.exists():
            golden.write_text(invalid_output(path), encoding="utf-8")
            print("wrote", golden)


if __name__ == "__main__":
    write_missing(overwrite="--overwrite" in sys.argv)
