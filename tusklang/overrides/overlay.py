"""Checking a proposed override against a snapshot (the CLI's `tusk flags ...`), and the storage defaults.

How records layer onto a snapshot (the record format and ``overlay``) is ``tusklang.evaluate.overlay``:
the Client applies records without importing this package. Those names are re-exported here.
"""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..diagnostics import Diagnostic, Span, TuskError
from ..evaluate.overlay import (
    WEIGHT_TOLERANCE,
    apply_overrides,
    check_record,
    overlay,
    overlay_dict,
    percent_units,
    weight_units,
)
from ..snapshot import Snapshot, load_snapshot
from ..snapshot.format import percent_on_scale
from ..snapshot.models import Flag
from ..source import SourceFile

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_TTL",
    "CommandLine",
    "Proposal",
    "apply_overrides",
    "check_flag",
    "check_record",
    "check_result",
    "merge",
    "overlay",
    "overlay_dict",
    "percent_units",
    "propose_rollout",
    "propose_weights",
    "storage_settings",
    "weight_units",
]

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


def storage_settings(snapshot: Snapshot) -> tuple[str | None, int | None]:
    """``(key_prefix, ttl)`` from the snapshot's ``runtime.storage`` (compiled from `feature_flags.storage`)."""
    storage = snapshot.runtime.storage if snapshot.runtime is not None else None
    if storage is None:
        return None, None
    return (storage.key_prefix or None, storage.ttl if storage.ttl > 0 else None)


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


def _finer(value: float, scale: int) -> str | None:
    """Why ``value`` percent cannot be applied as given: finer than the snapshot's scale (compile's TSK311
    rule; the evaluator would round it), else None."""
    rounded, exact = percent_on_scale(value, scale)
    if exact:
        return None
    step, nearest = 100 / scale, rounded * 100 / scale
    return f"{value:g}% is finer than the snapshot's resolution ({step:g}%): round it to {nearest:g}"


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
    elif (finer := _finer(value, snapshot.scale)) is not None:
        problems.append(Diagnostic(BAD_PERCENT, f"rollout percentage {finer}", cmd.span(percent_at)))
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
        if (finer := _finer(value, snapshot.scale)) is not None:
            problems.append(Diagnostic(BAD_WEIGHTS, f"weight of `{name}`: {finer}", where))
            continue
        weights.append([name, int(value) if value.is_integer() else value])
    if not problems:
        total = sum(w for _, w in weights)
        if abs(total - 100) > WEIGHT_TOLERANCE:
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
