"""`tusk fmt`: one canonical layout, idempotent, data and comments unchanged."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tusklang
from tusklang.format import format_text
from tusklang.values import DirectiveCall, Expression

ROOT = Path(__file__).resolve().parent.parent
VALID = sorted((ROOT / "fixtures" / "valid").rglob("*.tsk")) + sorted(
    (ROOT / "fixtures" / "syntax" / "valid").glob("*.tsk")
)


def comparable(value: Any) -> Any:
    """Data with what formatting may legitimately change taken out: source locations, layout of
    an inert expression's text (its spaces and the parentheses precedence makes redundant)."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, DirectiveCall):
        args = None if value.args is None else tuple(comparable(a) for a in value.args)
        return ("directive", value.name, args)
    if isinstance(value, Expression):
        return ("expression", re.sub(r"[\s()]", "", value.text))
    return value


def comment_texts(text: str) -> list[str]:
    return [c.text for c in tusklang.parse(text).comments]


@pytest.mark.parametrize("path", VALID, ids=lambda p: str(p.relative_to(ROOT / "fixtures")))
def test_fixture_formats_idempotently_keeping_data_and_comments(path: Path) -> None:
    original = path.read_text(encoding="utf-8")
    once = format_text(original)
    assert format_text(once) == once
    assert comparable(tusklang.loads(once)) == comparable(tusklang.loads(original))
    assert comment_texts(once) == comment_texts(original)


def test_canonical_layout() -> None:
    source = (
        "// flags\n"
        "server >\n"
        "  port: 443 # https\n"
        '  hosts: ["a","b"]\n'
        "<\n\n\n\n"
        "a = 1, b = { c = 2 }\n"
        "[db]\n"
        "url = @env(DB_URL)\n"
    )
    assert format_text(source) == (
        "// flags\n"
        "server = {\n"
        "    port = 443 # https\n"
        '    hosts = ["a", "b"]\n'
        "}\n"
        "\n"
        "a = 1\n"
        "b = {\n"
        "    c = 2\n"
        "}\n"
        "\n"
        "[db]\n"
        "url = @env(DB_URL)\n"
    )


def test_comments_inside_arrays_force_one_item_per_line() -> None:
    formatted = format_text("xs = [1, # one\n 2]\n")
    assert formatted == "xs = [\n    1, # one\n    2,\n]\n"


def test_expressions_keep_the_parentheses_their_meaning_needs() -> None:
    source = "$a = 1\nx = ($a + 1) == 2 || !($a == 3)\ny = ($a == 1) == true\nz = $a + (2 + 3)\n"
    formatted = format_text(source)
    assert formatted.splitlines()[1:] == [
        "x = $a + 1 == 2 || !($a == 3)",
        "y = ($a == 1) == true",
        "z = $a + (2 + 3)",
    ]
    assert tusklang.loads(formatted) == tusklang.loads(source)


def test_unparseable_input_is_refused() -> None:
    with pytest.raises(tusklang.TuskError):
        format_text("a = {\n")


# --- generated documents -------------------------------------------------------------------------

_names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(lambda s: s not in {"true", "false", "null"})
_scalars = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["true", "false", "null", "1.5", "0x1F", "1_000", "8000-9000", "@env(HOME)"]),
    st.text(st.characters(codec="utf-8", exclude_characters='"\\$\r'), max_size=8).map(
        lambda s: '"' + s.replace("\n", "\\n") + '"'
    ),
)
_comments = st.sampled_from(["# note", "// why", "/* block */", "# émoji 🚀"])


@st.composite
def _array(draw: st.DrawFn) -> str:
    items = draw(st.lists(_scalars, max_size=4))
    if items and draw(st.booleans()):
        comment = draw(_comments.filter(lambda c: not c.startswith("/*")))
        return "[\n" + ",\n".join([*items[:-1], items[-1] + " " + comment]) + "\n]"
    return "[" + ", ".join(items) + "]"


def _block(depth: int) -> st.SearchStrategy[str]:
    return st.builds(
        lambda members: members,
        st.lists(_member(depth), max_size=4, unique_by=lambda m: m[0]),
    )


@st.composite
def _member_draw(draw: st.DrawFn, depth: int) -> tuple[str, str]:
    name = draw(_names)
    kind = draw(st.sampled_from(["scalar", "array", "block", "angle"] if depth < 3 else ["scalar", "array"]))
    separator = draw(st.sampled_from([" = ", ": ", "="]))
    if kind == "scalar":
        text = name + separator + draw(_scalars)
    elif kind == "array":
        text = name + separator + draw(_array())
    else:
        children = draw(_block(depth + 1))
        body = "\n".join(text for _, text in children)
        if kind == "block":
            text = f"{name}{separator}{{\n{body}\n}}"
        else:
            text = f"{name} >\n{body}\n<"
    if draw(st.booleans()):
        text = draw(_comments) + "\n" + text
    if draw(st.booleans()) and kind in ("scalar", "array"):
        text += " " + draw(_comments)
    if draw(st.booleans()):
        text += "\n"
    return name, text


def _member(depth: int) -> st.SearchStrategy[tuple[str, str]]:
    return _member_draw(depth)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_block(0))
def test_generated_documents_format_idempotently(members: list[tuple[str, str]]) -> None:
    source = "\n".join(text for _, text in members) + "\n"
    once = format_text(source)
    assert format_text(once) == once
    assert comparable(tusklang.loads(once)) == comparable(tusklang.loads(source))
    assert comment_texts(once) == comment_texts(source)
    # split at "\n" only: str.splitlines also breaks at \x1c-\x1e, \x85, ... which may sit inside strings
    assert all(not line.startswith("\t") and not line.endswith(" ") for line in once.split("\n"))


# --- the command ---------------------------------------------------------------------------------


def _tusk(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from tusklang.cli import main; sys.exit(main())", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_check_diff_and_rewrite(tmp_path: Path) -> None:
    messy = tmp_path / "messy.tsk"
    messy.write_text("a: 1 # keep\nb >\n  c = 2\n<\n", encoding="utf-8")
    tidy = tmp_path / "tidy.tsk"
    tidy.write_text("x = 1\n", encoding="utf-8")

    checked = _tusk("fmt", "--check", str(messy), str(tidy), cwd=tmp_path)
    assert checked.returncode == 1
    assert str(messy) in checked.stdout and str(tidy) not in checked.stdout
    assert messy.read_text(encoding="utf-8").startswith("a: 1")

    diffed = _tusk("fmt", "--diff", str(messy), cwd=tmp_path)
    assert diffed.returncode == 1
    assert "-a: 1 # keep" in diffed.stdout and "+a = 1 # keep" in diffed.stdout

    assert _tusk("fmt", str(messy), str(tidy), cwd=tmp_path).returncode == 0
    assert messy.read_text(encoding="utf-8") == "a = 1 # keep\nb = {\n    c = 2\n}\n"
    assert _tusk("fmt", "--check", str(messy), str(tidy), cwd=tmp_path).returncode == 0


def test_cli_reports_a_syntax_error_and_leaves_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tsk"
    broken.write_text("a = {\n", encoding="utf-8")
    result = _tusk("fmt", str(broken), cwd=tmp_path)
    assert result.returncode == 1
    assert "error[" in result.stderr
    assert broken.read_text(encoding="utf-8") == "a = {\n"
