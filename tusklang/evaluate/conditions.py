"""Conditions compiled to closures at load time.

A compiled check is ``check(ctx, now) -> None | str``: ``None`` when the condition holds, otherwise a
short constant explanation (constant so results can be cached per failure). ``now`` is epoch seconds or
``None`` (read the clock only if the condition needs time).

Semantics a user relies on (docs/evaluation.md):
- a missing (absent or null) attribute never satisfies an attribute condition, ``not_in`` and ``!=``
  included: "not in the blocked list" is not proof of anything when the attribute is unknown. The one
  exception is ``not_exists``, which says exactly that the attribute is missing;
- a wrongly typed attribute (a string compared with a number) does not satisfy the condition and the
  explanation says so; evaluation continues with the next rule (peers serve the default, so do we);
- ``not`` inverts the whole sub-condition, so ``not (country in [DE])`` DOES hold for a missing country.
"""

from __future__ import annotations

import functools
import math
import re
import time
import zoneinfo
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..snapshot import models as m

Check = Callable[[Mapping[str, Any], float | None], str | None]
_MISSING = object()
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def value_type(value: object) -> str:
    """A flag value's type as OpenFeature's typed getters see it: a list is an object too."""
    found = kind(value)
    return "object" if found == "list" else found


def _key(value: object) -> tuple[str, object]:
    """Comparison key that keeps True distinct from 1 (Python sets would merge them)."""
    return (kind(value), value)


