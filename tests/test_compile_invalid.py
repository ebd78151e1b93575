"""Every invalid config in fixtures/compile/invalid fails with exactly the diagnostics in its .txt."""

from __future__ import annotations

from pathlib import Path

import pytest

from tusklang.compiler import compile_files
from tusklang.diagnostics import TuskError

INVALID = Path(__file__).resolve().parent.parent / "fixtures" / "compile" / "invalid"
CASES = sorted(p.stem for p in INVALID.glob("*.tsk"))


def test_there_are_at_least_forty_cases() -> None:
    assert len(CASES) >= 40
    assert all((INVALID / f"{name}.txt").exists() for name in CASES)


@pytest.mark.parametrize("name", CASES)
def test_invalid_config(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(INVALID)  # diagnostics name the file as given: `<name>.tsk`
    with pytest.raises(TuskError) as info:
        compile_files([f"{name}.tsk"], static=True)
    rendered = "\n\n".join(d.render() for d in info.value.diagnostics if d.is_error) + "\n"
    assert rendered == (INVALID / f"{name}.txt").read_text(encoding="utf-8")
