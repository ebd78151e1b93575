"""The outline (`textDocument/documentSymbol`) of any TuskLang file, flag project or not.

The tree follows the document: `[sections]`, blocks, keys and `$variables`, nested as written, so
editors can show breadcrumbs. In a flag config the blocks that define something (a flag, a segment, an
environment, a gate, an experiment) keep their own symbol kind and say what they define. Built from the
recovered document, so the outline stays while the file has errors.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from ..diagnostics import Span
from ..syntax import nodes
from .convert import span_range
from .index import FileIndex

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
}
_MAX_DETAIL = 40


def document_symbols(index: FileIndex) -> list[types.DocumentSymbol]:
    document = index.document
    if document is None:
        return []
    defines = {symbol.span.start: symbol.kind for symbol in index.definitions if symbol.kind != "variable"}
    walker = _Outline(defines)
    outline = walker.members(document.members)
    for section in document.sections:
        outline.append(
            types.DocumentSymbol(
                name=f"[{section.key.span.text}]",
                kind=types.SymbolKind.Module,
                range=span_range(section.span),
                selection_range=span_range(section.key.span),
                children=walker.members(section.members),
            )
        )
    return outline


class _Outline:
    def __init__(self, defines: dict[int, str]) -> None:
        self.defines = defines

    def members(self, members: Any) -> list[types.DocumentSymbol]:
        out = []
        for member in members:
            if isinstance(member, nodes.VarDef):
                out.append(
                    self.symbol(
                        "$" + member.name, member.value, member.span, member.name_span, types.SymbolKind.Variable
                    )
                )
            else:
                out.append(self.symbol(member.key.span.text, member.value, member.span, member.key.span, None))
        return out

    def symbol(
        self, name: str, value: Any, span: Span, name_span: Span, kind: types.SymbolKind | None
    ) -> types.DocumentSymbol:
        children: list[types.DocumentSymbol] | None = None
        detail: str | None
        value_kind = type(value)
        if value_kind is nodes.Object:
            defines = self.defines.get(span.start)
            kind = kind or _DEFINITION_KINDS.get(defines or "", types.SymbolKind.Object)
            detail = defines
            children = self.members(value.members)
        elif value_kind is nodes.Array:
            kind = kind or types.SymbolKind.Array
            detail = f"{len(value.items)} item" + ("" if len(value.items) == 1 else "s")
            children = [
                self.symbol(f"[{i}]", item, item.span, item.span, None)
                for i, item in enumerate(value.items)
                if type(item) is nodes.Object
            ] or None
        else:
            kind = kind or _SCALAR_KINDS.get(value_kind, types.SymbolKind.Property)
            detail = _short(value.span.text)
        return types.DocumentSymbol(
            name=name,
            kind=kind,
            detail=detail,
            range=span_range(span),
            selection_range=span_range(name_span),
            children=children,
        )


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_DETAIL else line[: _MAX_DETAIL - 1] + "…"
