"""Turning one validated flag (or experiment) into a single evaluation closure.

All results that do not depend on the context (disabled, static, each rule's served variant, each split
variant) are built once here and shared, so the hot path is: attribute lookups, one or two murmur3
hashes, and returning a ready-made frozen result.

Reasons (docs/evaluation.md): a rule that serves ``serve`` answers TARGETING_MATCH when nothing random
decided it (no rollout, or the rollout is at 100%), and SPLIT when a rollout below 100% admitted the unit
(the unit was picked pseudo-randomly); a rule with ``split`` always answers SPLIT.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..snapshot import models as m
from . import reasons as r
from .bucketing import make_hasher
from .conditions import Check, SegmentTable, all_of, compile_condition, to_epoch
from .fused import fuse_single_rule
from .result import EvaluationResult

FlagFn = Callable[[Mapping[str, Any], float | None], EvaluationResult]
RuleOutcome = EvaluationResult | str


def percent(value: int, scale: int) -> str:
    return f"{value * 100 / scale:g}%"


@dataclass
class CompiledRule:
    """One rule's pieces, kept apart so `explain` can walk them with the same checks."""

    model: m.Rule
    checks: list[tuple[Any, Check]]
    run: Callable[[Mapping[str, Any], float | None], RuleOutcome]
    percentage_at: Callable[[float | None], int] | None = None
    gate_hasher: Callable[[str], int] | None = None
    split_hasher: Callable[[str], int] | None = None
    excluded: Callable[[int], str] = str


@dataclass
class CompiledFlag:
    key: str
    model: m.Flag
    scale: int
    evaluate: FlagFn
    rules: list[CompiledRule] = field(default_factory=list)


def _schedule_lookup(rollout: m.Rollout) -> Callable[[float | None], int]:
    if rollout.percentage is not None:
        fixed = rollout.percentage
        return lambda now: fixed
    steps = rollout.schedule or []
    times = [to_epoch(s.at) for s in steps]
    values = [s.percentage for s in steps]

    def at(now: float | None) -> int:
        # The active step is the LATEST one reached (the seed stopped at the first one forever).
        i = bisect.bisect_right(times, time.time() if now is None else now)
        return values[i - 1] if i else 0

    return at


def compile_flag(flag: m.Flag, scale: int, segments: SegmentTable) -> CompiledFlag:
    key = flag.key
    variants = flag.variants

    def result(variant: str, reason: str, rule: str | None = None, detail: str | None = None) -> EvaluationResult:
        return EvaluationResult(key, variants[variant], variant, reason, rule, None, detail)

    if not flag.enabled:
        disabled = result(flag.off_variant, r.DISABLED, detail="flag is disabled")
        return CompiledFlag(key, flag, scale, lambda ctx, now: disabled)
    if not flag.rules:
        static = result(flag.default_variant, r.STATIC)
        return CompiledFlag(key, flag, scale, lambda ctx, now: static)

    compiled = [_compile_rule(rule, flag, scale, segments, result) for rule in flag.rules]
    no_rule_detail = "no rule served"
    defaults: dict[tuple[str, str], EvaluationResult] = {}
    default_variant = flag.default_variant

    def default(rule_id: str, detail: str) -> EvaluationResult:
        found = defaults.get((rule_id, detail))
        if found is None:
            found = result(default_variant, r.DEFAULT, rule_id, detail)
            if len(defaults) < 4096:  # details are constants, but bound memory for safety
                defaults[(rule_id, detail)] = found
        return found

    if len(compiled) == 1:
        only = compiled[0]
        only_id = only.model.id

        by_detail: dict[str, EvaluationResult] = {}

        def fail(detail: str) -> EvaluationResult:
            found = by_detail.get(detail)
            if found is None:
                found = default(only_id, detail)
                if len(by_detail) < 4096:
                    by_detail[detail] = found
            return found

        fused = fuse_single_rule(
            flag,
            only.model,
            only.checks,
            scale,
            result,
            fail,
            only.percentage_at,
            only.gate_hasher,
            only.split_hasher,
            only.excluded,
        )
        return CompiledFlag(key, flag, scale, fused, compiled)

    runs = [(c.run, c.model.id) for c in compiled]

    def evaluate(ctx: Mapping[str, Any], now: float | None) -> EvaluationResult:
        first: tuple[str, str] | None = None
        for run, rule_id in runs:
            outcome = run(ctx, now)
            if type(outcome) is not str:
                return outcome  # type: ignore[return-value]
            first = (rule_id, outcome)  # type: ignore[assignment]
        # The LAST rule's failure is reported: earlier rules are the exceptions (overrides listing a
        # few units come first), the last one is the flag's general targeting.
        return default(*first) if first else default("", no_rule_detail)

    return CompiledFlag(key, flag, scale, evaluate, compiled)


