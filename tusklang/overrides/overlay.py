"""Apply runtime overrides to a snapshot, and check a proposed override against one.

An override record (one per flag, JSON in Redis) holds only what an operator changed:

    {"version": 12, "enabled": false,
     "rollout": {"<rule id>": 40},                       # percent 0..100
     "weights": {"<rule id>": [["control", 50], ["variant_a", 50]]},   # percents summing to 100
     "updated_at": "...", "updated_by": "alice", "reason": "..."}

Percentages are kept as the operator wrote them and converted to the snapshot's ``scale`` here, so one
record means the same thing whatever the scale. A rollout override keeps the rule's salt (or, on a rule
without a rollout, the salt the compiler would have used), so raising a percentage keeps every unit
that was already in: bucketing is a monotone gate on the same hash.
"""

from __future__ import annotations

import copy
import difflib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..diagnostics import Diagnostic, Span, TuskError
from ..snapshot import Snapshot, load_snapshot
from ..snapshot.models import Flag
from ..source import SourceFile

log = logging.getLogger("tusklang.overrides")

DEFAULT_PREFIX = "feature_flags:"
DEFAULT_TTL = 300

# Diagnostic codes of refused overrides (docs/overrides.md).
UNKNOWN_FLAG = "TSK700"
BAD_PERCENT = "TSK701"
NO_RULE = "TSK702"
UNKNOWN_RULE = "TSK703"
NO_SPLIT = "TSK704"
UNKNOWN_VARIANT = "TSK705"
BAD_WEIGHTS = "TSK706"
BAD_ARGUMENT = "TSK707"
INVALID_RESULT = "TSK708"

_WEIGHT_TOLERANCE = 1e-6


def storage_settings(snapshot: Snapshot) -> tuple[str | None, int | None]:
    """``(key_prefix, ttl)`` from the snapshot's ``runtime.storage`` (compiled from `feature_flags.storage`)."""
    storage = snapshot.runtime.storage if snapshot.runtime is not None else None
    if storage is None:
        return None, None
    return (storage.key_prefix or None, storage.ttl if storage.ttl > 0 else None)


def _definition(snapshot: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    found = snapshot.get("flags", {}).get(key)
    if found is None:
        found = snapshot.get("experiments", {}).get(key)
    return found


def _default_salt(key: str, is_experiment: bool) -> str:
    # The salts the compiler gives rollouts (normalise.py), so an override gates on the same buckets.
    return f"{key}/traffic" if is_experiment else f"{key}/rollout"


def percent_units(percent: float, scale: int) -> int:
    return max(0, min(scale, round(percent * scale / 100)))


def weight_units(percents: Sequence[float], scale: int) -> list[int]:
    """Integer weights summing to exactly ``scale`` (largest remainder; ties go to the earlier entry)."""
    exact = [p * scale / 100 for p in percents]
    units = [math.floor(x) for x in exact]
    short = scale - sum(units)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - units[i]), i))
    for i in order[: max(0, short)]:
        units[i] += 1
    return units


def _merged_weights(existing: Sequence[Sequence[Any]], given: Sequence[Sequence[Any]], scale: int) -> list[list[Any]]:
    # Keep the split's variant order (bucket ranges are cumulative in that order) so that changing one
    # weight moves as few units as possible; variants left out get 0, new ones go at the end.
    wanted = {str(v): float(w) for v, w in given}
    names = [str(v) for v, _ in existing]
    names += [str(v) for v, _ in given if str(v) not in names]
    units = weight_units([wanted.get(n, 0.0) for n in names], scale)
    return [[n, u] for n, u in zip(names, units)]


def check_record(record: Any) -> str | None:
    """Why an override record is malformed (whatever the snapshot), or None when its shape is right.

    Records reach a client from Redis, where anyone with access can write anything; one that fails
    here is refused for its own flag only (the watcher keeps that flag's last good record).
    """
    if not isinstance(record, Mapping):
        return f"record is {_kind(record)}, not a JSON object"
    version = record.get("version")
    if version is not None and (type(version) is not int or version < 0):
        return f"`version` must be a non-negative integer, not {_shown(version)}"
    enabled = record.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        return f"`enabled` must be true or false, not {_shown(enabled)}"
    rollout = record.get("rollout")
    if rollout is not None:
        if not isinstance(rollout, Mapping):
            return f"`rollout` must be an object of rule id -> percent, not {_kind(rollout)}"
        for rule_id, percent in rollout.items():
            if not _is_number(percent) or not 0 <= percent <= 100:
                return f"rollout of rule `{rule_id}` must be a number from 0 to 100, not {_shown(percent)}"
    weights = record.get("weights")
    if weights is not None:
        if not isinstance(weights, Mapping):
            return f"`weights` must be an object of rule id -> [[variant, percent], ...], not {_kind(weights)}"
        for rule_id, pairs in weights.items():
            problem = _weights_problem(pairs)
            if problem is not None:
                return f"weights of rule `{rule_id}`: {problem}"
    return None


