"""Completion: keys valid in the block, enum values, segment/environment/gate names, directives."""

from __future__ import annotations

from collections.abc import Iterable

from lsprotocol import types

from ..source import SourceFile
from .context import cursor_context, keys_in_block
from .convert import offset_range
from .index import FileIndex
from .keys import DIRECTIVES, child_keys, key_info

_REFERENCE_KEYS = {
    "user_segments": "segment",
    "environments": "environment",
    "gates": "gate",
    "required_gates": "gate",
}


def complete(text: str, offset: int, indexes: Iterable[FileIndex]) -> list[types.CompletionItem]:
    ctx = cursor_context(text, offset)
    indexes = list(indexes)
    if ctx.after_at:
        return [
            types.CompletionItem(
                label=name,
                kind=types.CompletionItemKind.Function,
                detail=f"@{name}",
                documentation=doc,
            )
            for name, doc in DIRECTIVES.items()
            if name.startswith(ctx.prefix)
        ]
    if ctx.after_dollar:
        return _variables(text, offset, ctx.prefix, indexes[:1])
    if ctx.in_value and ctx.key is not None:
        return _values(ctx.path, ctx.key, ctx.in_string, indexes)
    return _keys(ctx.path, text, offset, indexes)


def _variables(text: str, offset: int, prefix: str, indexes: list[FileIndex]) -> list[types.CompletionItem]:
    """`$name`: the variables of this file (variables are file-local). The edit replaces the `$` too, so
    the result is right whether or not the client counts `$` as part of the word."""
    names: dict[str, str] = {}
    for index in indexes:
        for symbol in index.definitions_of("variable"):
            names.setdefault(symbol.name, symbol.span.text)
    written = offset_range(SourceFile(text), offset - len(prefix) - 1, offset)
    return [
        types.CompletionItem(
            label=f"${name}",
            kind=types.CompletionItemKind.Variable,
            detail=_one_line(defined),
            text_edit=types.TextEdit(range=written, new_text=f"${name}"),
        )
        for name, defined in sorted(names.items())
        if name.startswith(prefix)
    ]


def _one_line(text: str, limit: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _values(path: tuple[str, ...], key: str, in_string: bool, indexes: list[FileIndex]) -> list[types.CompletionItem]:
    def literal(value: str) -> str:
        return value if in_string else f'"{value}"'

    kind = _REFERENCE_KEYS.get(key)
    if kind is not None:
        names: dict[str, str] = {}
        for index in indexes:
            for symbol in index.definitions_of(kind):
                names.setdefault(symbol.name, ".".join(symbol.path))
        return [
            types.CompletionItem(
                label=name,
                kind=types.CompletionItemKind.Reference,
                detail=f"{kind} ({where})",
                insert_text=literal(name),
            )
            for name, where in sorted(names.items())
        ]
    info = key_info((*path, key))
    return [
        types.CompletionItem(
            label=value,
            kind=types.CompletionItemKind.EnumMember,
            detail=f"{key} value",
            insert_text=literal(value),
        )
        for value in info.allowed
    ]


def _keys(path: tuple[str, ...], text: str, offset: int, indexes: list[FileIndex]) -> list[types.CompletionItem]:
    candidates: dict[str, str | None] = dict(child_keys(path))
    # Keys used by sibling blocks of the same shape (other flags, other experiments) are valid too:
    # this covers blocks the schema leaves free-form, such as metadata.
    pattern = (*path[:-2], "*", *path[-1:]) if len(path) >= 2 else None
    for index in indexes:
        for part in index.keys:
            parent = part.path[:-1]
            if parent == path or (pattern is not None and _matches(parent, pattern)):
                candidates.setdefault(part.path[-1], None)
    present = keys_in_block(text, offset)
    return [
        types.CompletionItem(
            label=name,
            kind=types.CompletionItemKind.Property,
            documentation=description or key_info((*path, name)).description,
            insert_text=f"{name} = ",
        )
        for name, description in sorted(candidates.items())
        if name not in present
    ]


def _matches(parent: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    return len(parent) == len(pattern) and all(p == "*" or p == q for p, q in zip(pattern, parent))
