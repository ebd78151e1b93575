"""Positions and diagnostics in LSP terms: 0-based lines, columns in UTF-16 code units.

The parser counts code points; an LSP client counts UTF-16 units, so every character outside the
Basic Multilingual Plane (most emoji) is one code point but two units.
"""

from __future__ import annotations

from lsprotocol import types

from ..diagnostics import Diagnostic, Severity, Span
from ..source import SourceFile

SOURCE_NAME = "tusk"

_SEVERITY = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.INFO: types.DiagnosticSeverity.Information,
}


def position(source: SourceFile, offset: int) -> types.Position:
    line, character = point(source, offset)
    return types.Position(line=line, character=character)


def point(source: SourceFile, offset: int) -> tuple[int, int]:
    """(0-based line, UTF-16 column) of a code-point offset."""
    line, column = source.position(offset)
    start = source.line_starts[line - 1]
    prefix = source.text[start : start + column - 1]
    # One C-level pass per position: an outline of a 20,000-line file converts some 100,000 of them.
    units = len(prefix) if prefix.isascii() else len(prefix.encode("utf-16-le", "surrogatepass")) // 2
    return line - 1, units


def span_range(span: Span) -> types.Range:
    return types.Range(start=position(span.source, span.start), end=position(span.source, span.end))


def offset_range(source: SourceFile, start: int, end: int) -> types.Range:
    return types.Range(start=position(source, start), end=position(source, end))


def offset_at(source: SourceFile, pos: types.Position) -> int:
    """The code-point offset of an LSP position (clamped to its line)."""
    starts = source.line_starts
    if pos.line >= len(starts):
        return len(source.text)
    text = source.line_text(pos.line + 1)
    units = 0
    column = 0
    for ch in text:
        if units >= pos.character:
            break
        units += 2 if ord(ch) > 0xFFFF else 1
        column += 1
    return starts[pos.line] + column


def to_lsp(diagnostic: Diagnostic, source: SourceFile, uri: str) -> types.Diagnostic:
    """One diagnostic for the client. A diagnostic without a span sits at the start of the file."""
    if diagnostic.span is not None:
        rng = span_range(diagnostic.span)
    else:
        rng = offset_range(source, 0, 0)
    message = diagnostic.message
    if diagnostic.hint:
        message += f"\nhelp: {diagnostic.hint}"
    related = [
        types.DiagnosticRelatedInformation(
            location=types.Location(uri=_uri_for(rel.span, uri), range=span_range(rel.span)),
            message=rel.message,
        )
        for rel in diagnostic.related
    ]
    return types.Diagnostic(
        range=rng,
        message=message,
        severity=_SEVERITY[diagnostic.severity],
        code=diagnostic.code,
        source=SOURCE_NAME,
        related_information=related or None,
        data={"hint": diagnostic.hint} if diagnostic.hint else None,
    )


def _uri_for(span: Span, default: str) -> str:
    from pathlib import Path

    path = span.source.path
    if path is None or path.startswith("<"):
        return default
    candidate = Path(path)
    return candidate.resolve().as_uri() if candidate.is_absolute() or candidate.exists() else default