def _fmt(values: list[Any]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


def _missing(attr: str) -> str:
    return f"attribute `{attr}` missing from context"


def to_epoch(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def parse_instant(value: object) -> float | None:
    """An attribute as epoch seconds: ISO-8601 string (naive means UTC, a bare date is midnight UTC) or
    a number of epoch seconds. None when it is neither."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            instant = float(value)
        elif isinstance(value, str):
            instant = to_epoch(datetime.fromisoformat(value))
        else:
            return None
    except (ValueError, OverflowError):  # not ISO-8601, or an integer beyond float range (10**400)
        return None
    return instant if math.isfinite(instant) else None


# SemVer 2.0: a pre-release identifier is numeric without leading zeros, or alphanumeric; `fullmatch`
# (not `$`, which also matches before a final newline) so "1.2.3\n" is not a version.
_PRE_ID = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER = re.compile(
    r"v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?"
    rf"(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)


def semver_key(text: str) -> tuple[Any, ...] | None:
    """SemVer 2.0 precedence key; build metadata ignored; missing minor/patch count as 0."""
    match = _SEMVER.fullmatch(text)
    if not match:
        return None
    major, minor, patch, pre = match.groups()
    release = (int(major), int(minor or 0), int(patch or 0))
    if pre is None:
        return (*release, (1,))
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (*release, (0, *ids))


# Versions repeat across users (a few app releases), and parsing one costs more than the rest of a rule:
# the parse of a string is memoised, bounded. A pure function of the text, so never a stale answer.
parsed_version = functools.lru_cache(maxsize=4096)(semver_key)


class SegmentTable:
    """Compiled segments, looked up at call time so segments may reference each other in any order.

    Membership is computed on every evaluation from the context given: nothing is cached per user, so a
    user whose attributes change gets the new answer at once (the seed cached it for an hour).
    """

    def __init__(self, snapshot: m.Snapshot) -> None:
        self.external = frozenset(snapshot.external_segments)
        self.checks: dict[str, Check] = {}
        for name, segment in snapshot.segments.items():
            self.checks[name] = _combine(
                [compile_condition(c, self) for c in segment.conditions], segment.match, f"segment `{name}`"
            )

    def membership(self, name: str) -> Check:
        if name == "all_users" and name not in self.checks:
            return lambda ctx, now: None
        if name in self.checks:
            return lambda ctx, now: self.checks[name](ctx, now)
        detail = f"segment `{name}` not in the context's `segments` list"

        def external(ctx: Mapping[str, Any], now: float | None) -> str | None:
            listed = ctx.get("segments")
            if isinstance(listed, list | tuple | set | frozenset) and name in listed:
                return None
            return detail

        return external


def all_of(checks: list[Check]) -> Check:
    """Every check holds; the first failure explains. Two checks, the common case, without a loop."""
    if not checks:
        return lambda ctx, now: None
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks

        def both(ctx: Mapping[str, Any], now: float | None) -> str | None:
            failed = first(ctx, now)
            return failed if failed is not None else second(ctx, now)

        return both

    def every(ctx: Mapping[str, Any], now: float | None) -> str | None:
        for check in checks:
            failed = check(ctx, now)
            if failed is not None:
                return failed
        return None

    return every


def _combine(checks: list[Check], match: str, label: str) -> Check:
    if match == "all":
        return all_of(checks)
    none_detail = f"none of the {label} conditions hold"

    def any_of(ctx: Mapping[str, Any], now: float | None) -> str | None:
        first = None
        for check in checks:
            failed = check(ctx, now)
            if failed is None:
                return None
            first = first or failed
        return f"{none_detail} (first: {first})" if first else none_detail

    return any_of


def compile_condition(cond: Any, segments: SegmentTable, time_zone: str = "UTC") -> Check:
    op = cond.op
    if op in ("all", "any"):
        return _combine([compile_condition(c, segments, time_zone) for c in cond.conditions], op, op)
    if op == "not":
        inner = compile_condition(cond.condition, segments, time_zone)
        detail = "negated condition holds"
        return lambda ctx, now: detail if inner(ctx, now) is None else None
    if op == "segment":
        return _segment(cond.segments, segments)
    if op == "time_window":
        return _time_window(cond, time_zone)
    if op == "active_between":
        return _active_between(cond)
    builder = _ATTRIBUTE_OPS[op]
    return builder(cond)


def _in(cond: m.InCondition) -> Check:
    attr, negate = cond.attribute, cond.op == "not_in"
    missing = _missing(attr)
    listing = _fmt(cond.values)
    fail = f"attribute `{attr}` {'in' if negate else 'not in'} {listing}"
    kinds = {kind(v) for v in cond.values}
    expected = " or ".join(sorted(kinds)) or "a listed value"
    if kinds <= {"string"}:
        strings = frozenset(cond.values)

        def check_str(ctx: Mapping[str, Any], now: float | None) -> str | None:
            v = ctx.get(attr)
            if type(v) is str:
                return fail if (v in strings) is negate else None
            if v is None:
                return missing
            return f"attribute `{attr}` is a {kind(v)}, expected {expected}"

        return check_str
    keys = frozenset(_key(v) for v in cond.values)

    def check(ctx: Mapping[str, Any], now: float | None) -> str | None:
        v = ctx.get(attr)
        if v is None:
            return missing
        k = kind(v)
        if k not in kinds:
            return f"attribute `{attr}` is a {k}, expected {expected}"
        return fail if (_key(v) in keys) is negate else None

    return check


_ORDER = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _compare(cond: m.CompareCondition) -> Check:
    attr, value, op = cond.attribute, cond.value, cond.op
    missing = _missing(attr)
    want = kind(value)
    unit = f" {cond.unit}" if cond.unit else ""
    fail = f"attribute `{attr}` {op} {value}{unit} does not hold"
    test = _ORDER[op]
    if want == "boolean" and op not in ("==", "!="):
        return lambda ctx, now: f"cannot order booleans ({attr} {op} {value})"
    if op == "==" and want == "string":

        def eq_str(ctx: Mapping[str, Any], now: float | None) -> str | None:
            v = ctx.get(attr)
            if type(v) is str:
                return None if v == value else fail
            if v is None:
                return missing
            return f"attribute `{attr}` is a {kind(v)}, expected a string"

        return eq_str

    def check(ctx: Mapping[str, Any], now: float | None) -> str | None:
        v = ctx.get(attr)
        if v is None:
            return missing
        k = kind(v)
        if k != want:
            return f"attribute `{attr}` is a {k}, expected a {want}"
        return None if test(v, value) else fail

    return check


def _contains(cond: m.ContainsCondition) -> Check:
    attr, need_all = cond.attribute, cond.op == "contains_all"
    missing = _missing(attr)
    keys = frozenset(_key(v) for v in cond.values)
    fail = f"attribute `{attr}` contains {'not all' if need_all else 'none'} of {_fmt(cond.values)}"

    def check(ctx: Mapping[str, Any], now: float | None) -> str | None:
        v = ctx.get(attr)
        if v is None:
            return missing
        if not isinstance(v, list | tuple):
            return f"attribute `{attr}` is a {kind(v)}, expected a list"
        have = {_key(x) for x in v if not isinstance(x, dict | list)}
        ok = keys <= have if need_all else not keys.isdisjoint(have)
        return None if ok else fail

    return check


def _string(cond: m.StringCondition) -> Check:
    attr, value, op = cond.attribute, cond.value, cond.op
    missing = _missing(attr)
    fail = f"attribute `{attr}` does not {op.replace('_', ' ')} {value!r}"
    if op == "starts_with":
        test: Callable[[str], bool] = lambda s: s.startswith(value)  # noqa: E731
    elif op == "ends_with":
        test = lambda s: s.endswith(value)  # noqa: E731
    elif op == "contains":
        fail = f"attribute `{attr}` does not contain {value!r}"
        test = lambda s: value in s  # noqa: E731
    else:
        pattern = re.compile(value)
        test = lambda s: pattern.search(s) is not None  # noqa: E731

    def check(ctx: Mapping[str, Any], now: float | None) -> str | None:
        v = ctx.get(attr)
        if type(v) is str:
            return None if test(v) else fail
        if v is None:
            return missing
        return f"attribute `{attr}` is a {kind(v)}, expected a string"

    return check


def _semver(cond: m.SemverCondition) -> Check:
    attr = cond.attribute
    missing = _missing(attr)
    target = semver_key(cond.value)
    op = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}[cond.op[7:]]
    test = _ORDER[op]
    fail = f"version `{attr}` {op} {cond.value} does not hold"
    if target is None:
        # Validation accepts the operand; if this parser ever does not, the condition cannot hold (never
        # a comparison with None, which would raise on every evaluation).
        unusable = f"version operand {cond.value!r} is not a semantic version"
        return lambda ctx, now: unusable

    def check(ctx: Mapping[str, Any], now: float | None) -> str | None:
        v = ctx.get(attr)
        if isinstance(v, str):
            key = parsed_version(v)
            if key is None:
                return f"attribute `{attr}` is not a semantic version"
            return None if test(key, target) else fail
        if v is None:
            return missing
        return f"attribute `{attr}` is a {kind(v)}, expected a semantic version string"

    return check


def _date(cond: m.DateCondition) -> Check:
    attr, after = cond.attribute, cond.op == "after"
    missing = _missing(attr)
    bound = to_epoch(cond.value)
    fail = f"attribute `{attr}` is not {cond.op} {cond.value.isoformat()}"

    def check(ctx: Mapping[str, Any], now: float | None) -> str | None:
        v = ctx.get(attr)
        if v is None:
            return missing
        instant = parse_instant(v)
        if instant is None:
            if isinstance(v, str):
                return f"attribute `{attr}` is not an ISO-8601 date-time"
            return f"attribute `{attr}` is a {kind(v)}, expected an ISO-8601 date-time or epoch seconds"
        return None if (instant > bound if after else instant < bound) else fail

    return check


def _exists(cond: m.ExistsCondition) -> Check:
    attr = cond.attribute
    if cond.op == "not_exists":
        # The one attribute condition a missing (absent or null) attribute satisfies.
        present = f"attribute `{attr}` is present"
        return lambda ctx, now: None if ctx.get(attr) is None else present
    missing = _missing(attr)
    return lambda ctx, now: missing if ctx.get(attr) is None else None


def _segment(names: list[str], table: SegmentTable) -> Check:
    checks = [table.membership(n) for n in names]
    if len(names) == 1:
        label = f"not in segment `{names[0]}`"
    else:
        label = "in none of the segments " + ", ".join(f"`{n}`" for n in names)
    pairs = list(zip(names, checks))

    def check(ctx: Mapping[str, Any], now: float | None) -> str | None:
        first = None
        for name, member in pairs:
            failed = member(ctx, now)
            if failed is None:
                return None
            if first is None:
                first = f"{name}: {failed}"
        return f"{label} ({first})"

    return check


_ZONES: dict[str, zoneinfo.ZoneInfo | None] = {}


def zone(name: object) -> zoneinfo.ZoneInfo | None:
    """A ZoneInfo for a valid IANA name, else None (memoised, including failures)."""
    if not isinstance(name, str):
        return None
    try:
        return _ZONES[name]
    except KeyError:
        pass
    try:
        found: zoneinfo.ZoneInfo | None = zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        found = None
    if len(_ZONES) < 4096:
        _ZONES[name] = found
    return found


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _time_window(cond: m.TimeWindowCondition, time_zone: str) -> Check:
    start, end = cond.start_minute, cond.end_minute
    fallback = zone(time_zone) or UTC
    days = frozenset(_DAYS.index(d) for d in cond.days) if cond.days else None
    fail = f"local time outside {_hhmm(start)}-{_hhmm(end)} (end exclusive)"
    day_fail = "local day not in " + ",".join(cond.days or [])

    def check(ctx: Mapping[str, Any], now: float | None) -> str | None:
        tz = zone(ctx.get("timezone")) or fallback
        local = datetime.fromtimestamp(time.time() if now is None else now, tz)
        if days is not None and local.weekday() not in days:
            return day_fail
        minute = local.hour * 60 + local.minute
        inside = start <= minute < end if start < end else (minute >= start or minute < end)
        return None if inside else fail

    return check


def _active_between(cond: m.ActiveBetweenCondition) -> Check:
    start = to_epoch(cond.start)
    end = to_epoch(cond.end) if cond.end is not None else float("inf")
    early = f"not active before {cond.start.isoformat()}"
    late = f"no longer active since {cond.end.isoformat()}" if cond.end else ""

    def check(ctx: Mapping[str, Any], now: float | None) -> str | None:
        t = time.time() if now is None else now
        if t < start:
            return early
        return late if t >= end else None

    return check


_ATTRIBUTE_OPS: dict[str, Callable[[Any], Check]] = {
    "in": _in,
    "not_in": _in,
    "contains_any": _contains,
    "contains_all": _contains,
    "starts_with": _string,
    "ends_with": _string,
    "contains": _string,
    "matches": _string,
    "before": _date,
    "after": _date,
    "exists": _exists,
    "not_exists": _exists,
    **{op: _compare for op in _ORDER},
    **{f"semver_{s}": _semver for s in ("eq", "ne", "lt", "le", "gt", "ge")},
}


def describe(cond: Any) -> str:
    """One-line human form of a condition, for explanations."""
    op = cond.op
    if op in ("all", "any"):
        return f"{op}(" + "; ".join(describe(c) for c in cond.conditions) + ")"
    if op == "not":
        return f"not ({describe(cond.condition)})"
    if op == "segment":
        return "segment in " + _fmt(cond.segments)
    if op == "time_window":
        days = f" on {','.join(cond.days)}" if cond.days else ""
        return f"local time in [{_hhmm(cond.start_minute)}, {_hhmm(cond.end_minute)}){days}"
    if op == "active_between":
        return f"now in [{cond.start.isoformat()}, {cond.end.isoformat() if cond.end else '...'})"
    if op in ("exists", "not_exists"):
        return f"{cond.attribute} {'exists' if op == 'exists' else 'does not exist'}"
    if hasattr(cond, "values"):
        return f"{cond.attribute} {op} {_fmt(cond.values)}"
    value = cond.value.isoformat() if isinstance(cond.value, datetime) else repr(cond.value)
    unit = f" {cond.unit}" if getattr(cond, "unit", None) else ""
    return f"{cond.attribute} {op} {value}{unit}"