def _weights_problem(pairs: Any) -> str | None:
    if not isinstance(pairs, list) or not pairs:
        return f"must be a non-empty list of [variant, percent] pairs, not {_shown(pairs)}"
    seen: set[str] = set()
    total = 0.0
    for pair in pairs:
        if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str):
            return f"{_shown(pair)} is not a [variant, percent] pair"
        name, weight = pair
        if not _is_number(weight) or weight < 0:
            return f"weight of `{name}` must be a non-negative number, not {_shown(weight)}"
        if name in seen:
            return f"variant `{name}` is given twice"
        seen.add(name)
        total += weight
    if abs(total - 100) > _WEIGHT_TOLERANCE:
        return f"weights sum to {total:g}, not 100"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _kind(value: Any) -> str:
    kinds = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
    return kinds.get(type(value), "null" if value is None else type(value).__name__)


def _shown(value: Any) -> str:
    """A short rendering of an offending value for a log line (never the whole of a huge record)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def overlay_dict(snapshot: dict[str, Any], records: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Apply ``records`` to a snapshot dict in place; returns ``(flag, problem)`` for every part that had
    to be skipped. Never raises, and a record that cannot be applied leaves its flag untouched."""
    skipped: list[tuple[str, str]] = []
    experiments = snapshot.get("experiments", {})
    for key, record in sorted(records.items()):
        flag = _definition(snapshot, key)
        if flag is None:
            skipped.append((key, f"override of `{key}`: no such flag or experiment in the snapshot"))
            continue
        problem = check_record(record)
        if problem is not None:
            skipped.append((key, f"override of `{key}`: {problem}"))
            continue
        changed = copy.deepcopy(flag)
        try:
            problems = _overlay_flag(changed, key, record, snapshot.get("scale", 100_000), key in experiments)
        except Exception as exc:  # an unforeseen shape: this flag keeps its definition, the others apply
            skipped.append((key, f"override of `{key}` could not be applied: {type(exc).__name__}"))
            continue
        skipped += [(key, p) for p in problems]
        flag.clear()
        flag.update(changed)
    return skipped


def _overlay_flag(
    flag: dict[str, Any], key: str, record: Mapping[str, Any], scale: int, is_experiment: bool
) -> list[str]:
    skipped: list[str] = []
    enabled = record.get("enabled")
    if isinstance(enabled, bool):
        flag["enabled"] = enabled
    rules = {rule["id"]: rule for rule in flag.get("rules", [])}
    rollout = record.get("rollout")
    for rule_id, percent in rollout.items() if isinstance(rollout, Mapping) else ():
        rule = rules.get(rule_id)
        if rule is None:
            skipped.append(f"rollout override of `{key}` rule `{rule_id}`: no such rule")
            continue
        old = rule.get("rollout") or {}
        salt = old.get("salt") or _default_salt(key, is_experiment)
        rule["rollout"] = {"salt": salt, "percentage": percent_units(percent, scale)}
    weights = record.get("weights")
    for rule_id, given in weights.items() if isinstance(weights, Mapping) else ():
        rule = rules.get(rule_id)
        split = rule.get("split") if rule is not None else None
        if rule is None or not split:
            skipped.append(f"weights override of `{key}` rule `{rule_id}`: no such rule with a split")
            continue
        unknown = [v for v, _ in given if v not in flag.get("variants", {})]
        if unknown:
            skipped.append(f"weights override of `{key}`: unknown variant `{unknown[0]}`")
            continue
        rule["split"] = {"salt": split["salt"], "weights": _merged_weights(split["weights"], given, scale)}
    return skipped


