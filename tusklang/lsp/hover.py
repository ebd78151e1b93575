"""Hover: a key's meaning and allowed values, a reference's definition, whether `@env(NAME)` is set, the
key a bare name reads, and what foreign code, a member chain's link or a word item is."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from lsprotocol import types

from ..diagnostics import Span
from ..interpret import is_runtime_directive
from ..syntax import nodes
from .convert import span_range
from .index import FileIndex, KeyPart
from .keys import DIRECTIVES, key_info

_MAX_DEFINITION_LINES = 20


def hover(
    index: FileIndex,
    offset: int,
    others: Iterable[FileIndex],
    environ: Mapping[str, str] | None = None,
) -> types.Hover | None:
    environ = os.environ if environ is None else environ
    ref = index.reference_at(offset)
    if ref is not None and ref.kind not in ("file",):
        for candidate in [index, *others]:
            for symbol in candidate.definitions_of(ref.kind):
                if symbol.name == ref.name:
                    return _markdown(
                        f"**{ref.kind}** `{ref.name}` — defined at `{'.'.join(symbol.path) or symbol.name}`"
                        f" ({symbol.span.file}:{symbol.span.line})\n\n```tusk\n{_excerpt(symbol.span)}\n```",
                        span_range(ref.span),
                    )
        return _markdown(f"**{ref.kind}** `{ref.name}` is not defined in the workspace.", span_range(ref.span))
    directive = index.directive_at(offset)
    if directive is not None and directive.name_span.start <= offset <= directive.name_span.end:
        return _directive_hover(directive, environ)
    key_ref = index.key_ref_at(offset)
    if key_ref is not None:
        return _key_ref_hover(*key_ref)
    note = index.note_at(offset)
    if note is not None:
        return _markdown(note[1], span_range(note[0]))
    if directive is not None and directive.name == "env":
        return _directive_hover(directive, environ)
    part = index.key_at(offset)
    if part is not None:
        info = key_info(part.path)
        lines = [f"**`{'.'.join(part.path)}`**"]
        if info.description:
            lines.append(info.description)
        if info.allowed:
            lines.append("Allowed values: " + ", ".join(f"`{v}`" for v in info.allowed))
        defined = index.definition_at(offset)
        if defined is not None:
            lines.append(f"Defines {defined.kind} `{defined.name}`.")
        return _markdown("\n\n".join(lines), span_range(part.span))
    return None


def _key_ref_hover(span: Span, key: KeyPart | None) -> types.Hover:
    if key is None:
        text = f"**key** `{span.text}`: no key of this name is written before it here (TSK202)."
    else:
        where = key.member.span
        text = (
            f"**key** `{span.text}` reads `{'.'.join(key.path)}` ({where.file}:{where.line})"
            f"\n\n```tusk\n{_excerpt(where)}\n```"
        )
    return _markdown(text, span_range(span))


def _directive_text(name: str) -> str:
    if name in DIRECTIVES:
        return DIRECTIVES[name]
    head = name.partition(".")[0]
    if head in DIRECTIVES:  # `@request.headers.x-id`: what `@request` gives, then its members
        return f"`@{name}`: " + DIRECTIVES[head]
    if is_runtime_directive(name):  # the SDKs' cross-file `@other.tsk.get("key")`
        return f"`@{name}`: runtime only: the SDKs read another TuskLang file's key as the application runs."
    return f"`@{name}`: not a known directive."


def _directive_hover(directive: nodes.Directive, environ: Mapping[str, str]) -> types.Hover:
    text = _directive_text(directive.name)
    # Any: mypy spent minutes narrowing `isinstance(args[0], ...)` over the node union
    args: tuple[Any, ...] = directive.args or ()
    if directive.name == "env" and args:
        name = args[0].name if isinstance(args[0], nodes.Bare) else getattr(args[0], "value", None)
        if isinstance(name, str):
            # Whether it is set, never its value: the value may be a secret.
            state = "is set" if name in environ else "is **not set**"
            fallback = " (the default given here will be used)" if len(args) > 1 and name not in environ else ""
            text += f"\n\n`{name}` {state} in the environment `@env` reads here{fallback}."
    return _markdown(text, span_range(directive.span))


def _excerpt(span: nodes.Span) -> str:
    source = span.source
    first, last = span.line, span.end_line
    lines = [source.line_text(n) for n in range(first, min(last, first + _MAX_DEFINITION_LINES - 1) + 1)]
    indent = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    body = "\n".join(line[indent:] for line in lines)
    return body + ("\n..." if last - first >= _MAX_DEFINITION_LINES else "")


def _markdown(value: str, rng: types.Range) -> types.Hover:
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=value),
        range=rng,
    )
