"""AST nodes: small immutable tuples, each with the span of source it came from.

Nodes are NamedTuples rather than frozen dataclasses because the parser builds one per value and a
tuple is the cheapest immutable object CPython makes (about a third of a frozen dataclass's cost).
Directives, variable references and expressions stay nodes: parsing never executes anything.
"""

from __future__ import annotations

from typing import NamedTuple, TypeAlias

from ..diagnostics import SPAN_MASK, SPAN_SHIFT, Span, span_class
from ..source import SourceFile


class Key(NamedTuple):
    """A key path: `a`, `a.b.c`, `"a b".c`. ``spans`` gives one span per part.

    ``part_spans`` is empty when the key is one part written exactly over ``span`` (nearly every key):
    a one-span tuple per key was a tenth of the AST (issue 19). ``spans`` makes it when asked for.
    """

    parts: tuple[str, ...]
    part_spans: tuple[Span, ...]
    span: Span

    @property
    def spans(self) -> tuple[Span, ...]:
        return self.part_spans or ((self.span,) if self.parts else ())

    @property
    def last_span(self) -> Span:
        """The span of the last part (the key's own, for a one-part key)."""
        return self.part_spans[-1] if self.part_spans else self.span

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


class String(NamedTuple):
    value: str
    span: Span


class Template(NamedTuple):
    """A string with interpolations: parts are text and values.

    In `"...${name}..."` each value is a VarRef; in a backtick template `` `...${expr}...` `` it is any
    expression (`${post.slug}`, `${count + 1}`).
    """

    parts: tuple[str | Value, ...]
    span: Span


class Number(NamedTuple):
    value: int | float
    span: Span


class Bool(NamedTuple):
    value: bool
    span: Span


class Null(NamedTuple):
    span: Span

    @property
    def value(self) -> None:
        return None


class Range(NamedTuple):
    """`8000-9000`: a range value, not a subtraction."""

    low: int
    high: int
    span: Span


class VarRef(NamedTuple):
    name: str
    span: Span


class Bare(NamedTuple):
    """A bare identifier as a directive argument: the variable name of `@env(REDIS_URL)`."""

    name: str
    span: Span


class Ref(NamedTuple):
    """A bare identifier in a value: a reference to an earlier key (`health: base_path + "/health"`)."""

    name: str
    span: Span


class Word(NamedTuple):
    """A bare word that is an array item on its own (`[debug, info]`, `- logging`): that word as text."""

    value: str
    span: Span


class Foreign(NamedTuple):
    """A plain call whose name is not a directive: `php(time())`. ``code`` is kept verbatim, never parsed."""

    name: str
    code: str
    name_span: Span
    code_span: Span
    span: Span


class Link(NamedTuple):
    """One link of a member chain: `.name` (``args`` None) or `.name(args)`."""

    name: str
    args: tuple[Value | Bare, ...] | None
    name_span: Span
    span: Span


class Chain(NamedTuple):
    """Member access and method calls on a value: `@query("Users").where("active", true).count()`."""

    target: Value
    links: tuple[Link, ...]
    span: Span


class Directive(NamedTuple):
    """`@name(args)` or `@name.sub(args)`; ``args`` is None when written without parentheses."""

    name: str
    args: tuple[Value | Bare, ...] | None
    name_span: Span
    span: Span


class Unary(NamedTuple):
    op: str
    operand: Value
    span: Span


class Binary(NamedTuple):
    op: str
    left: Value
    right: Value
    op_span: Span
    span: Span


class Ternary(NamedTuple):
    condition: Value
    then: Value
    otherwise: Value
    span: Span


class Array(NamedTuple):
    items: tuple[Value, ...]
    span: Span


class Object(NamedTuple):
    """`{ ... }` (style "brace"), `key > ... <` (style "angle") or `key:` over indented lines ("indent")."""

    members: tuple[Member | VarDef | Statement, ...]
    span: Span
    style: str = "brace"


class Member(NamedTuple):
    """`key = value`. ``span`` runs from the key's start to the value's end, the usual case.

    ``own_span`` is None in that case, and ``span`` is made when asked for: a span object per member
    was ~64 bytes of each, pinned beside the spans that outlive the AST (issue 19). It holds the
    span only when that differs (``member_span``).
    """

    key: Key
    value: Value
    own_span: Span | None

    @property
    def span(self) -> Span:
        own = self.own_span
        if own is not None:
            return own
        start = self.key.span
        return span_class(start.source)(start >> SPAN_SHIFT << SPAN_SHIFT | self.value.span & SPAN_MASK)


def member_span(key: Key, value: Value, span: Span) -> Span | None:
    """What ``Member.own_span`` holds for a member written over ``span``: None for key start to value end."""
    return None if span.start == key.span.start and span.end == value.span.end else span


class VarDef(NamedTuple):
    """`$name = value`: defines a variable; not part of the data."""

    name: str
    value: Value
    name_span: Span
    span: Span


class Statement(NamedTuple):
    """A value alone on its line, without a key (`@json({...})`, `php(echo $out)`): run by the application.

    It is not part of the data. ``key`` is an unnamed key spanning the value, so a tool that walks
    members by their key sees a member without a name.
    """

    value: Value
    span: Span

    @property
    def key(self) -> Key:
        return Key((), (), self.value.span)


class Section(NamedTuple):
    """`[a.b]` and the members under it, up to the next header."""

    key: Key
    members: tuple[Member | VarDef | Statement, ...]
    span: Span


class Comment(NamedTuple):
    text: str
    span: Span


class Document(NamedTuple):
    members: tuple[Member | VarDef | Statement, ...]
    sections: tuple[Section, ...]
    comments: tuple[Comment, ...]
    source: SourceFile

    @property
    def span(self) -> Span:
        return Span(self.source, 0, len(self.source.text))


Scalar: TypeAlias = String | Template | Number | Bool | Null | Range | Word
Value: TypeAlias = (
    String
    | Template
    | Number
    | Bool
    | Null
    | Range
    | Word
    | VarRef
    | Ref
    | Directive
    | Foreign
    | Chain
    | Unary
    | Binary
    | Ternary
    | Array
    | Object
)
