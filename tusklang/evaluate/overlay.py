"""Override records and how they layer onto a snapshot: the data half of the override-source protocol.

A source (``sources.OverrideSource``; Redis in ``tusklang.overrides``) delivers records, one per flag;
the Client layers them on its snapshot with ``overlay``. Defined here, beside the Client, so that
evaluation never imports a source (docs/architecture.md): the record format is the contract.

A record holds only what an operator changed:

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
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..diagnostics import TuskError
from ..snapshot import Snapshot, load_snapshot
from ..snapshot.format import percent_on_scale

# The overrides' logger: refused records are the overrides' story, whichever module tells it.
log = logging.getLogger("tusklang.overrides")

WEIGHT_TOLERANCE = 1e-6


def _definition(snapshot: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    found = snapshot.get("flags", {}).get(key)
    if found is None:
        found = snapshot.get("experiments", {}).get(key)
    return found


def _default_salt(key: str, is_experiment: bool) -> str:
    # The salts the compiler gives rollouts (normalise.py), so an override gates on the same buckets.
    return f"{key}/traffic" if is_experiment else f"{key}/rollout"


def percent_units(percent: float, scale: int) -> int:
    return max(0, min(scale, percent_on_scale(percent, scale)[0]))


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
    if abs(total - 100) > WEIGHT_TOLERANCE:
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