def overlay(
    snapshot: Snapshot, records: Mapping[str, Mapping[str, Any]], *, known: Mapping[str, str] | None = None
) -> tuple[Snapshot, dict[str, str]]:
    """The snapshot with ``records`` layered on top, and what was refused (flag -> reason).

    A record, or the part of it, that is malformed or no longer fits the snapshot (a flag or rule that
    was removed) is skipped with a log line naming the flag; every other flag's override still applies.
    Refusals already in ``known`` (the previous call's result) are not logged again. Never raises for
    any record content.
    """
    rejected: dict[str, str] = {}
    if not records:
        return snapshot, rejected
    data = snapshot.model_dump(mode="json")
    problems = overlay_dict(data, records)
    for key, problem in problems:
        rejected.setdefault(key, problem)
    try:
        result = load_snapshot(data)
    except TuskError:
        # Per-flag fallback: one bad record must not throw away every other override.
        result = snapshot
        for key in sorted(records):
            data = result.model_dump(mode="json")
            overlay_dict(data, {key: records[key]})
            try:
                result = load_snapshot(data)
            except TuskError as exc:
                rejected[key] = f"override of `{key}` would make the snapshot invalid: {exc.first.message}"
    for key, problem in rejected.items():
        if (known or {}).get(key) != problem:
            log.warning("%s; not applied (other flags' overrides still apply)", problem)
    return result, rejected


def apply_overrides(snapshot: Snapshot, records: Mapping[str, Mapping[str, Any]]) -> Snapshot:
    """The snapshot with ``records`` layered on top (``overlay`` without the list of refusals)."""
    return overlay(snapshot, records)[0]


# --- checking a proposed change (the CLI) -----------------------------------------------------------


@dataclass
class CommandLine:
    """The command as typed, so diagnostics can point at the offending argument."""

    words: list[str]
    source: SourceFile = field(init=False)
    _offsets: list[int] = field(init=False)

    def __post_init__(self) -> None:
        offsets, pos = [], 0
        for word in self.words:
            offsets.append(pos)
            pos += len(word) + 1
        self._offsets = offsets
        self.source = SourceFile(" ".join(self.words), "<command line>")

    def span(self, index: int | None) -> Span | None:
        if index is None or not 0 <= index < len(self.words):
            return None
        start = self._offsets[index]
        return Span(self.source, start, start + max(1, len(self.words[index])))


def _suggest(word: str, options: Sequence[str]) -> str | None:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f"did you mean `{close[0]}`?" if close else None


def _find(snapshot: Snapshot, key: str) -> Flag | None:
    return snapshot.flags.get(key) or snapshot.experiments.get(key)


@dataclass
class Proposal:
    """A checked change: the patch merged into the flag's current record, or the reasons it was refused."""

    patch: dict[str, Any]
    diagnostics: list[Diagnostic]


def check_flag(snapshot: Snapshot, key: str, cmd: CommandLine, at: int) -> list[Diagnostic]:
    if _find(snapshot, key) is not None:
        return []
    return [
        Diagnostic(
            UNKNOWN_FLAG,
            f"no flag or experiment `{key}` in the snapshot",
            cmd.span(at),
            hint=_suggest(key, [*snapshot.flags, *snapshot.experiments])
            or "overrides can only change flags the snapshot defines",
        )
    ]


def _target_rules(
    flag: Flag, rule: str | None, wanted: str, cmd: CommandLine, flag_at: int, rule_at: int | None
) -> tuple[list[str], list[Diagnostic]]:
    ids = [r.id for r in flag.rules]
    if rule is not None:
        if rule not in ids:
            return [], [
                Diagnostic(
                    UNKNOWN_RULE,
                    f"`{flag.key}` has no rule `{rule}`",
                    cmd.span(rule_at),
                    hint=_suggest(rule, ids) or f"its rules: {', '.join(ids) or '(none)'}",
                )
            ]
        chosen = [r for r in flag.rules if r.id == rule]
    elif wanted == "split":
        chosen = [r for r in flag.rules if r.split is not None]
    else:
        # Rules that already have a rollout; a flag without any gets one on every rule.
        chosen = [r for r in flag.rules if r.rollout is not None] or list(flag.rules)
    if wanted == "split":
        chosen = [r for r in chosen if r.split is not None]
        if not chosen:
            return [], [
                Diagnostic(
                    NO_SPLIT,
                    f"`{flag.key}` has no rule with a variant split" + (f" named `{rule}`" if rule else ""),
                    cmd.span(rule_at if rule is not None else flag_at),
                    hint="variant weights change an existing split; a flag serving one variant has none",
                )
            ]
    if not chosen:
        return [], [
            Diagnostic(
                NO_RULE,
                f"`{flag.key}` has no rules, so there is nothing to gate with a rollout",
                cmd.span(flag_at),
                hint="enable or disable the flag instead, or add a rule in the config",
            )
        ]
    return [r.id for r in chosen], []


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def propose_rollout(
    snapshot: Snapshot, key: str, percent: str, rule: str | None, cmd: CommandLine, at: tuple[int, int, int | None]
) -> Proposal:
    flag_at, percent_at, rule_at = at
    problems = check_flag(snapshot, key, cmd, flag_at)
    value = _number(percent)
    if value is None or not 0 <= value <= 100:
        problems.append(
            Diagnostic(
                BAD_PERCENT,
                f"rollout percentage {percent} is not a number between 0 and 100",
                cmd.span(percent_at),
                hint="give a percentage, e.g. 25 or 12.5",
            )
        )
    if problems:
        return Proposal({}, problems)
    flag = _find(snapshot, key)
    assert flag is not None and value is not None
    rules, problems = _target_rules(flag, rule, "rollout", cmd, flag_at, rule_at)
    number: int | float = int(value) if value.is_integer() else value
    return Proposal({"rollout": {r: number for r in rules}}, problems)


