"""Loading a snapshot: JSON parse, shape validation, then whole-document checks.

Every problem becomes a Diagnostic whose message names the JSON path (``$.flags.x.rules[0].serve``), so
a corrupt snapshot is reported, never half-loaded. Snapshots arrive from files an operator (or a broken
deploy) can replace at any time, so *every* malformed input is a ``TuskError``: too deep, numbers that
are not finite, segment chains of any length, regular expressions Python cannot compile.
"""

from __future__ import annotations

import json
import math
import zoneinfo
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from .. import safejson
from ..diagnostics import Diagnostic, TuskError
from ..limits import MAX_DEPTH
from .format import FORMAT
from .format import TYPE_CHECKS as _TYPE_CHECKS
from .format import TYPE_NAMES as TYPE_NAMES
from .format import clip as _clip
from .format import is_semver as is_semver
from .format import regex_problem as regex_problem
from .format import value_type as value_type
from .models import (
    Condition,
    Flag,
    LogicalCondition,
    NotCondition,
    SegmentCondition,
    SemverCondition,
    Snapshot,
    StringCondition,
)
from .prerequisites import MAX_CHAIN
from .prerequisites import cycles as prerequisite_cycles
from .prerequisites import too_long as prerequisite_chains_too_long

CODE_JSON = "snapshot-json"
CODE_INVALID = "snapshot-invalid"
CODE_FORMAT = "snapshot-format"
BUILTIN_SEGMENTS = frozenset({"all_users"})


def json_path(loc: tuple[int | str, ...]) -> str:
    out = "$"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def load_snapshot(source: str | bytes | dict[str, Any] | Snapshot) -> Snapshot:
    """Parse and validate a snapshot; raise TuskError (every problem, with its JSON path) if invalid."""
    if isinstance(source, Snapshot):
        return source
    if isinstance(source, str | bytes | bytearray):
        try:
            data = safejson.loads(source)
        except safejson.JSONInputError as exc:
            raise TuskError([Diagnostic(CODE_JSON, f"snapshot: {exc}")]) from None
    else:
        data = source
        if safejson.depth_exceeds(data):
            raise TuskError([Diagnostic(CODE_INVALID, f"$: snapshot nested deeper than {MAX_DEPTH} levels")])
    where = non_finite_path(data)
    if where is not None:
        # NaN and Infinity are not JSON (Python reads them, and 1e999 as inf): a variant or metadata value
        # like that could never be served back as JSON, and a comparison with NaN is always false.
        raise TuskError([Diagnostic(CODE_INVALID, f"{where}: number is not finite (NaN or out of range)")])
    try:
        return _validated(data)
    except TuskError:
        raise
    except Exception as exc:  # a checker bug must not reach the caller as a traceback (logged by it)
        raise TuskError(
            [Diagnostic(CODE_INVALID, f"snapshot could not be checked: {type(exc).__name__}: {_clip(str(exc))}")]
        ) from exc


