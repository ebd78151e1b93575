"""Inert values: what `loads` leaves in the data where running something would be needed.

`tusklang.loads` never executes a directive; it leaves a ``DirectiveCall`` that says what it is.
An expression that depends on one becomes an ``Expression``. ``tusklang.resolve`` runs them.

Some values only the running application can compute (docs/syntax.md, "Runtime-only values"): a
runtime-only directive (`@request.method`, `@learn(...)`: ``DirectiveCall.runtime``), foreign code
(`php(time())`: ``ForeignCall``), a method chain on a value (`@query("Users").count()`:
``MemberChain``), and an expression reading any of them (``Expression.runtime``). No stage of
tusklang runs them; `tusk check` and `tusk compile` report them where a compiled value depends on one.

Where a value was written (``location``, ``span``) does not take part in equality: the same call read
from two places (or read back after ``dumps``) is the same value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .diagnostics import Span


@dataclass(frozen=True, slots=True)
class Identifier:
    """A bare identifier argument: the `REDIS_URL` of `@env(REDIS_URL)`."""

    name: str

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class DirectiveCall:
    """`@name(args)`, not run. ``args`` is None when written without parentheses.

    ``runtime``: the directive is one only the application runs (`@request`, `@learn`, `@x.tsk.get`...).
    """

    name: str
    args: tuple[Any, ...] | None
    location: str = field(default="", compare=False)
    runtime: bool = field(default=False, compare=False)
    span: Span | None = field(default=None, compare=False, repr=False)

    def __repr__(self) -> str:
        if self.args is None:
            return f"@{self.name}"
        return f"@{self.name}({', '.join(repr(a) for a in self.args)})"

    def to_json(self) -> dict[str, Any]:
        return {
            "$directive": self.name,
            "args": None if self.args is None else [to_jsonable(a) for a in self.args],
            "location": self.location,
        }


@dataclass(frozen=True, slots=True)
class Name:
    """A name an ``Expression``'s text reads, and what it meant where the expression was written.

    ``start``/``end``: where the name is in the text (a variable's with its `$`, or its `${...}` in a
    double-quoted string, ``in_string``). ``value``: the key's or variable's value there; ``resolved``
    is false for a name nothing defined (the evaluation stopped before reading it).
    """

    start: int
    end: int
    name: str
    variable: bool
    value: Any = None
    resolved: bool = True
    in_string: bool = False


class _Read:
    # ``Expression.names``: a slot, not a dataclass field, so equality, repr, copies and the walks over
    # fields (tusk check's cache key) leave it out. Bound values are shared, so the names of an
    # expression built from others (`$b = $a + $a`, `$c = $b + $b`...) form a graph that a walk as a
    # tree would take exponential time over.
    __slots__ = ("_names",)


@dataclass(frozen=True, slots=True)
class Expression(_Read):
    """An expression whose value depends on a directive: its source text and place.

    ``runtime``: it reads a runtime-only value, so only the application can compute it.

    ``names``: what each name of the text meant where `loads` read it (``Name``), so that `dumps` writes
    it where the same names mean the same; None when the text holds an object literal (its keys are
    a scope not followed), () for an expression made otherwise than by `loads` (``with_names``). Not
    part of equality, and not kept by a copy or pickle.
    """

    text: str
    location: str = field(default="", compare=False)
    runtime: bool = field(default=False, compare=False)
    span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def names(self) -> tuple[Name, ...] | None:
        names: tuple[Name, ...] | None = getattr(self, "_names", ())
        return names

    def __repr__(self) -> str:
        return f"<expression {self.text}>"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"$expression": self.text, "location": self.location}
        if self.runtime:
            out["runtime"] = True
        return out


@dataclass(frozen=True, slots=True)
class ForeignCall:
    """`php(time())`: a plain call whose code belongs to another language, kept verbatim. Runtime-only."""

    name: str
    code: str
    location: str = field(default="", compare=False)
    span: Span | None = field(default=None, compare=False, repr=False)

    def __repr__(self) -> str:
        return f"{self.name}({self.code})"

    def to_json(self) -> dict[str, Any]:
        return {"$call": self.name, "code": self.code, "location": self.location}


@dataclass(frozen=True, slots=True)
class Link:
    """One link of a ``MemberChain``: `.name` (``args`` None) or `.name(args)`."""

    name: str
    args: tuple[Any, ...] | None = None

    def __repr__(self) -> str:
        if self.args is None:
            return f".{self.name}"
        return f".{self.name}({', '.join(repr(a) for a in self.args)})"

    def to_json(self) -> dict[str, Any]:
        if self.args is None:
            return {"name": self.name}
        return {"name": self.name, "args": [to_jsonable(a) for a in self.args]}


@dataclass(frozen=True, slots=True)
class MemberChain:
    """Member access and method calls on a value only the application has: `@query("Users").count()`."""

    target: Any
    links: tuple[Link, ...]
    location: str = field(default="", compare=False)
    span: Span | None = field(default=None, compare=False, repr=False)

    def __repr__(self) -> str:
        return repr(self.target) + "".join(repr(link) for link in self.links)

    def to_json(self) -> dict[str, Any]:
        return {
            "$chain": to_jsonable(self.target),
            "links": [link.to_json() for link in self.links],
            "location": self.location,
        }


def with_names(expression: Expression, names: tuple[Name, ...] | None) -> Expression:
    """``expression`` with what its names mean (``Expression.names``), as `loads` makes it."""
    object.__setattr__(expression, "_names", names)
    return expression


INERT = (DirectiveCall, Expression, ForeignCall, MemberChain)


def is_runtime_only(value: Any) -> bool:
    """Whether ``value`` is one only the running application can compute."""
    if isinstance(value, ForeignCall | MemberChain):
        return True
    return isinstance(value, DirectiveCall | Expression) and value.runtime


def to_jsonable(value: Any) -> Any:
    """Plain JSON data, with inert values as tagged objects (`tusk parse --format json`)."""
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, INERT):
        return value.to_json()
    if isinstance(value, Identifier):
        return {"$identifier": value.name}
    return value
