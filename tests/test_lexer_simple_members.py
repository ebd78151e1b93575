"""The SIMPLE fast path (runs of `name = literal` lines as one token) builds what the grammar builds.

Issue 19: escaped strings, `\"\"\"` blocks and arrays of numbers take the fast path too, and a run of
such lines at one indentation is one token. Each text here is parsed with the fast path and with
the general path only (SIMPLE_MEMBER_RE never matching); trees, spans and errors must be the same.
"""

from __future__ import annotations

import re

import pytest

import tusklang
from tusklang.diagnostics import Span
from tusklang.syntax import lexer
from tusklang.syntax.parser import parse_tolerant

TEXTS = [
    'a = "x\\ty \\"q\\" \\\\ \\/ \\n\\r"\nb = 1\n',
    'block = """\nline one\n  line two "quoted"\n"""\nafter = true\n',
    'block = """no newline first ${kept}"""\n',
    "ints = [1, -2, 30000, 4.5, 0]\nmixed = [\"a\", 1, \"b\"]\nempty = []\nspaced = [ ]\ntrail = [1, 2,]\n",
    "big = [" + "9" * 5000 + "]\n",
    "big = " + "9" * 5000 + "\n",
    "huge = 1" + "0" * 400 + ".5\n",
    "obj = {\n    a = 1\n    b = 2\n  c = 3\n        d = 4\n}\n",
    "a = 1\nb = 2\n\nc = 3\n# comment\nd = 4\n",
    "dup = 1\ndup = 2\n",
    "a = 1\nb = 2 # trailing\nc = [1, 2] // note\n",
    "open = {\n    a = 1\n    b = 2\nc = 3\nd = 4\n",
    "x:\n    a = 1\n    b = 2\ny = 3\n",
    "k = " + "[" * 126 + "[1, 2]" + "]" * 126 + "\n",
    "o = " + "{ a = " * 126 + "[1, 2]" + " }" * 126 + "\n",
    "a = {\n" * 126 + "b = [1, 2]\n" + "}\n" * 126,
    "a = {\n" * 127 + "b = [1, 2]\n" + "}\n" * 127,
    "\ufeffa = 1\nb = 2\n",
    "a = 1\r\nb = \"two\"\r\nc = [3]\r\n",
    "a = 1\nb = 2",
    "a = 1\n    b = 2\n",
    "[s]\nx = 1\ny = \"a\\\\b\"\n[t]\nz = [1]\n",
    # Objects of such lines (simple_object): nested, closed out of line, with a comment, unclosed.
    "f = {\n    a = 1\n    t = {\n        x = [1, 2]\n        y = \"s\"\n    }\n    b = true\n}\ng = 2\n",
    "f = {\n    a = 1\n  }\n",
    "f = {\n    a = 1\n    # note\n}\n",
    "f = {\n    a = 1\n    b = {\n        c = 1\n    d = 2\n}\n",
    "f = {\n    a = 1\n",
    "f = {\n    a = 1\n    a = 2\n}\n",
    "f = {\n    a = 1\n} x = 1\n",
    "f = {\n    a = 1\n}",
    "f = {\r\n\ta = 1\r\n}\r\n",
    "f = {\n\n    a = 1\n}\n",
    "o = { a = 1, b = {\n    c = 1\n}\n}\n",
    "x:\n    f = {\n        a = 1\n    }\n    g = 2\n",
    "a = {\n" * 124 + "b = {\n    c = [1]\n}\n" + "}\n" * 124,
    "a = {\n" * 125 + "b = {\n    c = [1]\n}\n" + "}\n" * 125,
    "a = {\n" * 126 + "b = {\n    c = [1]\n}\n" + "}\n" * 126,
    "".join(f"{'    ' * i}k{i} = {{\n" for i in range(40)) + "    " * 40 + "v = 1\n" + "".join(
        f"{'    ' * i}}}\n" for i in reversed(range(40))
    ),
]


def shape(node: object) -> object:
    if isinstance(node, Span):
        return (node.start, node.end)
    if isinstance(node, tuple):
        return (type(node).__name__, *(shape(item) for item in node))
    return node


def _outcome(text: str) -> tuple[object, object]:
    try:
        doc = tusklang.parse(text, "t.tsk")
    except tusklang.TuskError as exc:
        return None, exc.render()
    return (shape(doc.members), shape(doc.sections)), None


@pytest.mark.parametrize("text", TEXTS)
def test_simple_path_builds_the_same_tree_and_errors(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _outcome(text)
    fast_tolerant = parse_tolerant(text, "t.tsk")
    monkeypatch.setattr(lexer, "SIMPLE_MEMBER_RE", re.compile(r"(?!)"))
    assert _outcome(text) == fast
    slow_tolerant = parse_tolerant(text, "t.tsk")
    assert [d.code for d in fast_tolerant[1]] == [d.code for d in slow_tolerant[1]]
    assert [d.message for d in fast_tolerant[1]] == [d.message for d in slow_tolerant[1]]
    fast_doc, slow_doc = fast_tolerant[0], slow_tolerant[0]
    assert (fast_doc is None) == (slow_doc is None)
    if fast_doc is not None and slow_doc is not None:
        assert shape(fast_doc.members) == shape(slow_doc.members)


def test_values_of_the_new_shapes() -> None:
    data = tusklang.loads(TEXTS[0] + TEXTS[1] + TEXTS[3])
    assert data["a"] == 'x\ty "q" \\ / \n\r'
    assert data["block"] == 'line one\n  line two "quoted"\n'
    assert data["ints"] == [1, -2, 30000, 4.5, 0]
    assert data["mixed"] == ["a", 1, "b"]
    assert data["empty"] == [] and data["trail"] == [1, 2]


def test_a_run_of_lines_keeps_every_members_span() -> None:
    doc = tusklang.parse('a = 1\nb = "two"\nc = [3, 4]\n', "t.tsk")
    assert [(m.key.dotted, m.span.line, m.span.column, m.value.span.column) for m in doc.members] == [
        ("a", 1, 1, 5),
        ("b", 2, 1, 5),
        ("c", 3, 1, 5),
    ]
    items = doc.members[2].value.items
    assert [(i.value, i.span.start, i.span.end) for i in items] == [(3, 21, 22), (4, 24, 25)]


def test_an_object_of_simple_lines_keeps_its_spans() -> None:
    text = "f = {\n    a = 1\n    t = {\n        x = [1, 2]\n    }\n}\n"
    doc = tusklang.parse(text, "t.tsk")
    f = doc.members[0]
    assert (f.span.start, f.span.end, f.value.span.start, f.value.span.end) == (0, len(text) - 1, 4, len(text) - 1)
    t = f.value.members[1]
    assert (t.key.span.line, t.key.span.column, t.value.span.end_line, t.value.span.end_column) == (3, 5, 5, 6)
    assert tusklang.loads(text) == {"f": {"a": 1, "t": {"x": [1, 2]}}}