def non_finite_path(value: Any) -> str | None:
    """The JSON path of the first float that is NaN or infinite in ``value``, else None (iterative)."""
    stack: list[tuple[Any, str]] = [(value, "$")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return path
        elif isinstance(item, dict):
            stack.extend((child, f"{path}.{key}") for key, child in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(item))
    return None


def _validated(data: Any) -> Snapshot:
    if not isinstance(data, dict):
        raise TuskError([Diagnostic(CODE_INVALID, f"$: snapshot must be a JSON object, not {_kind(data)}")])
    if data.get("format") != FORMAT:
        raise TuskError(
            [
                Diagnostic(
                    CODE_FORMAT,
                    f"$.format: expected {FORMAT!r}, found {data.get('format')!r}",
                    hint="this evaluator reads snapshot format version 1 only",
                )
            ]
        )
    try:
        snapshot = Snapshot.model_validate(data)
    except ValidationError as exc:
        raise TuskError(
            [
                Diagnostic(CODE_INVALID, f"{json_path(tuple(err['loc']))}: {err['msg']}")
                for err in exc.errors(include_url=False)
            ]
        ) from None
    problems = list(_document_problems(snapshot))
    if problems:
        raise TuskError([Diagnostic(CODE_INVALID, p) for p in problems])
    return snapshot


def _kind(value: object) -> str:
    kinds = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
    return kinds.get(type(value), "null")


def _document_problems(snap: Snapshot) -> Iterator[str]:
    known_segments = set(snap.segments) | set(snap.external_segments) | BUILTIN_SEGMENTS
    for name, segment in snap.segments.items():
        for i, cond in enumerate(segment.conditions):
            yield from _condition_problems(cond, f"$.segments.{name}.conditions[{i}]", known_segments)
    yield from _segment_cycles(snap)
    for section, flags in (("flags", snap.flags), ("experiments", snap.experiments)):
        for key, flag in flags.items():
            yield from _flag_problems(flag, f"$.{section}.{key}", key, snap.scale, known_segments)
    for key in set(snap.flags) & set(snap.experiments):
        yield f"$.experiments.{key}: key also used by a flag; flag and experiment keys must be distinct"
    yield from _prerequisite_problems(snap)


def _flag_problems(flag: Flag, path: str, key: str, scale: int, segments: set[str]) -> Iterator[str]:
    if flag.key != key:
        yield f"{path}.key: {flag.key!r} differs from its map key {key!r}"
    check = _TYPE_CHECKS[flag.type]
    for name, value in flag.variants.items():
        if not check(value):
            # Compilers before typed variants wrote `object` for flags serving `true` and a string: a
            # typed getter failed on one of the two. Recompiling gives the flag one type.
            yield (
                f"{path}.variants.{name}: value {_clip(json_text(value))} is not of the flag type "
                f"{flag.type} ({TYPE_NAMES[flag.type]})"
            )
    for field in ("off_variant", "default_variant"):
        if getattr(flag, field) not in flag.variants:
            yield f"{path}.{field}: unknown variant {getattr(flag, field)!r}"
    try:
        zoneinfo.ZoneInfo(flag.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        yield f"{path}.time_zone: unknown IANA time zone {flag.time_zone!r}"
    seen: set[str] = set()
    for i, rule in enumerate(flag.rules):
        rpath = f"{path}.rules[{i}]"
        if rule.id in seen:
            yield f"{rpath}.id: duplicate rule id {rule.id!r}"
        seen.add(rule.id)
        for j, cond in enumerate(rule.conditions):
            yield from _condition_problems(cond, f"{rpath}.conditions[{j}]", segments)
        if (rule.split is None) == (rule.serve is None):
            yield f"{rpath}: exactly one of `serve` and `split` is required"
        if rule.serve is not None and rule.serve not in flag.variants:
            yield f"{rpath}.serve: unknown variant {rule.serve!r}"
        if rule.split is not None:
            total = 0
            for k, (variant, weight) in enumerate(rule.split.weights):
                total += weight
                if variant not in flag.variants:
                    yield f"{rpath}.split.weights[{k}]: unknown variant {variant!r}"
            if total <= 0:
                yield f"{rpath}.split.weights: total weight must be positive"
            if total > 2**31 - 1:
                yield f"{rpath}.split.weights: total weight exceeds 2^31-1"
        if rule.rollout is not None:
            yield from _rollout_problems(rule.rollout, f"{rpath}.rollout", scale)
        if rule.rollout is not None and rule.split is not None and rule.rollout.salt == rule.split.salt:
            # The same salt would put everyone admitted by a small rollout into the first variant.
            yield f"{rpath}.split.salt: must differ from the rollout salt {rule.rollout.salt!r}"


def _prerequisite_problems(snap: Snapshot) -> Iterator[str]:
    """References, then cycles, then chains too long to evaluate (docs/snapshot.md, Prerequisites)."""
    every: dict[str, tuple[str, Flag]] = {}
    for section, flags in (("flags", snap.flags), ("experiments", snap.experiments)):
        for key, flag in flags.items():
            every.setdefault(key, (f"$.{section}.{key}", flag))
    graph: dict[str, list[str]] = {}
    for key, (path, flag) in every.items():
        graph[key] = [p.flag for p in flag.prerequisites]
        seen: set[str] = set()
        for i, prerequisite in enumerate(flag.prerequisites):
            ppath = f"{path}.prerequisites[{i}]"
            if prerequisite.flag in seen:
                yield f"{ppath}.flag: {prerequisite.flag!r} is listed twice"
            seen.add(prerequisite.flag)
            target = every.get(prerequisite.flag)
            if target is None:
                yield f"{ppath}.flag: no flag or experiment {prerequisite.flag!r} in this snapshot"
                continue
            for j, variant in enumerate(prerequisite.variants):
                if variant not in target[1].variants:
                    yield f"{ppath}.variants[{j}]: flag {prerequisite.flag!r} has no variant {variant!r}"
    cyclic: set[str] = set()
    for cycle in prerequisite_cycles(graph):
        cyclic.update(cycle)
        yield f"{every[cycle[0]][0]}.prerequisites: prerequisites form a cycle: {' -> '.join(cycle)}"
    if cyclic:
        return  # chain lengths are only defined without cycles
    for chain in prerequisite_chains_too_long(graph):
        yield (
            f"{every[chain[0]][0]}.prerequisites: a chain of {len(chain) - 1} prerequisites "
            f"({' -> '.join(chain[:3])} -> ... -> {chain[-1]}) is longer than {MAX_CHAIN}"
        )


def json_text(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _rollout_problems(rollout: Any, path: str, scale: int) -> Iterator[str]:
    if (rollout.percentage is None) == (rollout.schedule is None):
        yield f"{path}: exactly one of `percentage` and `schedule` is required"
    if rollout.percentage is not None and rollout.percentage > scale:
        yield f"{path}.percentage: {rollout.percentage} exceeds scale {scale}"
    if rollout.schedule is not None:
        if not rollout.schedule:
            yield f"{path}.schedule: needs at least one step"
        previous = None
        for i, step in enumerate(rollout.schedule):
            if step.percentage > scale:
                yield f"{path}.schedule[{i}].percentage: {step.percentage} exceeds scale {scale}"
            at = _ts(step.at)
            if previous is not None and at <= previous:
                yield f"{path}.schedule[{i}].at: steps must be in strictly increasing time order"
            previous = at


def _condition_problems(cond: Condition, path: str, segments: set[str]) -> Iterator[str]:
    if isinstance(cond, LogicalCondition):
        for i, sub in enumerate(cond.conditions):
            yield from _condition_problems(sub, f"{path}.conditions[{i}]", segments)
    elif isinstance(cond, NotCondition):
        yield from _condition_problems(cond.condition, f"{path}.condition", segments)
    elif isinstance(cond, SegmentCondition):
        for i, name in enumerate(cond.segments):
            if name not in segments:
                yield (
                    f"{path}.segments[{i}]: segment {name!r} is neither defined in $.segments "
                    "nor listed in $.external_segments"
                )
    elif isinstance(cond, StringCondition) and cond.op == "matches":
        problem = regex_problem(cond.value)
        if problem is not None:
            yield f"{path}.value: {problem}"
    elif isinstance(cond, SemverCondition) and not is_semver(cond.value):
        yield f"{path}.value: {cond.value!r} is not a semantic version"
    elif getattr(cond, "op", None) == "time_window" and cond.start_minute == cond.end_minute:  # type: ignore[union-attr]
        yield f"{path}: empty time window (start_minute == end_minute)"
    elif getattr(cond, "op", None) == "active_between":
        end = cond.end  # type: ignore[union-attr]
        if end is not None and _ts(end) <= _ts(cond.start):  # type: ignore[union-attr]
            yield f"{path}.end: must be after start"


def _ts(value: Any) -> float:
    from datetime import UTC

    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _segment_refs(conds: list[Any]) -> Iterator[str]:
    for cond in conds:
        if isinstance(cond, SegmentCondition):
            yield from cond.segments
        elif isinstance(cond, LogicalCondition):
            yield from _segment_refs(cond.conditions)
        elif isinstance(cond, NotCondition):
            yield from _segment_refs([cond.condition])


def _segment_cycles(snap: Snapshot) -> Iterator[str]:
    """One cycle per connected group of segments that refer to each other, found without recursion (a
    chain of thousands of segments must not overflow the stack)."""
    names = set(snap.segments)
    graph = {name: sorted(set(_segment_refs(seg.conditions)) & names) for name, seg in snap.segments.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for root in sorted(graph):
        if root in state:
            continue
        trail: list[str] = [root]
        pending: list[Iterator[str]] = [iter(graph[root])]
        state[root] = 1
        cycle: str | None = None
        while pending and cycle is None:
            nxt = next(pending[-1], None)
            if nxt is None:
                state[trail.pop()] = 2
                pending.pop()
            elif state.get(nxt) == 1:
                cycle = " -> ".join([*trail, nxt])
            elif nxt not in state:
                state[nxt] = 1
                trail.append(nxt)
                pending.append(iter(graph[nxt]))
        if cycle is not None:
            for name in trail:  # leave the rest of this group unvisited-as-finished, as before
                state[name] = 2
            yield f"$.segments.{root}: segments refer to each other in a cycle: {cycle}"
