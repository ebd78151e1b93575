"""Go to definition, find references and rename, across the workspace's files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lsprotocol import types

from .convert import span_range
from .index import REFERABLE, FileIndex, Reference


def target_at(index: FileIndex, offset: int) -> tuple[str, str] | None:
    """(kind, name) of the referable thing under the cursor: a reference or a definition."""
    ref = index.reference_at(offset)
    if ref is not None:
        return ref.kind, ref.name
    symbol = index.definition_at(offset)
    if symbol is not None and symbol.kind in REFERABLE:
        return symbol.kind, symbol.name
    return None


def definitions(
    kind: str, name: str, uri: str, index: FileIndex, others: Iterable[tuple[str, FileIndex]]
) -> list[types.Location]:
    if kind == "file":
        return _file_target(uri, name)
    if kind == "variable":
        # Variables are file-local: the nearest definition above wins.
        return [
            types.Location(uri=uri, range=span_range(s.name_span))
            for s in index.definitions_of("variable")
            if s.name == name
        ][:1]
    found = []
    for other_uri, other in [(uri, index), *others]:
        for symbol in other.definitions_of(kind):
            if symbol.name == name:
                found.append(types.Location(uri=other_uri, range=span_range(symbol.name_span)))
    return found


def references(
    kind: str,
    name: str,
    uri: str,
    index: FileIndex,
    others: Iterable[tuple[str, FileIndex]],
    include_declaration: bool,
) -> list[types.Location]:
    scope = [(uri, index)] if kind == "variable" else [(uri, index), *others]
    found: list[types.Location] = []
    for other_uri, other in scope:
        if include_declaration:
            found.extend(
                types.Location(uri=other_uri, range=span_range(s.name_span))
                for s in other.definitions_of(kind)
                if s.name == name
            )
        found.extend(
            types.Location(uri=other_uri, range=span_range(r.span))
            for r in other.references
            if r.kind == kind and r.name == name and _same_file_target(kind, uri, other_uri, name, r)
        )
    return found


def rename(
    kind: str,
    name: str,
    new_name: str,
    uri: str,
    index: FileIndex,
    others: Iterable[tuple[str, FileIndex]],
) -> types.WorkspaceEdit:
    edits: dict[str, list[types.TextEdit]] = {}
    for location in references(kind, name, uri, index, others, include_declaration=True):
        edits.setdefault(location.uri, []).append(types.TextEdit(range=location.range, new_text=new_name))
    return types.WorkspaceEdit(changes=edits)


def _file_target(uri: str, relative: str) -> list[types.Location]:
    base = _uri_path(uri)
    if base is None:
        return []
    target = (base.parent / relative).resolve()
    if not target.exists():
        return []
    zero = types.Position(line=0, character=0)
    return [types.Location(uri=target.as_uri(), range=types.Range(start=zero, end=zero))]


def _same_file_target(kind: str, uri: str, other_uri: str, name: str, ref: Reference) -> bool:
    if kind != "file" or uri == other_uri:
        return True
    here, there = _uri_path(uri), _uri_path(other_uri)
    if here is None or there is None:
        return False
    return (here.parent / name).resolve() == (there.parent / ref.name).resolve()


def _uri_path(uri: str) -> Path | None:
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))
