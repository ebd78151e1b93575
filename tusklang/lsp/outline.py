"""The outline (`textDocument/documentSymbol`) of any TuskLang file, flag project or not.

The tree follows the document: `[sections]`, blocks, keys and `$variables`, nested as written, so
editors can show breadcrumbs. In a flag config the blocks that define something (a flag, a segment, an
environment, a gate, an experiment) keep their own symbol kind and say what they define. Built from the
recovered document, so the outline stays while the file has errors.

The symbols are JSON-ready dicts (LSP `DocumentSymbol` shape), built on the index thread and cached
with the index: a 20,000-line file has some 16,000 keys, and building and serialising lsprotocol objects
for each cost more than the 200 ms a request may wait. For the same reason an outline holds at most
``MAX_SYMBOLS`` symbols, breadth first (whole upper levels, then the next level in document order), as
VS Code's JSON language server does (5,000 by default).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from lsprotocol import types

from ..diagnostics import Span
from ..syntax import nodes
from .convert import point
from .index import FileIndex

MAX_SYMBOLS = 5000

_DEFINITION_KINDS = {
    "flag": types.SymbolKind.Boolean,
    "segment": types.SymbolKind.Class,
    "environment": types.SymbolKind.Namespace,
    "gate": types.SymbolKind.Event,
    "experiment": types.SymbolKind.Struct,
}
_SCALAR_KINDS: dict[type, types.SymbolKind] = {
    nodes.String: types.SymbolKind.String,
    nodes.Template: types.SymbolKind.String,
    nodes.Number: types.SymbolKind.Number,
    nodes.Range: types.SymbolKind.Number,
    nodes.Bool: types.SymbolKind.Boolean,
    nodes.Null: types.SymbolKind.Null,
    nodes.Directive: types.SymbolKind.Function,
    nodes.Foreign: types.SymbolKind.Function,
    nodes.Chain: types.SymbolKind.Function,
    nodes.Ref: types.SymbolKind.Variable,
}
_MAX_DETAIL = 40

Symbol = dict[str, Any]


class Outline(list[Symbol]):
    """Symbols already in JSON form: the server's converter passes them through as they are (server.py),
    where cattrs would copy every dict (90 ms for 5,000 symbols)."""


# (where the symbol goes, name, value node, whole span, name span, kind when fixed by the caller)
_Pending = tuple[list[Symbol], str, Any, Span, Span, int | None]


def document_symbols(index: FileIndex, limit: int = MAX_SYMBOLS) -> Outline:
    document = index.document
    if document is None:
        return Outline()
    defines = {symbol.span.start: symbol.kind for symbol in index.definitions if symbol.kind != "variable"}
    outline = Outline()
    queue: deque[_Pending] = deque()
    _members(document.members, outline, queue)
    for section in document.sections:
        queue.append((outline, f"[{section.key.span.text}]", section, section.span, section.key.span, None))
    count = 0
    while queue and count < limit:
        target, name, value, span, name_span, kind = queue.popleft()
        target.append(_symbol(name, value, span, name_span, kind, defines, queue))
        count += 1
    return outline


def _members(members: Any, target: list[Symbol], queue: deque[_Pending]) -> None:
    for member in members:
        if type(member) is nodes.VarDef:
            queue.append((target, "$" + member.name, member.value, member.span, member.name_span, _VARIABLE))
        else:
            queue.append((target, member.key.span.text, member.value, member.span, member.key.span, None))


_VARIABLE = int(types.SymbolKind.Variable)


def _symbol(
    name: str,
    value: Any,
    span: Span,
    name_span: Span,
    kind: int | None,
    defines: dict[int, str],
    queue: deque[_Pending],
) -> Symbol:
    detail: str | None
    children: list[Symbol] = []
    value_kind = type(value)
    if value_kind is nodes.Section:
        kind = int(types.SymbolKind.Module)
        detail = None
        _members(value.members, children, queue)
    elif value_kind is nodes.Object:
        what = defines.get(span.start)
        kind = kind or int(_DEFINITION_KINDS.get(what or "", types.SymbolKind.Object))
        detail = what
        _members(value.members, children, queue)
    elif value_kind is nodes.Array:
        kind = kind or int(types.SymbolKind.Array)
        detail = f"{len(value.items)} item" + ("" if len(value.items) == 1 else "s")
        for i, item in enumerate(value.items):
            if type(item) is nodes.Object:
                queue.append((children, f"[{i}]", item, item.span, item.span, None))
    else:
        kind = kind or int(_SCALAR_KINDS.get(value_kind, types.SymbolKind.Property))
        detail = _short(value.span.text)
    symbol: Symbol = {
        "name": name,
        "kind": kind,
        "range": _range(span),
        "selectionRange": _range(name_span),
        "children": children,
    }
    if detail:
        symbol["detail"] = detail
    return symbol


def _range(span: Span) -> dict[str, dict[str, int]]:
    start = point(span.source, span.start)
    end = point(span.source, span.end)
    return {"start": {"line": start[0], "character": start[1]}, "end": {"line": end[0], "character": end[1]}}


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_DETAIL else line[: _MAX_DETAIL - 1] + "…"
