"""The source map leaves out the spans the text tells (tusklang/derived_spans.py), and still finds every
key and value where it is written.

The reference is the interpreter recording every span, as it did before (issue 19: the left-out entries
were a fifth of `tusk compile`'s peak memory): the same run with the two "derivable" rules switched off.
Every path of those full tables must get the same value span and key span from the lean tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tusklang.interpret
from tusklang import parse
from tusklang.derived_spans import derive_item, derive_key
from tusklang.diagnostics import Span, TuskError
from tusklang.project import Settings, load_project
from tusklang.project.sourcemap import Locator
from tusklang.resolver import resolve_document

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = sorted((ROOT / "fixtures").rglob("*.tsk"))


def _record_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tusklang.interpret, "_SPANNED_HERE", frozenset())
    monkeypatch.setattr(tusklang.interpret, "items_are_derivable", lambda span: False)


def _resolved(text: str, monkeypatch: pytest.MonkeyPatch, full: bool) -> tuple[Locator, Any]:
    with monkeypatch.context() as patch:
        if full:
            _record_everything(patch)
        resolved = resolve_document(parse(text))
    return resolved.locator, resolved.data


def _tables(text: str, monkeypatch: pytest.MonkeyPatch, full: bool) -> Locator:
    return _resolved(text, monkeypatch, full)[0]


def _compare(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    (lean, data), (full, _) = _resolved(text, monkeypatch, False), _resolved(text, monkeypatch, True)
    assert _same_places(lean, full, data) > 1


def _where(span: Span | None) -> tuple[str, int, int] | None:
    # two runs parse the text twice: their spans are of two SourceFiles, never equal as spans
    return None if span is None else (span.file, span.start, span.end)


def _paths(data: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    yield path
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _paths(value, (*path, index))


def _same_places(lean: Locator, full: Locator, data: Any) -> int:
    """Every path of ``data`` is found at the same place by both; returns how many were compared."""
    count = 0
    for path in _paths(data):
        assert _where(lean.value(path)) == _where(full.value(path)), path
        assert _where(lean.key(path)) == _where(full.key(path)), path
        assert _where(lean.written_key(path)) == _where(full.key_spans.get(path)), path
        count += 1
    return count


# --- written by hand: each way a key, a separator and an array can be written ----------------------

SHAPES = {
    "separators": 'a = 1\nb=2\nc: "x"\nd:true\ne =  3\nf\t= 4\ng  :  5\nh = -1.5e3\n',
    "quoted and dotted keys": '"a b" = 1\n"c" = 2\nx.y.z = "deep"\nx.y.w = [1, 2]\n"q".r = 3\n',
    "comments before the value": "b = /* c */ 2\nc = 3 # trailing\n// line\nd = 4\n",
    "objects": 'o = { x = 1, y = "two" }\np {\n  q = true\n}\nn > \n  k = 1\n<\nm:\n  k = 1\n  l = [1]\n',
    "arrays": (
        "$v = 1\n"
        'one = ["a", "b", 3, true]\n'
        'plain = ["a", "b", 3, -1.5]\n'
        'commented = ["a",  "b" , 2] # the general path builds this one\n'
        'trailing = [1, 2, ]\n'
        'lines = [\n  "a", # one\n  2\n\n  false\n]\n'
        'nested = [[1, 2], ["x", [3]]]\n'
        'objects = [{ k = 1 }, { k = "two", l = [1, 2] }]\n'
        "words [debug, info]\n"
        'mixed = ["a", $v, 2]\n'
        "empty = []\n"
    ),
    "dash lists": 'levels:\n  - debug\n  - "info"\n  - 3\nafter = 1\n',
    "strings": 'plain = "a"\nescaped = "q\\"uote"\nblock = """\nline one\n  two\n"""\nsingle = \'s\'\n',
    "sections": '[server]\nhost = "h"\nports = [80, 443]\n[server.tls]\non = true\n',
    "variables and expressions": '$v = 1\n$list = ["x", "y"]\nfrom_var = $list\nsum = $v + 1\nt = "${v}!"\n',
    "crlf": 'a = 1\r\nb = [1,\r\n  2]\r\nc = { d = "e" }\r\n',
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_place_is_found_as_before(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _compare(SHAPES[name], monkeypatch)


def test_the_tables_hold_no_entry_the_text_tells(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the memory saving rests on: a bare key before `=` and a bracketed array's literal items."""
    text = 'a = 1\nb = { c = "x" }\nd = ["e", 2, true]\n'
    lean = _tables(text, monkeypatch, False)
    assert lean.key_spans == {}
    assert set(lean.spans) == {("a",), ("b",), ("b", "c"), ("d",)}
    full = _tables(text, monkeypatch, True)  # the reference the other tests compare with records all
    assert set(full.key_spans) == {("a",), ("b",), ("b", "c"), ("d",)}
    assert set(full.spans) == {*lean.spans, ("d", 0), ("d", 1), ("d", 2)}
    # ... and what it cannot tell is kept: an aligned `=`, a quoted key, a `- item` list's items
    lean = _tables('a   = 1\n"b" = 2\nc:\n  - x\n', monkeypatch, False)
    assert {("a",), ("b",)} <= set(lean.key_spans)
    assert ("c", 0) in lean.spans


