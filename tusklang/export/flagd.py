"""Snapshot -> flagd flag-definition document (https://flagd.dev/schema/v0/flags.json).

The export must make flagd serve every unit the variant our evaluator serves, so each construct is
lowered into JsonLogic that behaves identically under flagd's evaluators (docs/flagd.md has the table):

- bucketing is flagd's ``fractional`` v3 over ``{"cat": [salt + ":", {"var": bucket_by}]}``, exactly
  our ``murmur3(cbor_text(salt:unit))`` (docs/evaluation.md); a gate and a split use two fractionals;
- JsonLogic compares loosely (``"10" == 10``, and flagd-core's Python JsonLogic even has
  ``true === 1``), so every typed comparison carries a type guard built from portable operators
  (jsonlogic.py);
- schedules, ``active_between`` and ``time_window`` compare ``$flagd.timestamp`` (flagd_time.py);
- a prerequisite is the other flag's own targeting, inlined: JsonLogic cannot read another flag's
  result, but it can compute it (same salts, same clock), so the inlined copy serves what that flag
  serves;
- OpenFeature's ``targetingKey`` stands in for the flag's and its prerequisites' ``bucket_by``
  attributes when the context lacks them, as over OFREP (``tusklang.openfeature.TargetingKey``): every
  read of such an attribute is "the attribute unless null, else ``targetingKey``" (``_Exporter.read``);
- what JsonLogic cannot express (ISO-8601 attribute dates, general regular expressions, numbers a
  double cannot hold) is an error diagnostic naming the flag, and the flag is left out - never exported
  with a different meaning.

The export reads only the snapshot, like the evaluator, and is deterministic (the zone table depends
on the installed tz database, like our evaluator's time windows do).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..diagnostics import Diagnostic, Severity
from ..openfeature import TargetingKey
from ..snapshot import load_snapshot
from ..snapshot import models as m
from .flagd_time import HORIZON, TS, time_window, utc_offset
from .jsonlogic import (
    GUARDS,
    Unsupported,
    all_of,
    any_of,
    by_kind,
    contains,
    exact_number,
    is_list,
    is_num,
    is_str,
    json_kind,
    matches,
    negate,
    semver,
    typed_in,
    var,
)

FLAGD_SCHEMA = "https://flagd.dev/schema/v0/flags.json"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_:/-]+$")
# String.replaceAll (the TypeScript core splices `$evaluators` with it) expands these in the replacement.
_JS_REPLACEMENT = re.compile(r"\$[$&`']")
# A prerequisite inlines the other flag's targeting: bound what a chain (or a diamond of chains, which
# repeats shared prerequisites) may add, so flagd's recursive evaluators and the file stay sane.
MAX_NESTING = 500
"""JSON nesting of one flag's targeting (about two levels per JsonLogic operator; each inlined prerequisite
adds at least six). Python's json and flagd-core's JsonLogic recurse once per level, up to ~1000."""
MAX_TARGETING_CHARS = 1_000_000
TARGETING_KEY = {"var": "targetingKey"}  # both cores: null when the context has none


class _TooLarge(Unsupported):
    """Inlined prerequisites beyond the bounds; says the whole chain itself, so it is not wrapped."""


@dataclass(frozen=True)
class _Served:
    """JsonLogic giving the variant a flag serves (never null), with what it costs and what it uses."""

    logic: Any
    chars: int
    depth: int
    windowed: bool


def _depth(value: Any) -> int:
    """JSON nesting depth (iterative: the value may be deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, d = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, d)
            stack.extend((v, d + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, d)
            stack.extend((v, d + 1) for v in item)
    return deepest


def _epoch(value: datetime) -> int | float:
    t = (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return int(t) if t.is_integer() else t


class _Exporter:
    def __init__(self, snap: m.Snapshot) -> None:
        self.snap = snap
        self.scale = snap.scale
        # (segment, stand-ins) -> (body, whether it read an attribute through the targeting key)
        self.bodies: dict[tuple[str, frozenset[str]], tuple[Any, bool]] = {}
        self.evaluators: dict[str, Any] = {}
        self.uses_time_window = False
        self.nesting = 0  # > 0 while building a segment body, which must not hold a `$ref`
        self.windowed: set[str] = set()  # segments whose body holds a time window
        self.served_cache: dict[tuple[str, frozenset[str]], _Served] = {}
        self.refused: dict[str, str] = {}  # flag key -> why it cannot be exported
        self.units = TargetingKey()
        # The attributes the targeting key stands in for while exporting one flag: its bucket_by and its
        # prerequisites' (transitively), as over OFREP. An inlined prerequisite is evaluated with the
        # dependent's context, so it uses the dependent's set, not its own.
        self.stand_in: frozenset[str] = frozenset()
        self.stood_in = False  # the logic being built read an attribute through the targeting key

    def read(self, name: str) -> Any:
        """The context attribute `name` as our evaluator reads it for the flag being exported: with the
        targeting key standing in when `name` is a unit attribute and the context's is null or missing.

        `!==` null, not `!=` (loosely `0 == null` in flagd-core's Python JsonLogic, and json-logic-engine
        raises on `!=` of a list), nor `var`'s default (json-logic-engine's interpreter keeps an explicit
        null). A context without `targetingKey` reads null from it: the attribute as it is, as
        `TargetingKey.missing` substitutes nothing then."""
        x = var(name)
        if name not in self.stand_in or name == "targetingKey":
            return x
        self.stood_in = True
        logic = {"if": [{"!==": [x, None]}, x, TARGETING_KEY]}
        # One shared evaluator per attribute keeps the document small (a unit id is read about a dozen
        # times by its type test); evaluators hold no `$ref`, so segment bodies inline it.
        ref = f"tusklang_{name}_or_targeting_key"
        if self.nesting or not _SAFE_NAME.match(ref) or ref in self.snap.segments:
            return logic
        if self.evaluators.setdefault(ref, logic) != logic:
            return logic
        return {"$ref": ref}

    def table(self, key: str) -> m.Flag:
        return self.snap.flags.get(key) or self.snap.experiments[key]

    # segments ----------------------------------------------------------------------------------

    def segment_body(self, name: str) -> Any:
        """The segment as self-contained JsonLogic (nested segments inlined, never `$ref`: flagd-core
        substitutes evaluators in one pass, so a `$ref` inside an evaluator may stay unresolved)."""
        key = (name, self.stand_in)
        if key not in self.bodies:
            seg = self.snap.segments[name]
            outer, self.uses_time_window = self.uses_time_window, False
            outer_stood, self.stood_in = self.stood_in, False
            self.nesting += 1
            try:
                parts = [self.condition(c, "UTC") for c in seg.conditions]  # segments use UTC (evaluator)
            finally:
                self.nesting -= 1
            if self.uses_time_window:
                self.windowed.add(name)
            self.uses_time_window = outer
            self.bodies[key] = (all_of(parts) if seg.match == "all" else any_of(parts), self.stood_in)
            self.stood_in = outer_stood
        if name in self.windowed:
            self.uses_time_window = True
        body, stood = self.bodies[key]
        self.stood_in = self.stood_in or stood
        return body

    def membership(self, name: str) -> Any:
        if name in self.snap.segments:
            outer_stood, self.stood_in = self.stood_in, False
            body = self.segment_body(name)
            stood, self.stood_in = self.stood_in, outer_stood or self.stood_in
            # flagd-core (Python) splices evaluators with re.sub, which mangles backslashes in the body
            # (JSON escapes such as \" or \u00e9), and the TypeScript core with String.replaceAll, which
            # expands `$&`, `$'`...: such bodies, and names that JSON would escape, are inlined. So is a
            # body that reads a unit attribute through the targeting key: it holds for this flag only.
            text = json.dumps(body)
            if (
                self.nesting
                or stood
                or isinstance(body, bool)
                or not _SAFE_NAME.match(name)
                or "\\" in text
                or _JS_REPLACEMENT.search(json.dumps(body, ensure_ascii=False))
            ):
                return body
            self.evaluators[name] = body
            return {"$ref": name}
        if name == "all_users":
            return True
        # external: membership the application computed, in the context's `segments` list
        segments = self.read("segments")
        return {"and": [is_list(segments), {"some": [segments, {"===": [{"var": ""}, name]}]}]}

    def offset_ref(self, time_zone: str) -> Any:
        """The shared UTC-offset table for one fallback zone, as an evaluator (it is large)."""
        name = f"tusklang_utc_offset_{time_zone}"
        if "timezone" in self.stand_in:  # bucketed by `timezone`: this flag's table reads the targeting key
            return utc_offset(time_zone, self.read("timezone"))
        if self.nesting or not _SAFE_NAME.match(name) or name in self.snap.segments:
            return utc_offset(time_zone)
        self.evaluators[name] = utc_offset(time_zone)
        return {"$ref": name}

    # conditions --------------------------------------------------------------------------------

    def condition(self, cond: Any, time_zone: str) -> Any:
        op = cond.op
        if op == "all":
            return all_of([self.condition(c, time_zone) for c in cond.conditions])
        if op == "any":
            return any_of([self.condition(c, time_zone) for c in cond.conditions])
        if op == "not":
            return negate(self.condition(cond.condition, time_zone))
        if op == "segment":
            return any_of([self.membership(n) for n in cond.segments])
        if op == "time_window":
            self.uses_time_window = True
            days = tuple(cond.days or ())
            return time_window(cond.start_minute, cond.end_minute, days, self.offset_ref(time_zone))
        if op == "active_between":
            parts: list[Any] = [{"<=": [_epoch(cond.start), TS]}]
            if cond.end is not None:
                parts.append({"<": [TS, _epoch(cond.end)]})
            return all_of(parts)
        x = self.read(cond.attribute)
        if op == "exists":
            return {"!==": [x, None]}
        if op == "not_exists":
            return {"===": [x, None]}  # both engines' `var` give null for a missing attribute
        for value in getattr(cond, "values", None) or [getattr(cond, "value", None)]:
            if not exact_number(value):
                raise Unsupported(f"the number {value} in a condition on `{cond.attribute}` is not exact as a double")
        if op == "in":
            return typed_in(x, cond.values)
        if op == "not_in":
            if not cond.values:
                return is_str(x)  # our evaluator: an empty list behaves as a list of strings
            return any_of(
                [{"and": [GUARDS[k](x), {"!": {"in": [x, vals]}}]} for k, vals in by_kind(cond.values).items()]
            )
        if op in ("==", "!=", "<", "<=", ">", ">="):
            want = json_kind(cond.value)
            if want == "boolean" and op not in ("==", "!="):
                return False  # booleans are never ordered
            if want == "string" and op not in ("==", "!=") and any(ord(ch) >= 0xD800 for ch in cond.value):
                # JavaScript orders UTF-16 code units, we (and Python) code points: they disagree between
                # U+E000..U+FFFF and characters beyond U+FFFF. Below U+D800 in the operand, the first
                # difference decides alike in both, whatever the attribute holds.
                raise Unsupported(
                    f"ordering `{cond.attribute}` against {cond.value!r}, which holds a character from U+D800 "
                    "up (flagd's TypeScript core orders UTF-16 code units, not characters)"
                )
            strict = {"==": "===", "!=": "!=="}.get(op, op)
            test = {strict: [x, cond.value]}
            if op == "==" and want == "string":
                return test  # a non-string never equals a string
            return {"and": [GUARDS[want](x), test]}
        if op in ("contains_any", "contains_all"):
            item = {"var": ""}
            # `some` raises on a non-list in flagd's TypeScript JsonLogic: the list test comes first
            if op == "contains_any":
                return {"and": [is_list(x), {"some": [x, typed_in(item, cond.values)]}]} if cond.values else False
            return all_of([is_list(x), *({"some": [x, typed_in(item, [v])]} for v in cond.values)])
        if op in ("starts_with", "ends_with"):
            return {op: [x, cond.value]}  # flagd's operators are false for a non-string
        if op == "contains":
            return contains(x, cond.value)
        if op == "matches":
            return matches(x, cond.value)
        if op.startswith("semver_"):
            return semver(x, op[7:], cond.value)
        if op in ("before", "after"):
            raise Unsupported(f"`{op}` on attribute `{cond.attribute}` (JsonLogic cannot parse ISO-8601 dates)")
        raise Unsupported(f"condition op `{op}`")

    # rules -------------------------------------------------------------------------------------

    def fractional(self, flag: m.Flag, salt: str, weights: list[list[Any]]) -> dict[str, Any]:
        return {"fractional": [{"cat": [f"{salt}:", self.read(flag.bucket_by)]}, *weights]}

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
        name = flag.bucket_by
        ref = f"tusklang_{name}_or_targeting_key_is_unit"
        if name in self.stand_in and name != "targetingKey" and not self.nesting and _SAFE_NAME.match(ref):
            # read a dozen times by the type test: one evaluator per attribute (holding no `$ref`)
            self.nesting += 1
            try:
                body = self.unit_test(self.read(name))
            finally:
                self.nesting -= 1
            if ref not in self.snap.segments and self.evaluators.setdefault(ref, body) == body:
                return {"$ref": ref}
        return self.unit_test(self.read(name))

    @staticmethod
    def unit_test(u: Any) -> Any:
        return {"or": [is_str(u), {"and": [is_num(u), {"===": [{"%": [u, 1]}, 0]}]}]}

    def rules(self, flag: m.Flag) -> tuple[list[Any], Any]:
        """(condition, variant) pairs for `if`, and what an unconditional rule serves (None: no rule
        served; flagd then serves defaultVariant with reason DEFAULT, as we do)."""
        branches: list[Any] = []
        for rule in flag.rules:
            parts = [self.condition(c, flag.time_zone) for c in rule.conditions]
            if rule.rollout is not None or rule.split is not None:
                parts.append(self.unit_ok(flag))
            if rule.rollout is not None:
                parts.append(self.rollout(flag, rule.rollout))
            cond = all_of(parts)
            if cond is False:
                continue  # can never serve
            if rule.split is not None:
                value: Any = self.fractional(flag, rule.split.salt, [[v, w] for v, w in rule.split.weights])
            else:
                value = rule.serve
            if cond is True:
                return branches, value
            branches += [cond, value]
        return branches, None

    # prerequisites -----------------------------------------------------------------------------

    def prerequisite_checks(self, flag: m.Flag, chain: tuple[str, ...]) -> tuple[list[Any], int, int, bool]:
        """`if` branches serving off_variant for each failing prerequisite, in order; with their size,
        depth and whether they read the time of day."""
        branches: list[Any] = []
        chars = depth = 0
        windowed = False
        for prerequisite in flag.prerequisites:
            try:
                served = self.served(prerequisite.flag, (*chain, prerequisite.flag))
            except _TooLarge:
                raise
            except Unsupported as exc:
                raise Unsupported(f"its prerequisite `{prerequisite.flag}` cannot be exported: {exc}") from None
            # variant names are strings, and `served` is always one: no type guard needed
            branches += [{"!": [{"in": [served.logic, list(prerequisite.variants)]}]}, flag.off_variant]
            chars += served.chars + len(json.dumps(prerequisite.variants)) + len(json.dumps(flag.off_variant)) + 20
            depth = max(depth, served.depth + 5)
            windowed = windowed or served.windowed
        return branches, chars, depth, windowed

    @staticmethod
    def bounded(chain: tuple[str, ...], chars: int, depth: int) -> None:
        if depth > MAX_NESTING or chars > MAX_TARGETING_CHARS:
            shown = " -> ".join(chain if len(chain) <= 6 else (*chain[:3], "...", *chain[-2:]))
            raise _TooLarge(
                f"its prerequisites ({shown}), inlined, would nest {depth} levels deep and take {chars:,} "
                f"characters; flagd's evaluators are given at most {MAX_NESTING} levels and "
                f"{MAX_TARGETING_CHARS:,} characters per flag"
            )

    def served(self, key: str, chain: tuple[str, ...]) -> _Served:
        """JsonLogic for the variant flag `key` serves, as `evaluate(key)` would (the snapshot refuses
        cycles, so the recursion ends; MAX_NESTING bounds it well below the chain limit)."""
        cached = (key, self.stand_in)
        if cached in self.served_cache:
            return self.served_cache[cached]
        flag = self.table(key)
        if not flag.enabled:
            found = _Served(flag.off_variant, len(json.dumps(flag.off_variant)), 0, False)
            self.served_cache[cached] = found
            return found
        if key in self.refused:
            raise Unsupported(self.refused[key])
        outer, self.uses_time_window = self.uses_time_window, False
        try:
            branches, final = self.rules(flag)
            windowed = self.uses_time_window
        except Unsupported as exc:
            self.refused[key] = str(exc)
            raise
        finally:
            self.uses_time_window = outer
        checks, chars, depth, pre_windowed = self.prerequisite_checks(flag, chain)
        own = [*branches, flag.default_variant if final is None else final]
        logic = {"if": [*checks, *own]} if len(checks) + len(own) > 1 else own[0]
        chars += len(json.dumps(own))
        depth = max(depth, _depth(own)) + 2
        self.bounded(chain, chars, depth)
        found = _Served(logic, chars, depth, windowed or pre_windowed)
        self.served_cache[cached] = found
        return found

    def targeting(self, flag: m.Flag) -> Any:
        """The flag's targeting, or None when it has neither rules nor prerequisites (flagd: STATIC)."""
        self.stand_in = frozenset(self.units.attributes(self.snap, flag.key))
        # its own rules first: a flag refused for its own construct says so, not its prerequisite's
        branches, final = self.rules(flag)
        checks, chars, depth, windowed = self.prerequisite_checks(flag, (flag.key,))
        self.uses_time_window = self.uses_time_window or windowed
        if not flag.rules and not checks:
            return None
        if checks or branches:
            logic: Any = {"if": [*checks, *branches, final]}
        elif final is not None:
            logic = {"if": [True, final, None]}  # the first rule serves everyone
        else:
            logic = {"if": [False, None, None]}  # rules, none of which can serve: DEFAULT
        chars += len(json.dumps([branches, final]))
        depth = max(depth, _depth([branches, final])) + 2
        self.bounded((flag.key, *(p.flag for p in flag.prerequisites)), chars, depth)
        return logic


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


def _flag(ex: _Exporter, flag: m.Flag, kind: str) -> tuple[dict[str, Any], list[Diagnostic]]:
    diagnostics: list[Diagnostic] = []
    for name, value in flag.variants.items():
        if name == "":
            # flagd's schema wants names of one character or more; its TypeScript core reads an empty
            # defaultVariant as none
            raise Unsupported('a variant named "" (flagd needs at least one character)')
        if not exact_number(value):
            raise Unsupported(f"variant `{name}` holds a number a double cannot hold exactly (above 2^53)")
    meta: dict[str, Any] = {}
    _flatten("", flag.metadata, meta)
    _flatten("tusklang", {"kind": kind, "type": flag.type}, meta)
    if flag.prerequisites:
        # for people reading the flagd document: the targeting holds them inlined
        _flatten("tusklang", {"prerequisites": [p.model_dump() for p in flag.prerequisites]}, meta)
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
        targeting = ex.targeting(flag)
        if targeting is not None:
            out["targeting"] = targeting
    lists = sorted(name for name, value in flag.variants.items() if isinstance(value, list))
    if lists:
        diagnostics.append(
            Diagnostic(
                "flagd-variant-types",
                f"{kind} `{flag.key}`: variant(s) {', '.join(f'`{n}`' for n in lists)} hold a list; both flagd "
                "cores serve it through their object getters, but flagd's schema wants a JSON object for "
                "each variant of an object flag, so strict validators refuse the document",
                severity=Severity.WARNING,
                hint="wrap the list in an object (`{ items = [...] }`) for strict flagd validators",
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
