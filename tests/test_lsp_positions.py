"""Positions mapped through edits (tusklang/lsp/positions.py): what lets a request be answered from the
previous index while the current text is being parsed."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types

from tusklang.lsp.positions import Change, Mapper, remap


def _offset(text: str, line: int, character: int) -> int:
    """Code-point offset of an LSP position (UTF-16 character)."""
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
    start = starts[line]
    units = 0
    i = start
    while units < character:
        units += 2 if ord(text[i]) > 0xFFFF else 1
        i += 1
    return i


def _position(text: str, offset: int) -> types.Position:
    before = text[:offset]
    breaks = list(re.finditer(r"\r\n|\r|\n", before))
    line_start = breaks[-1].end() if breaks else 0
    return types.Position(line=len(breaks), character=len(before[line_start:].encode("utf-16-le")) // 2)


def _apply(text: str, start: int, end: int, new: str) -> tuple[str, types.TextDocumentContentChangePartial]:
    change = types.TextDocumentContentChangePartial(
        range=types.Range(start=_position(text, start), end=_position(text, end)), text=new
    )
    return text[:start] + new + text[end:], change


def test_an_insertion_above_shifts_lines_and_one_on_the_line_shifts_columns() -> None:
    text = "a = 1\nb = 2\n"
    _, change = _apply(text, 0, 0, "x = 0\ny = 0\n")
    mapper = Mapper([Change.of(change)])  # type: ignore[list-item]
    b = types.Position(line=1, character=0)
    assert mapper.to_new(b, at_end=False) == types.Position(line=3, character=0)
    assert mapper.to_old(types.Position(line=3, character=0)) == b
    assert mapper.to_old(types.Position(line=0, character=2)) is None  # inside what was typed
    _, change = _apply(text, 4, 5, "100")  # a = 1 -> a = 100
    mapper = Mapper([Change.of(change)])  # type: ignore[list-item]
    assert mapper.to_new(types.Position(line=0, character=5), at_end=False) == types.Position(line=0, character=7)
    assert mapper.to_new(types.Position(line=1, character=4), at_end=False) == types.Position(line=1, character=4)


def test_a_whole_document_change_cannot_be_mapped() -> None:
    assert Change.of(types.TextDocumentContentChangeWholeDocument(text="a = 1\n")) is None


def test_remap_moves_ranges_of_this_document_only() -> None:
    text = "a = 1\n"
    _, change = _apply(text, 0, 0, "\n\n")
    mapper = Mapper([Change.of(change)])  # type: ignore[list-item]
    here = types.Location(uri="file:///a.tsk", range=types.Range(start=types.Position(0, 0), end=types.Position(0, 1)))
    there = types.Location(uri="file:///b.tsk", range=types.Range(start=types.Position(0, 0), end=types.Position(0, 1)))
    moved = remap([here, there], "file:///a.tsk", mapper)
    assert moved[0].range.start.line == 2 and moved[1].range.start.line == 0
    outline = [
        {"name": "a", "kind": 13, "range": _json(0, 0, 0, 5), "selectionRange": _json(0, 0, 0, 1), "children": []}
    ]
    assert remap(outline, "file:///a.tsk", mapper)[0]["range"] == _json(2, 0, 2, 5)
    assert outline[0]["range"] == _json(0, 0, 0, 5)  # the cached outline is not changed


def _json(a: int, b: int, c: int, d: int) -> dict[str, dict[str, int]]:
    return {"start": {"line": a, "character": b}, "end": {"line": c, "character": d}}


_ALPHABET = st.sampled_from(["a", "b", " ", "\n", "\r\n", "é", "🚀", "="])
_TEXT = st.lists(_ALPHABET, min_size=1, max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    text=_TEXT, edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 6), _TEXT), max_size=5), data=st.data()
)
def test_a_character_outside_every_edit_is_found_again(
    text: str, edits: list[tuple[int, int, str]], data: st.DataObject
) -> None:
    # Cuts fall between characters but never inside a \r\n (an LSP position cannot point between them).
    def boundaries(t: str) -> list[int]:
        return [i for i in range(len(t) + 1) if not (0 < i < len(t) and t[i - 1] == "\r" and t[i] == "\n")]

    original = text
    # Track, for each character of the original, where it is now (None once an edit replaced it).
    where: list[int | None] = list(range(len(original)))
    changes = []
    for at, length, new in edits:
        cuts = boundaries(text)
        start = cuts[at % len(cuts)]
        end = next((c for c in cuts if c >= min(start + length, len(text))), len(text))
        text, change = _apply(text, start, end, new)
        changes.append(Change.of(change))
        where = [
            None if w is None or start <= w < end else (w if w < start else w + len(new) - (end - start)) for w in where
        ]
    mapper = Mapper(changes)  # type: ignore[arg-type]
    for old_offset, new_offset in enumerate(where):
        if new_offset is None or (original[old_offset] == "\n" and old_offset > 0 and original[old_offset - 1] == "\r"):
            continue
        old_position = _position(original, old_offset)
        new_position = mapper.to_new(old_position, at_end=False)
        assert _offset(text, new_position.line, new_position.character) == new_offset
        assert mapper.to_old(new_position) == old_position
