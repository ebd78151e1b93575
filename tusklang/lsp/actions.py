"""Code actions for the cheap fixes: "did you mean" replacements and missing flag metadata."""

from __future__ import annotations

import re

from lsprotocol import types

from ..syntax import nodes
from .convert import offset_at, position
from .index import FileIndex

_DID_YOU_MEAN = re.compile(r"did you mean [`'\"]([^`'\"]+)[`'\"]")
REQUIRED_METADATA = ("description", "owner")
_INDENT = "    "


def code_actions(
    uri: str, index: FileIndex, rng: types.Range | None, diagnostics: list[types.Diagnostic]
) -> list[types.CodeAction]:
    """Quick fixes for ``diagnostics`` and for the flags ``rng`` touches (None: a range edited since the
    index was built, whose flags are not known yet)."""
    actions = [a for d in diagnostics if (a := _did_you_mean(uri, index, d)) is not None]
    if rng is not None:
        actions.extend(_missing_metadata(uri, index, rng))
    return actions


def _did_you_mean(uri: str, index: FileIndex, diagnostic: types.Diagnostic) -> types.CodeAction | None:
    match = _DID_YOU_MEAN.search(diagnostic.message)
    if match is None:
        return None
    suggestion = match.group(1)
    source = index.source
    start = offset_at(source, diagnostic.range.start)
    end = offset_at(source, diagnostic.range.end)
    written = source.text[start:end]
    replace_start, replace_end, new_text = start, end, suggestion
    if written[:1] in "\"'" and len(written) >= 2:
        new_text = written[0] + suggestion.strip("\"'") + written[0]
    else:
        pattern = r"[$@][\w.]*" if suggestion[:1] in "$@" else r"[\w.-]+"
        token = re.match(pattern, written)
        if token is not None:
            replace_end = start + token.end()
    return types.CodeAction(
        title=f"Replace with `{suggestion}`",
        kind=types.CodeActionKind.QuickFix,
        diagnostics=[diagnostic],
        is_preferred=True,
        edit=types.WorkspaceEdit(
            changes={
                uri: [
                    types.TextEdit(
                        range=types.Range(start=position(source, replace_start), end=position(source, replace_end)),
                        new_text=new_text,
                    )
                ]
            }
        ),
    )


def _missing_metadata(uri: str, index: FileIndex, rng: types.Range) -> list[types.CodeAction]:
    """For each flag the range touches: add `metadata` or the required fields it lacks."""
    source = index.source
    start, end = offset_at(source, rng.start), offset_at(source, rng.end)
    actions = []
    for symbol in index.definitions_of("flag"):
        if symbol.span.end < start or symbol.span.start > end:
            continue
        member = next((k.member for k in index.keys if k.span == symbol.name_span or k.path == symbol.path), None)
        if not isinstance(member, nodes.Member) or not isinstance(member.value, nodes.Object):
            continue
        edit = _metadata_edit(member, source.text)
        if edit is None:
            continue
        actions.append(
            types.CodeAction(
                title=f"Add missing metadata to flag `{symbol.name}`",
                kind=types.CodeActionKind.QuickFix,
                edit=types.WorkspaceEdit(changes={uri: [_insert(source, *edit)]}),
            )
        )
    return actions


def _metadata_edit(member: nodes.Member, text: str) -> tuple[int, str] | None:
    obj = member.value
    assert isinstance(obj, nodes.Object)
    metadata = next((m for m in obj.members if isinstance(m, nodes.Member) and m.key.parts == ("metadata",)), None)
    flag_indent = _indent_of(text, member.span.start)
    if metadata is None:
        fields = "".join(f'{flag_indent}{_INDENT * 2}{name} = ""\n' for name in REQUIRED_METADATA)
        body = f"{flag_indent}{_INDENT}metadata = {{\n{fields}{flag_indent}{_INDENT}}}\n"
        return _line_start(text, obj.span.end), body
    if not isinstance(metadata.value, nodes.Object):
        return None
    present = {m.key.parts[0] for m in metadata.value.members if isinstance(m, nodes.Member)}
    missing = [name for name in REQUIRED_METADATA if name not in present]
    if not missing:
        return None
    indent = _indent_of(text, metadata.span.start) + _INDENT
    return _line_start(text, metadata.value.span.end), "".join(f'{indent}{name} = ""\n' for name in missing)


def _indent_of(text: str, offset: int) -> str:
    line_start = text.rfind("\n", 0, offset) + 1
    line = text[line_start:offset]
    return line[: len(line) - len(line.lstrip())]


def _line_start(text: str, offset: int) -> int:
    """The start of the line holding the block's closing brace (``offset`` is just after it)."""
    return text.rfind("\n", 0, offset - 1) + 1


def _insert(source: object, offset: int, new_text: str) -> types.TextEdit:
    pos = position(source, offset)  # type: ignore[arg-type]
    return types.TextEdit(range=types.Range(start=pos, end=pos), new_text=new_text)
