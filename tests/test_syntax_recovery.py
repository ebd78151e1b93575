"""Every broken line is reported, not just the first; recovery never invents errors after a broken structure."""

from __future__ import annotations

import pytest

import tusklang
from tusklang.syntax.recovery import MAX_ERRORS


def errors(text: str) -> list[tuple[str, int, int]]:
    with pytest.raises(tusklang.TuskError) as info:
        tusklang.parse(text, "t.tsk")
    return [(d.code, *d.span.source.position(d.span.start)) for d in info.value.diagnostics if d.span]


def test_independent_broken_lines_are_all_reported_in_order() -> None:
    text = "a = 1\nb = = 2\nc = 3\nd = @\ne = { f = 1 }\ng h = 4\n"
    found = errors(text)
    assert [(line, column) for _, line, column in found] == [(2, 5), (4, 5), (6, 3)]


def test_later_errors_render_the_original_line() -> None:
    with pytest.raises(tusklang.TuskError) as info:
        tusklang.parse('x = = 1\nname = "ok"\ny = )\n', "t.tsk")
    rendered = info.value.render()
    assert "x = = 1" in rendered and "y = )" in rendered


def test_an_unclosed_block_is_one_error_not_a_cascade() -> None:
    found = errors("a = {\n  b = 1\n  c = 2\n")
    assert len(found) == 1 and found[0][0] == "TSK103"


def test_a_broken_line_with_unbalanced_brackets_ends_the_search() -> None:
    # Blanking `b = [1, =` would leave the rest unbalanced: only the first error is certain.
    found = errors("a = 1\nb = [1, =\nc = = 3\n")
    assert len(found) == 1


def test_the_number_of_errors_is_bounded() -> None:
    text = "".join(f"k{i} = = {i}\n" for i in range(60))
    assert len(errors(text)) == MAX_ERRORS


def test_a_clean_file_still_parses_and_duplicates_are_all_reported() -> None:
    assert tusklang.loads("a = 1\nb = [1, 2]\n") == {"a": 1, "b": [1, 2]}
    found = errors("a = 1\na = 2\nb = 1\nb = 2\n")
    assert [code for code, _, _ in found] == ["TSK120", "TSK120"]
