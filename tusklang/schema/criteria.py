"""The grammar of segment criteria: ``attribute = "<= 30 days"`` becomes a typed predicate.

    criterion  := true | false | number | [scalar, ...] | string
    string     := op number [unit]       ">= 5 features", "<= 30 days", ">= 4.0", ">= 5 per week"
                | [op] word              "premium" (equality), "!= free"
    op         := "<=" | "<" | ">=" | ">" | "==" | "!="
    unit       := count-unit | time-unit | [count-unit] "per" period
    count-unit := times | features | sessions | purchases | items | seats | users | events | visits
    time-unit  := seconds | minutes | hours | days | weeks | months | years   (singular accepted)
    period     := second | minute | hour | day | week | month | year

A bool, number or word compares with ``==``; a list means "one of" (``in``). The unit is kept in the
predicate (plural, "per week" as ``per_week``): it documents what the context attribute must hold
(``account_age`` in days). Anything else is an error at the string's position.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

COUNT_UNITS = ("times", "features", "sessions", "purchases", "items", "seats", "users", "events", "visits")
TIME_UNITS = ("seconds", "minutes", "hours", "days", "weeks", "months", "years")
PERIODS = ("second", "minute", "hour", "day", "week", "month", "year")
_OPS = ("<=", ">=", "==", "!=", "<", ">")
_NUMBER = re.compile(r"(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)(?:\s+(.*))?")
_WORD = re.compile(r"(?:(==|!=)\s*)?([A-Za-z_][A-Za-z0-9_.-]*)")


@dataclass(frozen=True)
class Predicate:
    attribute: str
    op: str
    value: Any
    unit: str | None = None

    def to_condition(self) -> dict[str, Any]:
        if self.op == "in":
            return {"op": "in", "attribute": self.attribute, "values": list(self.value)}
        condition: dict[str, Any] = {"op": self.op, "attribute": self.attribute, "value": self.value}
        if self.unit is not None:
            condition["unit"] = self.unit
        return condition


class CriterionError(ValueError):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def _plural(word: str, choices: tuple[str, ...]) -> str | None:
    for choice in choices:
        if word in (choice, choice.removesuffix("s")):
            return choice
    return None


def parse_unit(text: str) -> str:
    words = text.split()
    if len(words) == 1:
        unit = _plural(words[0], COUNT_UNITS) or _plural(words[0], TIME_UNITS)
        if unit:
            return unit
    elif len(words) == 2 and words[0] == "per" and words[1] in PERIODS:
        return f"per_{words[1]}"
    elif len(words) == 3 and words[1] == "per" and words[2] in PERIODS:
        unit = _plural(words[0], COUNT_UNITS)
        if unit:
            return f"{unit}_per_{words[2]}"
    known = [*COUNT_UNITS, *TIME_UNITS, *(f"per {p}" for p in PERIODS)]
    close = difflib.get_close_matches(text, known, n=1)
    raise CriterionError(
        f"unknown unit {text!r}",
        f"did you mean {close[0]!r}?" if close else "units: " + ", ".join(known),
    )


def parse_criterion(attribute: str, value: object) -> Predicate:
    if isinstance(value, bool):
        return Predicate(attribute, "==", value)
    if isinstance(value, int | float):
        return Predicate(attribute, "==", value)
    if isinstance(value, list):
        if not value or not all(isinstance(v, str | int | float | bool) for v in value):
            raise CriterionError(f"criterion `{attribute}` must list one or more scalars")
        return Predicate(attribute, "in", tuple(value))
    if not isinstance(value, str):
        raise CriterionError(f"criterion `{attribute}` has a {type(value).__name__}; expected a string")
    text = value.strip()
    number = _NUMBER.fullmatch(text)
    if number:
        op, digits, unit = number.groups()
        parsed: int | float = float(digits) if "." in digits else int(digits)
        return Predicate(attribute, op, parsed, parse_unit(unit) if unit else None)
    word = _WORD.fullmatch(text)
    if word and word.group(2) not in ("per",):
        return Predicate(attribute, word.group(1) or "==", word.group(2))
    raise CriterionError(
        f"criterion `{attribute} = {value!r}` is outside the criteria grammar",
        'write an operator, a number and an optional unit (">= 5 features", "<= 30 days", '
        '">= 5 per week"), a single word ("premium"), true/false, or a list of values',
    )