def test_a_later_definition_takes_the_place_of_an_earlier_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # a dotted key stores its first part's key; the object written after it must not keep that one
    _compare("a.b = 1\n[a]\nc = 2\n", monkeypatch)


# --- generated: documents of literals, arrays and objects, written in every style ------------------

_KEYS = st.sampled_from(["a", "b", "key", "x-1", "_k", "ab"])
_SEPARATORS = st.sampled_from([" = ", "=", ": ", " : ", "  =  ", " =\t", "= "])
_SCALARS = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.sampled_from(['"text"', '"q\\"uote"', "'single'", "true", "false", "1.5", '""', '"a # b"']),
)


def _array(items: list[str], multiline: bool) -> str:
    if multiline:
        return "[\n" + "".join(f"    {item}, # note\n" for item in items) + "]"
    return "[" + ", ".join(items) + "]"


_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.builds(_array, st.lists(inner, max_size=4), st.booleans()),
        st.lists(st.tuples(_KEYS, inner), max_size=3, unique_by=lambda kv: kv[0]).map(
            lambda members: "{ " + ", ".join(f"{k} = {v}" for k, v in members) + " }"
        ),
    ),
    max_leaves=8,
)


@st.composite
def _documents(draw: st.DrawFn) -> str:
    lines = []
    for key in draw(st.lists(_KEYS, min_size=1, max_size=5, unique=True)):
        quoted = draw(st.booleans()) and draw(st.booleans())
        lines.append(f"{f'{chr(34)}{key}{chr(34)}' if quoted else key}{draw(_SEPARATORS)}{draw(_VALUES)}")
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None)
@given(_documents())
def test_generated_documents_find_every_place_as_before(text: str) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        try:
            _compare(text, monkeypatch)
        except TuskError:
            pass  # the generator may write what the language refuses; refused texts have no tables


# --- every fixture, files, includes and merges ---------------------------------------------------


def _loaded(paths: list[Path], full: bool) -> Iterator[tuple[Locator, Any]]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        if full:
            _record_everything(monkeypatch)
        project = load_project([str(p) for p in paths], Settings.from_environment(), execute=False)
        for source in project.sources:
            yield Locator(source.spans, source.key_spans), source.data
        if not project.has_errors:
            merged = project.merge()
            yield merged.locator, merged.data


def _compare_loaded(paths: list[Path]) -> int:
    checked = 0
    for (lean, data), (full, _) in zip(_loaded(paths, False), _loaded(paths, True), strict=True):
        checked += _same_places(lean, full, data)
    return checked


def test_every_fixture_finds_every_place_as_before() -> None:
    checked = sum(_compare_loaded([path]) for path in FIXTURES)
    assert checked > 5_000  # the fixtures were read, not skipped


def test_a_project_of_several_files_merges_places_as_before(tmp_path: Path) -> None:
    # two files add flags to one `flags` object; the second also redefines one (TSK318)
    one = tmp_path / "one.tsk"
    two = tmp_path / "two.tsk"
    one.write_text('feature_flags {\n  flags {\n    a = { enabled = true, environments = ["x"] }\n  }\n}\n')
    two.write_text("feature_flags {\n  flags {\n    b = { enabled = false }\n    a = { enabled = false }\n  }\n}\n")
    assert _compare_loaded([one, two]) > 10
    project = load_project([str(one), str(two)], Settings.from_environment(), execute=False)
    clash = [d for d in project.merge().diagnostics if d.code == "TSK318"]
    assert [(d.span.file, d.span.line, d.span.text) for d in clash if d.span] == [(str(two), 4, "a")]
    assert [(r.span.file, r.span.line, r.span.text) for d in clash for r in d.related] == [(str(one), 3, "a")]


def test_an_included_array_and_object_point_into_the_included_file(tmp_path: Path) -> None:
    (tmp_path / "lists.tsk").write_text('envs = ["staging", "production"]\nteam = { owner = "ops" }\n')
    main = tmp_path / "main.tsk"
    main.write_text('a = @file("lists.tsk", "envs")\nb = @file("lists.tsk")\n')
    assert _compare_loaded([main]) > 5
    locator = next(_loaded([main], False))[0]
    item = locator.value(("a", 1))
    assert item is not None and (Path(item.file).name, item.text) == ("lists.tsk", '"production"')
    owner = locator.key(("b", "team", "owner"))
    assert owner is not None and (Path(owner.file).name, owner.text) == ("lists.tsk", "owner")
    assert locator.key(("a",)).text == "a"  # the including member's own key


# --- the derivations alone -----------------------------------------------------------------------


def test_derivations_refuse_what_is_not_written_there() -> None:
    document = parse('a = 1\nb = ["p", "q"]\n')
    one = document.members[0].value.span
    array = document.members[1].value.span
    assert derive_key(one, "a").text == "a"
    assert derive_key(one, "b") is None  # another name
    assert derive_key(one, "xa") is None  # longer than what is written
    assert derive_item(array, 1).text == '"q"'
    assert derive_item(array, 2) is None and derive_item(array, -1) is None
    assert derive_item(one, 0) is None  # not an array
