"""Spans, diagnostics and the one exception family every user-caused problem travels in.

A diagnostic is data (code, severity, message, span, related spans, hint); its text and JSON forms
are rendered from that data, never stored. Codes are stable and documented in docs/diagnostics.md.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final

from .source import SourceFile


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


# A span packs its two offsets into one int: ``start << SPAN_SHIFT | end``.
SPAN_SHIFT: Final = 32
SPAN_MASK: Final = (1 << SPAN_SHIFT) - 1


class _SpanType(type):
    """``Span(source, start, end)``: makes the span with its source's own Span class (``span_class``)."""

    def __call__(cls, source: SourceFile, start: int, end: int) -> Any:
        if not 0 <= end <= SPAN_MASK or start < 0:
            raise ValueError(f"span offsets out of range: {start}, {end}")
        return span_class(source)(start << SPAN_SHIFT | end)


class _SourceSpanType(_SpanType):
    # A source's Span class is called with the packed int, by type.__call__ itself (a C slot): the
    # parser makes one span per node, and a Python-level call would cost a tenth of the parse.
    __call__ = type.__call__  # type: ignore[assignment]


class Span(int, metaclass=_SpanType):
    """A half-open code-point range ``[start, end)`` of one source file.

    The parser makes one per AST node, so a span is the smallest object that carries both offsets
    and its file (issue 19): an int holding ``start << SPAN_SHIFT | end`` (48 bytes, where a
    (source, start, end) tuple took 64 plus 28 for each int offset it did not share), of a class made
    once per source file whose class attribute ``source`` is that file (``span_class``). Line and
    column are derived on demand from the source. Two spans are equal when they cover the same range
    of the same SourceFile object, as the tuples they replace were; a span never equals a plain int.
    """

    __slots__ = ()
    source: ClassVar[SourceFile]
    _fields: ClassVar[tuple[str, ...]] = ("source", "start", "end")  # what a span is made of (check_cache)

    if TYPE_CHECKING:  # what _SpanType.__call__ takes

        def __new__(cls, source: SourceFile, start: int, end: int) -> Span: ...

    @property
    def start(self) -> int:
        return self >> SPAN_SHIFT

    @property
    def end(self) -> int:
        return self & SPAN_MASK

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and int.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not (type(other) is type(self) and int.__eq__(self, other))

    __hash__ = int.__hash__

    def __bool__(self) -> bool:  # a tuple, always true, before; a span at 0-0 is still a span
        return True

    def __reduce__(self) -> tuple[Any, ...]:
        return (Span, (self.source, self >> SPAN_SHIFT, self & SPAN_MASK))

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

    __str__ = __repr__


def span_class(source: SourceFile) -> Callable[[int], Span]:
    """The Span class of ``source``: ``span_class(source)(start << SPAN_SHIFT | end)`` is a span of it.

    Made on first use and kept on the source (the class refers to the source, each of its spans to the
    class), so all spans of one SourceFile share one class: equality relies on it, and ``setdefault``
    keeps it one class when two threads race to make it. A class is in a reference cycle (its own MRO),
    so a SourceFile and its text are freed by the collector's next full pass after the last of its
    spans is gone, not by reference counting the moment that happens.
    """
    made = source.__dict__.get("span_class")
    if made is None:
        made = _SourceSpanType("Span", (Span,), {"__slots__": (), "__module__": __name__, "source": source})
        made = source.__dict__.setdefault("span_class", made)
    return made  # type: ignore[no-any-return]


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
