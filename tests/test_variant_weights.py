"""TSK310 and thirds (issue 20): weights summing to 1 or 100 within the scale's resolution, `1/3` forms,
and a hint whose own suggestion compiles."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tusklang.compiler import compile_files
from tusklang.diagnostics import TuskError


def _compile(tmp_path: Path, variants: str) -> dict[str, Any]:
    path = tmp_path / "p.tsk"
    path.write_text(
        "feature_flags = {\n flags = {\n  f = {\n   rollout_percentage = 100\n   fallback = \"a\"\n"
        f"   a_b_testing = {{ variants = {{ {variants} }} }}\n  }}\n }}\n}}\n",
        encoding="utf-8",
    )
    return compile_files([str(path)], static=True, verify=True).snapshot


def _weights(snapshot: dict[str, Any]) -> dict[str, int]:
    return dict(map(tuple, snapshot["flags"]["f"]["rules"][-1]["split"]["weights"]))


def _tsk310(tmp_path: Path, variants: str) -> Any:
    with pytest.raises(TuskError) as info:
        _compile(tmp_path, variants)
    found = [d for d in info.value.diagnostics if d.code == "TSK310"]
    assert found, [d.code for d in info.value.diagnostics]
    return found[0]


@pytest.mark.parametrize(
    "variants",
    ["a = 1/3, b = 1/3, c = 1/3", "a = 0.33333, b = 0.33333, c = 0.33333", "a = 33.333, b = 33.333, c = 33.333",
     "a = { weight = 1/3 }, b = { weight = 1/3 }, c = { weight = 1/3 }"],
)
def test_thirds_compile_to_an_even_split_summing_to_the_scale(tmp_path: Path, variants: str) -> None:
    weights = _weights(_compile(tmp_path, variants))
    assert sum(weights.values()) == 100_000
    assert sorted(weights.values()) == [33_333, 33_333, 33_334]


def test_a_sum_off_by_more_than_the_resolution_is_tsk310_and_its_hint_compiles(tmp_path: Path) -> None:
    diagnostic = _tsk310(tmp_path, "a = 0.3333, b = 0.3333, c = 0.3333")
    assert "sum to 0.9999" in diagnostic.message
    assert diagnostic.hint == "e.g. a = 1/3, b = 1/3, c = 1/3"
    # the hint, pasted back, is accepted (it used to suggest 0.3333 x 3, which is this very error)
    suggestion = re.sub(r"^e\.g\. ", "", diagnostic.hint)
    assert sum(_weights(_compile(tmp_path, suggestion)).values()) == 100_000


@pytest.mark.parametrize(
    ("variants", "hint"),
    [("a = 40, b = 30", "e.g. a = 0.5, b = 0.5"), ("a = 0.5, b = 0.4", "e.g. a = 0.5, b = 0.5"),
     ("a = 1, b = 1, c = 1, d = 1, e = 1, f = 1, g = 1", "e.g. " + ", ".join(f"{n} = 1/7" for n in "abcdefg")),
     ("a = 0.2, b = 0.2, c = 0.2, d = 0.2", "e.g. a = 0.25, b = 0.25, c = 0.25, d = 0.25")],
)
def test_every_hint_is_itself_a_valid_split(tmp_path: Path, variants: str, hint: str) -> None:
    diagnostic = _tsk310(tmp_path, variants)
    assert diagnostic.hint == hint
    assert sum(_weights(_compile(tmp_path, hint.removeprefix("e.g. "))).values()) == 100_000