def propose_weights(
    snapshot: Snapshot,
    key: str,
    pairs: Sequence[str],
    rule: str | None,
    cmd: CommandLine,
    at: tuple[int, int, int | None],
) -> Proposal:
    flag_at, first_pair_at, rule_at = at
    problems = check_flag(snapshot, key, cmd, flag_at)
    if problems:
        return Proposal({}, problems)
    flag = _find(snapshot, key)
    assert flag is not None
    weights: list[list[Any]] = []
    seen: set[str] = set()
    for i, pair in enumerate(pairs):
        where = cmd.span(first_pair_at + i)
        name, sep, number = pair.partition("=")
        value = _number(number) if sep else None
        if not name or value is None:
            problems.append(
                Diagnostic(BAD_ARGUMENT, f"`{pair}` is not VARIANT=PERCENT", where, hint="e.g. control=50 variant_a=50")
            )
            continue
        if name in seen:
            problems.append(Diagnostic(BAD_ARGUMENT, f"variant `{name}` is given twice", where))
            continue
        seen.add(name)
        if name not in flag.variants:
            problems.append(
                Diagnostic(
                    UNKNOWN_VARIANT,
                    f"`{key}` has no variant `{name}`",
                    where,
                    hint=_suggest(name, list(flag.variants)) or f"its variants: {', '.join(flag.variants)}",
                )
            )
            continue
        if value < 0:
            problems.append(Diagnostic(BAD_WEIGHTS, f"weight of `{name}` is negative ({number})", where))
            continue
        weights.append([name, int(value) if value.is_integer() else value])
    if not problems:
        total = sum(w for _, w in weights)
        if abs(total - 100) > _WEIGHT_TOLERANCE:
            first = cmd.span(first_pair_at)
            last = cmd.span(first_pair_at + len(pairs) - 1)
            span = Span(first.source, first.start, last.end) if first is not None and last is not None else None
            problems.append(
                Diagnostic(
                    BAD_WEIGHTS,
                    f"variant weights sum to {total:g}, not 100",
                    span,
                    hint="weights are percentages of the rule's traffic and must add up to 100",
                )
            )
    if problems:
        return Proposal({}, problems)
    rules, problems = _target_rules(flag, rule, "split", cmd, flag_at, rule_at)
    return Proposal({"weights": {r: weights for r in rules}}, problems)


def merge(record: Mapping[str, Any] | None, patch: Mapping[str, Any]) -> dict[str, Any]:
    """The flag's override content after ``patch`` (per-rule maps merge; bookkeeping fields dropped)."""
    out: dict[str, Any] = {}
    for name in ("enabled", "rollout", "weights"):
        if record is not None and name in record:
            out[name] = record[name]
    for name, value in patch.items():
        if isinstance(value, Mapping) and isinstance(out.get(name), Mapping):
            out[name] = {**out[name], **value}
        else:
            out[name] = value
    return out


def check_result(snapshot: Snapshot, key: str, content: Mapping[str, Any], cmd: CommandLine) -> list[Diagnostic]:
    """The snapshot with the new override must still validate (belt and braces over the checks above)."""
    data = snapshot.model_dump(mode="json")
    skipped = [problem for _, problem in overlay_dict(data, {key: content})]
    try:
        load_snapshot(data)
    except TuskError as exc:
        skipped.append(exc.first.message)
    return [
        Diagnostic(INVALID_RESULT, f"the override would make the snapshot invalid: {problem}", cmd.span(2))
        for problem in skipped
    ]