def _compile_rule(
    rule: m.Rule,
    flag: m.Flag,
    scale: int,
    segments: SegmentTable,
    result: Callable[..., EvaluationResult],
) -> CompiledRule:
    checks = [(c, compile_condition(c, segments, flag.time_zone)) for c in rule.conditions]
    cond_fns = [fn for _, fn in checks]
    conditions = all_of(cond_fns) if cond_fns else None
    rule_id = rule.id
    bucket_by = flag.bucket_by
    key_missing = f"bucketing attribute `{bucket_by}` missing or not a string/integer"
    rollout, split = rule.rollout, rule.split

    percentage_at = _schedule_lookup(rollout) if rollout else None
    gate_hasher = make_hasher(rollout.salt) if rollout else None
    split_hasher = make_hasher(split.salt) if split else None
    fixed_pct = rollout.percentage if rollout else None

    matched = result(rule.serve, r.TARGETING_MATCH, rule_id) if rule.serve else None
    gated = result(rule.serve, r.SPLIT, rule_id) if rule.serve else None
    if split is not None:
        split_results = [result(v, r.SPLIT, rule_id) for v, w in split.weights]
        cumulative: list[int] = []
        total = 0
        for _, w in split.weights:
            total += w
            cumulative.append(total)
        split_total = total
    excluded_cache: dict[int, str] = {}

    def excluded(pct: int) -> str:
        text = excluded_cache.get(pct)
        if text is None:
            text = excluded_cache[pct] = f"unit outside the {percent(pct, scale)} rollout"
        return text

    if rollout is None and split is None:
        if conditions is None:
            return CompiledRule(rule, checks, lambda ctx, now: matched, excluded=excluded)  # type: ignore[arg-type, return-value]

        def run_plain(ctx: Mapping[str, Any], now: float | None) -> RuleOutcome:
            failed = conditions(ctx, now)
            return matched if failed is None else failed  # type: ignore[return-value]

        return CompiledRule(rule, checks, run_plain, excluded=excluded)

    def run(ctx: Mapping[str, Any], now: float | None) -> RuleOutcome:
        if conditions is not None:
            failed = conditions(ctx, now)
            if failed is not None:
                return failed
        served = matched
        unit = ctx.get(bucket_by)
        if type(unit) is not str:
            if type(unit) is int:
                unit = str(unit)
            else:
                return key_missing
        if rollout is not None:
            pct = fixed_pct if fixed_pct is not None else percentage_at(now)  # type: ignore[misc]
            if pct < scale:
                if (gate_hasher(unit) * scale) >> 32 >= pct:  # type: ignore[misc]
                    return excluded(pct)
                served = gated
        if split is not None:
            b = (split_hasher(unit) * split_total) >> 32  # type: ignore[misc]
            return split_results[bisect.bisect_right(cumulative, b)]
        return served  # type: ignore[return-value]

    return CompiledRule(rule, checks, run, percentage_at, gate_hasher, split_hasher, excluded)


def compile_snapshot(snapshot: m.Snapshot) -> tuple[dict[str, CompiledFlag], dict[str, CompiledFlag]]:
    segments = SegmentTable(snapshot)
    flags = {k: compile_flag(f, snapshot.scale, segments) for k, f in snapshot.flags.items()}
    experiments = {k: compile_flag(e, snapshot.scale, segments) for k, e in snapshot.experiments.items()}
    return flags, experiments
