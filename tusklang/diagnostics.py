"""Spans, diagnostics and the one exception family every user-caused problem travels in.

A diagnostic is data (code, severity, message, span, related spans, hint); its text and JSON forms
are rendered from that data, never stored. Codes are stable and documented in docs/diagnostics.md.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .source import SourceFile


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Span(NamedTuple):
    """A half-open code-point range ``[start, end)`` of one source file.

    A tuple, not a dataclass: the parser makes one per AST node, and tuples are the cheapest
    immutable objects Python builds. Line and column are derived on demand from the source.
    """

    source: SourceFile
    start: int
    end: int

    @property
    def file(self) -> str:
        return self.source.name

    @property
    def line(self) -> int:
        return self.source.position(self.start)[0]

    @property
    def column(self) -> int:
        return self.source.position(self.start)[1]

    @property
    def end_line(self) -> int:
        return self.source.position(self.end)[0]

    @property
    def end_column(self) -> int:
        return self.source.position(self.end)[1]

    @property
    def text(self) -> str:
        return self.source.text[self.start : self.end]

    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def to_dict(self) -> dict[str, Any]:
        line, column = self.source.position(self.start)
        end_line, end_column = self.source.position(self.end)
        return {
            "file": self.file,
            "line": line,
            "column": column,
            "end_line": end_line,
            "end_column": end_column,
            "start_offset": self.start,
            "end_offset": self.end,
        }

    def __repr__(self) -> str:
        return f"Span({self.file}:{self.line}:{self.column}-{self.end_line}:{self.end_column})"


@dataclass(frozen=True, slots=True)
class Related:
    span: Span
    message: str


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None = None
    severity: Severity = Severity.ERROR
    hint: str | None = None
    related: tuple[Related, ...] = field(default=())

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def with_severity(self, severity: Severity) -> Diagnostic:
        return Diagnostic(self.code, self.message, self.span, severity, self.hint, self.related)

    def render(self) -> str:
        """Compiler-style text: headline, location, source line, caret under the span, hint."""
        lines = [f"{self.severity.value}[{self.code}]: {self.message}"]
        if self.span is not None:
            lines.extend(_excerpt(self.span, "-->"))
        for rel in self.related:
            lines.append(f"  = note: {rel.message}")
            lines.extend(_excerpt(rel.span, "-->"))
        if self.hint:
            lines.append(f"  = help: {self.hint}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "span": self.span.to_dict() if self.span is not None else None,
            "related": [{"message": r.message, "span": r.span.to_dict()} for r in self.related],
            "hint": self.hint,
        }


def _excerpt(span: Span, arrow: str) -> list[str]:
    source = span.source
    line, column = source.position(span.start)
    end_line, end_column = source.position(span.end)
    text = source.line_text(line)
    if end_line == line:
        width = max(1, end_column - column)
    else:
        width = max(1, len(text) - column + 1)
    gutter = " " * len(str(line))
    # Tabs keep their width on the caret line so the caret sits under the right character.
    pad = "".join("\t" if ch == "\t" else " " for ch in text[: column - 1])
    return [
        f"{gutter}{arrow} {source.name}:{line}:{column}",
        f"{gutter} |",
        f"{line} | {text}",
        f"{gutter} | {pad}{'^' * width}",
    ]


class TuskError(Exception):
    """Raised with every diagnostic of a failed stage; ``str()`` renders them all."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__(self.render())

    def render(self) -> str:
        return "\n\n".join(d.render() for d in self.diagnostics)

    @property
    def first(self) -> Diagnostic:
        return self.diagnostics[0]


def raise_if_errors(diagnostics: Iterable[Diagnostic]) -> None:
    diagnostics = list(diagnostics)
    if any(d.is_error for d in diagnostics):
        raise TuskError(diagnostics)


def render_all(diagnostics: Iterable[Diagnostic]) -> str:
    return "\n\n".join(d.render() for d in diagnostics)
