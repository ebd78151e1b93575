"""Snapshot -> flagd flag-definition document (https://flagd.dev/schema/v0/flags.json).

The export must make flagd serve every unit the variant our evaluator serves, so each construct is
lowered into JsonLogic that behaves identically under flagd's evaluator (docs/flagd.md has the table):

- bucketing is flagd's ``fractional`` v3 over ``{"cat": [salt + ":", {"var": bucket_by}]}``, exactly
  our ``murmur3(cbor_text(salt:unit))`` (docs/evaluation.md); a gate and a split use two fractionals;
- JsonLogic compares loosely (``"10" == 10``, and flagd-core's Python JsonLogic even has
  ``true === 1``), so every typed comparison carries a type guard built from portable operators;
- schedules, ``active_between`` and ``time_window`` compare ``$flagd.timestamp``; a time window needs
  the UTC offset of the context's zone, so zones are grouped by their offset history over a fixed
  horizon and each group gets a binary search over its transitions;
- what JsonLogic cannot express (ISO-8601 attribute dates, general regular expressions) is an error
  diagnostic naming the flag, and the flag is left out - never exported with a different meaning.

The export reads only the snapshot, like the evaluator, and is deterministic (the zone table depends
on the installed tz database, like our evaluator's time windows do).
"""

from __future__ import annotations

import functools
import json
import re
import zoneinfo
from datetime import UTC, datetime
from typing import Any

from ..diagnostics import Diagnostic, Severity
from ..evaluate.conditions import value_type
from ..snapshot import load_snapshot
from ..snapshot import models as m

FLAGD_SCHEMA = "https://flagd.dev/schema/v0/flags.json"
HORIZON = (datetime(2020, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC))
"""Zone offsets are exact between these instants; outside, the boundary offset is kept."""

