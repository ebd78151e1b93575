"""Inert values: what `loads` leaves in the data where running something would be needed.

`tusklang.loads` never executes a directive; it leaves a ``DirectiveCall`` that says what it is.
An expression that depends on one becomes an ``Expression``. ``tusklang.resolve`` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Identifier:
    """A bare identifier argument: the `REDIS_URL` of `@env(REDIS_URL)`."""

    name: str

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class DirectiveCall:
    """`@name(args)`, not run. ``args`` is None when written without parentheses."""

    name: str
    args: tuple[Any, ...] | None
    location: str = ""

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
class Expression:
    """An expression whose value depends on a directive: its source text and place."""

    text: str
    location: str = ""

    def __repr__(self) -> str:
        return f"<expression {self.text}>"

    def to_json(self) -> dict[str, Any]:
        return {"$expression": self.text, "location": self.location}


def to_jsonable(value: Any) -> Any:
    """Plain JSON data, with inert values as tagged objects (`tusk parse --format json`)."""
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, DirectiveCall | Expression):
        return value.to_json()
    if isinstance(value, Identifier):
        return {"$identifier": value.name}
    return value
