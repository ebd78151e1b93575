"""The lexer's fast paths (plain string arrays, `name = scalar` lines) build exactly what the grammar builds."""

from __future__ import annotations

import re

import pytest

import tusklang
from tusklang.diagnostics import Span
from tusklang.syntax import lexer

TEXTS = [
    'regions = ["us-east", "eu-west"]\n',
    'a = [ "x" ,"y",  "z" , ]\nb = ["only"]\n',
    'flag = { segments = ["beta", "premium users", ""], tiers = ["gold"] }\n',
    'mixed = ["a", 1, true]\nnested = [["a", "b"], ["c"]]\n',
    'escaped = ["tab\\t", "plain"]\ntemplate = ["${who}", "x"]\n$who = "me"\n',
    'x = ["a", "b"] ? 1 : 2\n',
    'a = 1\nb = -2.5\nc = "text"\nd = true\ne = false\nf = 0\n',
    'n = 1_000\nh = 0x1F\nx = 1e3\nq = "a\\"b"\nr = 1 // note\ns = 2 + 3\n',
    'obj = {\n    k = 1\n    s = "v"\n    t = true\n}\ncomma = { a = 1, b = 2 }\n',
    "yaml: 1\nkey = 007\n",
    "a = 1 b = 2\n",
    '$v = 3\nw = $v\nlast = "end"',
    # The nesting limit counts a plain string array as the level it is: the same on both paths.
    "k = " + "[" * 126 + '["a", "b"]' + "]" * 126 + "\n",
    "k = " + "[" * 127 + '["a", "b"]' + "]" * 127 + "\n",
    "k = " + "[" * 126 + '["a"] + ["b"]' + "]" * 126 + "\n",
]


def shape(node: object) -> object:
    """A node tree with every Span reduced to (start, end): two parses have distinct SourceFile objects."""
    if isinstance(node, Span):
        return (node.start, node.end)
    if isinstance(node, tuple):
        return (type(node).__name__, *(shape(item) for item in node))
    return node


@pytest.mark.parametrize("text", TEXTS)
def test_fast_path_builds_the_same_tree_as_the_grammar(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        fast = tusklang.parse(text, "t.tsk")
    except tusklang.TuskError as exc:
        fast_error: str | None = exc.render()
    else:
        fast_error = None
    never = re.compile(r"(?!)")  # the general path only
    monkeypatch.setattr(lexer, "STRING_ARRAY_RE", never)
    monkeypatch.setattr(lexer, "SIMPLE_MEMBER_RE", never)
    try:
        slow = tusklang.parse(text, "t.tsk")
    except tusklang.TuskError as exc:
        assert fast_error == exc.render()
        return
    assert fast_error is None
    assert shape(fast.members) == shape(slow.members)


def test_element_spans_point_at_each_string() -> None:
    doc = tusklang.parse('k = ["ab", "c"]\n', "t.tsk")
    array = doc.members[0].value
    assert [(item.value, item.span.start, item.span.end) for item in array.items] == [("ab", 5, 9), ("c", 11, 14)]
    assert (array.span.start, array.span.end) == (4, 15)


def test_a_missing_comma_between_members_is_still_reported() -> None:
    with pytest.raises(tusklang.TuskError) as info:
        tusklang.parse('a = ["x"] b = 1\n', "t.tsk")
    assert info.value.diagnostics[0].code == "TSK104"