TS = {"var": "$flagd.timestamp"}
_BOOL_TEXT = ["true", "false", "True", "False"]  # cat(true): "true" in JSON-logic-js, "True" in Python
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_:/-]+$")
_REGEX_META = set(".^$*+?{}[]\\|()")
_SEMVER_OPS = {"eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


class Unsupported(Exception):
    """A construct flagd cannot express with the same meaning."""


# --- type guards --------------------------------------------------------------------------------
# JsonLogic has no typeof; these use only portable operators. Each is false for a missing/null value.


def _var(name: str) -> dict[str, Any]:
    if name == "" or "." in name or name == "$flagd":
        # flagd's `var` splits on dots (a flat key `a.b` is unreachable) and owns `$flagd`.
        raise Unsupported(f"attribute name {name!r} cannot be read by flagd's `var`")
    return {"var": name}


def is_str(x: Any) -> dict[str, Any]:
    return {"===": [x, {"cat": [x]}]}


def is_bool(x: Any) -> dict[str, Any]:
    # `in [true, false]` alone admits 1 and 0 in Python JsonLogic (1 == True); cat tells them apart.
    return {"and": [{"in": [x, [True, False]]}, {"in": [{"cat": [x]}, _BOOL_TEXT]}]}


def is_list(x: Any) -> dict[str, Any]:
    # `merge` flattens a list into the new one, so only a list is not an element of merge([x]); no
    # operator here raises for any type in flagd's Python or TypeScript JsonLogic
    return {"!": {"in": [x, {"merge": [x]}]}}


def is_obj(x: Any) -> dict[str, Any]:
    # `cat` of an object: "[object Object]" in JavaScript, "{...}" in Python (only asked of non-strings)
    # (`substr`, not flagd's `starts_with`: custom operators fail inside `some` in the TypeScript core)
    text = {"cat": [x]}
    return {"or": [{"===": [text, "[object Object]"]}, {"===": [{"substr": [text, 0, 1]}, "{"]}]}


def is_num(x: Any) -> dict[str, Any]:
    # `+` decides, but flagd's TypeScript JsonLogic raises on `+` of a string, list or object, so those
    # are ruled out first with operators that never raise (`and` stops at the first false)
    return {
        "and": [
            {"!": is_str(x)},
            {"!==": [x, None]},
            {"!": is_list(x)},
            {"!": is_obj(x)},
            {"!": {"in": [{"cat": [x]}, _BOOL_TEXT]}},
            {"===": [x, {"+": [x]}]},
        ]
    }


_GUARDS = {"string": is_str, "number": is_num, "boolean": is_bool}


def _by_kind(values: list[Any]) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {}
    for v in values:
        groups.setdefault(_json_kind(v), []).append(v)
    return dict(sorted(groups.items()))


def _any(parts: list[Any]) -> Any:
    if not parts:
        return False
    return parts[0] if len(parts) == 1 else {"or": parts}


def _all(parts: list[Any]) -> Any:
    parts = [p for p in parts if p is not True]
    if any(p is False for p in parts):
        return False
    if not parts:
        return True
    return parts[0] if len(parts) == 1 else {"and": parts}


def typed_in(x: Any, values: list[Any]) -> Any:
    """x equals one of the values with the same JSON type (`true` is not `1`, `1` is `1.0`)."""
    parts = []
    for k, vals in _by_kind(values).items():
        if k == "string":
            parts.append({"in": [x, vals]})  # a non-string never equals a string: no guard needed
        else:
            parts.append({"and": [_GUARDS[k](x), {"in": [x, vals]}]})
    return _any(parts)


# --- conditions ---------------------------------------------------------------------------------


def _epoch(value: datetime) -> int | float:
    t = (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return int(t) if t.is_integer() else t


def _literal_regex(pattern: str, x: Any) -> Any:
    """`matches` for the regexes that are literals (optionally `^`-anchored); others are unsupported.
    A trailing `$` is not mapped to ends_with: Python's `$` also matches before a final newline."""
    anchored = pattern.startswith("^")
    body = pattern[1:] if anchored else pattern
    if _REGEX_META & set(body):
        raise Unsupported(f"regular expression {pattern!r} (JsonLogic has no regex; only literals export)")
    if anchored:
        return {"starts_with": [x, body]}
    return _all([is_str(x), {"in": [body, x]}])


class _Exporter:
    def __init__(self, snap: m.Snapshot) -> None:
        self.snap = snap
        self.scale = snap.scale
        self.bodies: dict[str, Any] = {}
        self.evaluators: dict[str, Any] = {}
        self.uses_time_window = False
        self.nesting = 0  # > 0 while building a segment body, which must not hold a `$ref`
        self.windowed: set[str] = set()  # segments whose body holds a time window

    # segments ----------------------------------------------------------------------------------

    def segment_body(self, name: str) -> Any:
        """The segment as self-contained JsonLogic (nested segments inlined, never `$ref`: flagd-core
        substitutes evaluators in one pass, so a `$ref` inside an evaluator may stay unresolved)."""
        if name not in self.bodies:
            seg = self.snap.segments[name]
            outer, self.uses_time_window = self.uses_time_window, False
            self.nesting += 1
            try:
                parts = [self.condition(c, "UTC") for c in seg.conditions]  # segments use UTC (evaluator)
            finally:
                self.nesting -= 1
            if self.uses_time_window:
                self.windowed.add(name)
            self.uses_time_window = outer
            self.bodies[name] = _all(parts) if seg.match == "all" else _any(parts)
        if name in self.windowed:
            self.uses_time_window = True
        return self.bodies[name]

    def membership(self, name: str) -> Any:
        if name in self.snap.segments:
            body = self.segment_body(name)
            # flagd-core splices evaluators with re.sub, which mangles backslashes in the body (JSON
            # escapes such as \" or \u00e9): such bodies, and names that JSON would escape, are inlined.
            if self.nesting or isinstance(body, bool) or not _SAFE_NAME.match(name) or "\\" in json.dumps(body):
                return body
            self.evaluators[name] = body
            return {"$ref": name}
        if name == "all_users":
            return True
        # external: membership the application computed, in the context's `segments` list
        segments = {"var": "segments"}
        return {"and": [is_list(segments), {"some": [segments, {"===": [{"var": ""}, name]}]}]}

    def offset_ref(self, time_zone: str) -> Any:
        """The shared UTC-offset table for one fallback zone, as an evaluator (it is large)."""
        name = f"tusklang_utc_offset_{time_zone}"
        if self.nesting or not _SAFE_NAME.match(name) or name in self.snap.segments:
            return utc_offset(time_zone)
        self.evaluators[name] = utc_offset(time_zone)
        return {"$ref": name}

    # conditions --------------------------------------------------------------------------------

    def condition(self, cond: Any, time_zone: str) -> Any:
        op = cond.op
        if op == "all":
            return _all([self.condition(c, time_zone) for c in cond.conditions])
        if op == "any":
            return _any([self.condition(c, time_zone) for c in cond.conditions])
        if op == "not":
            inner = self.condition(cond.condition, time_zone)
            return (not inner) if isinstance(inner, bool) else {"!": [inner]}
        if op == "segment":
            return _any([self.membership(n) for n in cond.segments])
        if op == "time_window":
            self.uses_time_window = True
            days = tuple(cond.days or ())
            return time_window(cond.start_minute, cond.end_minute, days, self.offset_ref(time_zone))
        if op == "active_between":
            parts: list[Any] = [{"<=": [_epoch(cond.start), TS]}]
            if cond.end is not None:
                parts.append({"<": [TS, _epoch(cond.end)]})
            return _all(parts)
        x = _var(cond.attribute)
        if op == "exists":
            return {"!==": [x, None]}
        if op == "in":
            return typed_in(x, cond.values)
        if op == "not_in":
            if not cond.values:
                return is_str(x)  # our evaluator: an empty list behaves as a list of strings
            parts = []
            for k, vals in _by_kind(cond.values).items():
                parts.append({"and": [_GUARDS[k](x), {"!": {"in": [x, vals]}}]})
            return _any(parts)
        if op in ("==", "!=", "<", "<=", ">", ">="):
            want = _json_kind(cond.value)
            if want == "boolean" and op not in ("==", "!="):
                return False  # booleans are never ordered
            strict = {"==": "===", "!=": "!=="}.get(op, op)
            test = {strict: [x, cond.value]}
            if op == "==" and want == "string":
                return test  # a non-string never equals a string
            return {"and": [_GUARDS[want](x), test]}
        if op in ("contains_any", "contains_all"):
            item = {"var": ""}
            # `some` raises on a non-list in flagd's TypeScript JsonLogic: the list test comes first
            if op == "contains_any":
                return {"and": [is_list(x), {"some": [x, typed_in(item, cond.values)]}]} if cond.values else False
            return _all([is_list(x), *({"some": [x, typed_in(item, [v])]} for v in cond.values)])
        if op in ("starts_with", "ends_with"):
            return {op: [x, cond.value]}  # flagd's operators are false for a non-string
        if op == "matches":
            return _literal_regex(cond.value, x)
        if op.startswith("semver_"):
            # flagd strips `V` too and would read numbers as versions.
            return {
                "and": [
                    is_str(x),
                    {"!": {"starts_with": [x, "V"]}},
                    {"sem_ver": [x, _SEMVER_OPS[op[7:]], cond.value]},
                ]
            }
        if op in ("before", "after"):
            raise Unsupported(f"`{op}` on attribute `{cond.attribute}` (JsonLogic cannot parse ISO-8601 dates)")
        raise Unsupported(f"condition op `{op}`")

    # rules -------------------------------------------------------------------------------------

    def fractional(self, flag: m.Flag, salt: str, weights: list[list[Any]]) -> dict[str, Any]:
        return {"fractional": [{"cat": [f"{salt}:", _var(flag.bucket_by)]}, *weights]}

    def gate(self, flag: m.Flag, rollout: m.Rollout, pct: int) -> Any:
        if pct <= 0:
            return False
        if pct >= self.scale:
            return True
        pick = self.fractional(flag, rollout.salt, [["in", pct], ["out", self.scale - pct]])
        return {"===": [pick, "in"]}

    def rollout(self, flag: m.Flag, rollout: m.Rollout) -> Any:
        if rollout.percentage is not None:
            return self.gate(flag, rollout, rollout.percentage)
        steps = rollout.schedule or []
        branches: list[Any] = []
        previous: Any = False  # 0% before the first step
        for step in steps:
            branches += [{"<": [TS, _epoch(step.at)]}, previous]
            previous = self.gate(flag, rollout, step.percentage)
        if all(b is previous for b in branches[1::2]):
            return previous
        return {"if": [*branches, previous]}

    def unit_ok(self, flag: m.Flag) -> Any:
        # Our unit id is a string or an integer; anything else makes the rule pass (never "null").
        u = _var(flag.bucket_by)
        return {"or": [is_str(u), {"and": [is_num(u), {"===": [{"%": [u, 1]}, 0]}]}]}

    def targeting(self, flag: m.Flag) -> Any:
        branches: list[Any] = []
        for rule in flag.rules:
            parts = [self.condition(c, flag.time_zone) for c in rule.conditions]
            if rule.rollout is not None or rule.split is not None:
                parts.append(self.unit_ok(flag))
            if rule.rollout is not None:
                parts.append(self.rollout(flag, rule.rollout))
            cond = _all(parts)
            if cond is False:
                continue  # can never serve
            if rule.split is not None:
                value: Any = self.fractional(flag, rule.split.salt, [[v, w] for v, w in rule.split.weights])
            else:
                value = rule.serve
            if cond is True:
                return {"if": [*branches, value]} if branches else {"if": [True, value, None]}
            branches += [cond, value]
        # null: no rule served, flagd serves defaultVariant with reason DEFAULT, as we do
        return {"if": [*branches, None]} if branches else {"if": [False, None, None]}


# --- time windows -------------------------------------------------------------------------------


def _offset(tz: zoneinfo.ZoneInfo, t: int) -> int:
    delta = datetime.fromtimestamp(t, tz).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


@functools.cache
def zone_offsets(name: str) -> tuple[tuple[int, int], ...]:
    """(from, utc offset seconds) steps of a zone over the horizon; the first step's `from` is 0.

    Sampled weekly, each change located to the second by bisection: no zone changes its offset twice
    within a week (transitions are months apart)."""
    tz = zoneinfo.ZoneInfo(name)
    start, end = (int(h.timestamp()) for h in HORIZON)
    week = 7 * 86400
    current = _offset(tz, start)
    steps = [(0, current)]
    t = start
    while t < end:
        nxt = min(t + week, end)
        o = _offset(tz, nxt)
        if o != current:
            lo, hi = t, nxt
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset(tz, mid) == current:
                    lo = mid
                else:
                    hi = mid
            current = _offset(tz, hi)
            steps.append((hi, current))
            t = hi  # re-scan from the change, so a second change within the same week is found too
            continue
        t = nxt
    return tuple(steps)


@functools.cache
def zone_groups() -> tuple[tuple[tuple[tuple[int, int], ...], tuple[str, ...]], ...]:
    """Every loadable IANA zone, grouped by identical offset history over the horizon."""
    groups: dict[tuple[tuple[int, int], ...], list[str]] = {}
    for name in sorted(zoneinfo.available_timezones()):
        try:
            groups.setdefault(zone_offsets(name), []).append(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            continue
    return tuple(sorted(((k, tuple(v)) for k, v in groups.items()), key=lambda g: g[1][0]))


_DAY = 86400


def _offset_tree(steps: tuple[tuple[int, int], ...], ts: Any) -> Any:
    """The zone's UTC offset in seconds at `ts`: a binary search over its steps."""
    if len(steps) == 1:
        return steps[0][1]
    mid = len(steps) // 2
    return {"if": [{"<": [ts, steps[mid][0]]}, _offset_tree(steps[:mid], ts), _offset_tree(steps[mid:], ts)]}


def _search(keys: list[Any], leaf: Any, probe: Any) -> Any:
    """Binary search over sorted keys with `<` on `probe`; `leaf(i)` is the node for keys[i]."""
    if len(keys) == 1:
        return leaf(0)
    mid = len(keys) // 2
    left = _search(keys[:mid], leaf, probe)
    right = _search(keys[mid:], lambda i: leaf(mid + i), probe)
    return {"if": [{"<": [probe, keys[mid]]}, left, right]}


@functools.cache
def _utc_offset_json(time_zone: str) -> str:
    """Two binary searches instead of a scan of ~600 names on every evaluation: the context's zone name
    -> its offset group (-1: the fallback zone's offsets), then the group -> an offset tree over the
    timestamp. `reduce` over one item binds [group, timestamp] to `current` between the two."""
    try:
        fallback = zone_offsets(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        fallback = zone_offsets("UTC")  # our evaluator: an invalid flag zone means UTC
    groups = [(steps, names) for steps, names in zone_groups() if steps != fallback]
    if not groups:
        return json.dumps(_offset_tree(fallback, TS))
    index = sorted((name, i) for i, (_, names) in enumerate(groups) for name in names)
    tz = {"var": "timezone"}
    names = [n for n, _ in index]
    # `<` only steers the search; the leaf's `===` decides, so a non-string zone ends at -1
    by_name = _search(names, lambda i: {"if": [{"===": [tz, index[i][0]]}, index[i][1], -1]}, tz)
    # flagd's TypeScript JsonLogic raises on `<` between a number (or list, or boolean) and a string:
    # only a string zone enters the search
    by_name = {"if": [is_str(tz), by_name, -1]}
    trees = [_offset_tree(fallback, {"var": "current.1"})]
    trees += [_offset_tree(steps, {"var": "current.1"}) for steps, _ in groups]
    by_group = _search(list(range(-1, len(groups))), lambda i: trees[i], {"var": "current.0"})
    return json.dumps({"reduce": [[[by_name, TS]], by_group, 0]})


def utc_offset(time_zone: str) -> Any:
    """UTC offset (seconds) of the context's `timezone` if it is a valid IANA name, else of `time_zone`."""
    return json.loads(_utc_offset_json(time_zone))


def time_window(start: int, end: int, days: tuple[str, ...], offset: Any) -> Any:
    """Local minute in [start, end) (crossing midnight when start > end), optionally on given weekdays.

    With sod the local second of the day, the window holds iff (sod - 60 start) mod 86400 <
    (60 end - 60 start) mod 86400, one comparison for both window shapes; the local time feeds it once,
    so the offset table is evaluated once."""
    s = start * 60
    width = (end * 60 - s) % _DAY
    if not days:
        return {"<": [{"%": [{"+": [TS, offset, _DAY - s]}, _DAY]}, width]}
    # `reduce` over a one-item list binds the local time to `current` for the two tests below
    local = {"var": "current"}
    sod = {"%": [local, _DAY]}
    weekday = {"%": [{"+": [{"/": [{"-": [local, sod]}, _DAY]}, 3]}, 7]}  # 1970-01-01 was a Thursday
    body = {
        "and": [
            {"in": [weekday, sorted(_DAYS.index(d) for d in days)]},
            {"<": [{"%": [{"+": [local, _DAY - s]}, _DAY]}, width]},
        ]
    }
    return {"reduce": [[{"+": [TS, offset]}], body, False]}


# --- document -----------------------------------------------------------------------------------


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """flagd metadata values are scalars: nested objects become dotted keys, lists and null JSON text."""
    if isinstance(value, dict):
        for k in sorted(value):
            _flatten(f"{prefix}.{k}" if prefix else str(k), value[k], out)
    elif isinstance(value, bool | int | float | str):
        if prefix:
            out[prefix] = value
    elif prefix:
        out[prefix] = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _json_kind(value: Any) -> str:
    """flagd's variant types: boolean, number, string, and everything else (lists, maps, null) an object."""
    found = value_type(value)
    return found if found in _GUARDS else "object"


def _flag(ex: _Exporter, flag: m.Flag, kind: str) -> tuple[dict[str, Any], list[Diagnostic]]:
    diagnostics: list[Diagnostic] = []
    meta: dict[str, Any] = {}
    _flatten("", flag.metadata, meta)
    _flatten("tusklang", {"kind": kind, "type": flag.type}, meta)
    if isinstance(flag, m.Experiment):
        _flatten("tusklang.metrics", flag.metrics or {}, meta)
        _flatten("tusklang.analysis", flag.analysis or {}, meta)
    out: dict[str, Any] = {"state": "ENABLED", "variants": dict(flag.variants), "metadata": meta}
    if not flag.enabled:
        # flagd's DISABLED serves the caller's code default; we serve off_variant: keep our meaning.
        meta["tusklang.disabled"] = True
        out["defaultVariant"] = flag.off_variant
    else:
        out["defaultVariant"] = flag.default_variant
        if flag.rules:
            out["targeting"] = ex.targeting(flag)
    kinds = sorted({_json_kind(v) for v in flag.variants.values()})
    if len(kinds) > 1:
        diagnostics.append(
            Diagnostic(
                "flagd-variant-types",
                f"{kind} `{flag.key}`: variants mix JSON types ({', '.join(kinds)}); flagd's schema wants one "
                "type per flag, and a typed flagd getter returns TYPE_MISMATCH for a variant of another type",
                severity=Severity.WARNING,
                hint="give every variant the same type (e.g. all objects) for strict flagd validators",
            )
        )
    return out, diagnostics


def to_flagd(snapshot: dict[str, Any] | str | m.Snapshot) -> tuple[dict[str, Any], list[Diagnostic]]:
    """The flagd document for a snapshot, and diagnostics. An error diagnostic names a flag that flagd
    cannot express with the same meaning; that flag is left out of the document."""
    snap = snapshot if isinstance(snapshot, m.Snapshot) else load_snapshot(snapshot)
    ex = _Exporter(snap)
    flags: dict[str, Any] = {}
    diagnostics: list[Diagnostic] = []
    for kind, table in (("flag", snap.flags), ("experiment", snap.experiments)):
        for key in sorted(table):
            flag = table[key]
            ex.uses_time_window = False
            try:
                out, found = _flag(ex, flag, kind)
            except Unsupported as exc:
                diagnostics.append(
                    Diagnostic(
                        "flagd-unsupported",
                        f"{kind} `{key}` cannot be exported to flagd: {exc}",
                        hint="rewrite the rule with constructs listed in docs/flagd.md, or keep this flag "
                        "on the tusklang evaluator",
                    )
                )
                continue
            flags[key] = out
            diagnostics.extend(found)
            if ex.uses_time_window:
                lo, hi = (h.date().isoformat() for h in HORIZON)
                diagnostics.append(
                    Diagnostic(
                        "flagd-time-horizon",
                        f"{kind} `{key}`: its time window uses zone offsets exact from {lo} to {hi} "
                        "(outside, the boundary offsets are kept)",
                        severity=Severity.INFO,
                    )
                )
    set_meta: dict[str, Any] = {}
    _flatten("tusklang", {"format": snap.format, "scale": snap.scale, "provenance": snap.provenance}, set_meta)
    document: dict[str, Any] = {"$schema": FLAGD_SCHEMA, "flags": flags, "metadata": set_meta}
    if ex.evaluators:
        document["$evaluators"] = dict(sorted(ex.evaluators.items()))
    return document, diagnostics


def dumps_flagd(document: dict[str, Any]) -> str:
    """Canonical text, byte-identical for equal documents: sorted keys, UTF-8, one line per flag field
    (the structure is indented three levels deep, the JsonLogic below stays on one line: indenting the
    zone tables would make the file ten times larger)."""
    return _dump(document, 0) + "\n"


def _dump(value: Any, depth: int) -> str:
    if depth >= 3 or not isinstance(value, dict) or not value:
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    pad = "  " * (depth + 1)
    items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {_dump(value[k], depth + 1)}" for k in sorted(value)]
    return "{\n" + ",\n".join(items) + "\n" + "  " * depth + "}"
