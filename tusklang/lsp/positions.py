"""Answering from the last index while the next one is built: positions mapped through the edits since.

Parsing a 20,000-line file takes a few hundred milliseconds; a request that waited for the index of the
text as it is now would wait that long after every keystroke. Instead a request is answered from the
newest index there is, and positions travel between that index's text and the current one through the
edits made since (the incremental `didChange` ranges, in LSP line/UTF-16 coordinates, so no text is
needed). A position inside text that was edited since has no counterpart: the request then waits for
the new index, since no other answer would be right. A whole-document replacement breaks the chain
the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import attrs
from lsprotocol import types

Point = tuple[int, int]  # (line, UTF-16 character)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Change:
    """One replacement: ``start``..``end`` of the text before it became text ending at ``new_end``."""

    start: Point
    end: Point
    new_end: Point

    @classmethod
    def of(cls, event: Any) -> Change | None:
        """From a `didChange` content change; None for a whole-document one (no mapping through it)."""
        rng = getattr(event, "range", None)
        if rng is None:
            return None
        start = (rng.start.line, rng.start.character)
        lines = _LINE_BREAK.split(event.text)
        last = _utf16_length(lines[-1])
        new_end = (start[0], start[1] + last) if len(lines) == 1 else (start[0] + len(lines) - 1, last)
        return cls(start, (rng.end.line, rng.end.character), new_end)

    def forward(self, p: Point) -> Point | None:
        """``p`` in the text after this change; None when the change replaced it."""
        if p < self.start or (p == self.start and self.start != self.end):
            return p
        if p >= self.end:
            return _shift(p, self.end, self.new_end)
        return None

    def backward(self, p: Point) -> Point | None:
        """``p`` (in the text after this change) in the text before it; None inside the new text."""
        if p < self.start or (p == self.start and self.start != self.new_end):
            return p
        if p >= self.new_end:
            return _shift(p, self.new_end, self.end)
        return None


def _shift(p: Point, old: Point, new: Point) -> Point:
    if p[0] == old[0]:
        return (new[0], new[1] + p[1] - old[1])
    return (p[0] + new[0] - old[0], p[1])


def _utf16_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-16-le", "surrogatepass")) // 2


class Mapper:
    """Positions between an older text (the index's) and the current one, through ``changes`` in order."""

    def __init__(self, changes: Sequence[Change]) -> None:
        self.changes = tuple(changes)
        # A line above every edit (each edit's start in the text as it was then) is never moved.
        self.first_line = min((c.start[0] for c in self.changes), default=0)
        # Typing within lines (the usual case) moves nothing off the lines it touched.
        self.lines_kept = all(c.start[0] == c.end[0] == c.new_end[0] for c in self.changes)
        self.touched = frozenset(c.start[0] for c in self.changes)

    @property
    def identity(self) -> bool:
        return not self.changes

    def to_old(self, position: types.Position) -> types.Position | None:
        p: Point | None = (position.line, position.character)
        for change in reversed(self.changes):
            assert p is not None
            p = change.backward(p)
            if p is None:
                return None
        assert p is not None
        return types.Position(line=p[0], character=p[1])

    def to_new(self, position: types.Position, *, at_end: bool) -> types.Position:
        """The position in the current text; one inside edited text goes to that edit's start (or end)."""
        line, character = self.point_to_new((position.line, position.character), at_end)
        return types.Position(line=line, character=character)

    def point_to_new(self, p: Point, at_end: bool) -> Point:
        if p[0] < self.first_line or (self.lines_kept and p[0] not in self.touched):
            return p
        for change in self.changes:
            if p[0] > change.end[0]:  # the usual case, a line below the edit: only the line moves
                p = (p[0] + change.new_end[0] - change.end[0], p[1])
                continue
            mapped = change.forward(p)
            p = mapped if mapped is not None else (change.new_end if at_end else change.start)
        return p

    def range(self, rng: types.Range) -> types.Range:
        return types.Range(start=self.to_new(rng.start, at_end=False), end=self.to_new(rng.end, at_end=True))


def remap(value: Any, uri: str, mapper: Mapper) -> Any:
    """A request's result with every range in the document ``uri`` moved into the current text.

    Results are lsprotocol objects (changed in place) or, for the outline, plain JSON dicts (copied).
    Ranges of other documents, and the diagnostics a code action echoes (the client's, already
    current), are left alone.
    """
    if mapper.identity or value is None:
        return value
    if isinstance(value, list):
        return type(value)(remap(item, uri, mapper) for item in value)  # keeps outline.Outline
    if isinstance(value, dict):
        return _remap_json(value, mapper)
    if isinstance(value, types.Range):
        return mapper.range(value)
    if isinstance(value, types.Location):
        if value.uri == uri:
            value.range = mapper.range(value.range)
        return value
    if isinstance(value, types.WorkspaceEdit):
        for edit in (value.changes or {}).get(uri, ()):
            edit.range = mapper.range(edit.range)
        return value
    if isinstance(value, types.CodeAction):
        value.edit = remap(value.edit, uri, mapper)
        return value
    if attrs.has(type(value)):
        for field in attrs.fields(type(value)):
            current = getattr(value, field.name)
            if isinstance(current, (types.Range, list)) or attrs.has(type(current)):
                setattr(value, field.name, remap(current, uri, mapper))
    return value


def _remap_json(node: dict[str, Any], mapper: Mapper) -> dict[str, Any]:
    """A copy of an outline node with its ranges moved; a subtree that ends before the first edit is
    shared as it is (an outline is in document order, so that is everything above the edit)."""
    rng = node["range"]
    if rng["end"]["line"] < mapper.first_line:
        return node
    if mapper.lines_kept and not any(rng["start"]["line"] <= line <= rng["end"]["line"] for line in mapper.touched):
        return node
    out = dict(node)
    out["range"] = _json_range(node["range"], mapper)
    out["selectionRange"] = _json_range(node["selectionRange"], mapper)
    children = node.get("children")
    if children:
        out["children"] = [_remap_json(child, mapper) for child in children]
    return out


def _json_range(rng: dict[str, Any], mapper: Mapper) -> dict[str, Any]:
    start, end = rng["start"], rng["end"]
    line, character = mapper.point_to_new((start["line"], start["character"]), False)
    end_line, end_character = mapper.point_to_new((end["line"], end["character"]), True)
    return {"start": {"line": line, "character": character}, "end": {"line": end_line, "character": end_character}}
