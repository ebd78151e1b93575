"""Turning one validated flag (or experiment) into a single evaluation function.

All results that do not depend on the context (disabled, static, each rule's served variant, each split
variant, each failed prerequisite) are built once here and shared, so the hot path is: attribute
lookups, one or two murmur3 hashes, and returning a ready-made frozen result.

Two implementations of the same semantics: the closure chain below (flag -> rule -> all-of -> check ->
hasher), which is the readable reference, and one generated function per flag (``fused.py``), which is
what a ``Client`` runs. tests/test_evaluate_fused.py and the conformance suite hold them to identical
results.

Reasons (docs/evaluation.md): a rule that serves ``serve`` answers TARGETING_MATCH when nothing random
decided it (no rollout, or the rollout is at 100%), and SPLIT when a rollout below 100% admitted the unit
(the unit was picked pseudo-randomly); a rule with ``split`` always answers SPLIT. A prerequisite that
does not hold serves the off variant with PREREQUISITE_FAILED, naming the prerequisite.
"""

from __future__ import annotations

import bisect
import functools
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..snapshot import models as m
from . import reasons as r
from .bucketing import make_hasher
from .conditions import Check, SegmentTable, all_of, compile_condition, to_epoch
from .fused import fuse
from .result import EvaluationResult, raised

FlagFn = Callable[[Mapping[str, Any], float | None], EvaluationResult]
RuleOutcome = EvaluationResult | str
_TIME_OPS = frozenset({"time_window", "active_between"})


def percent(value: int, scale: int) -> str:
    return f"{value * 100 / scale:g}%"


@dataclass
class CompiledRule:
    """One rule's pieces, kept apart so `explain` and the generated code use the same checks."""

    model: m.Rule
    checks: list[tuple[Any, Check]]
    run: Callable[[Mapping[str, Any], float | None], RuleOutcome]
    percentage_at: Callable[[float | None], int] | None = None
    gate_hasher: Callable[[str], int] | None = None
    split_hasher: Callable[[str], int] | None = None
    excluded: Callable[[int], str] = str


@dataclass(frozen=True)
class Gate:
    """One prerequisite of a flag: the key, the variants that let the flag go on, and the result the flag
    gives when the prerequisite served something else."""

    key: str
    allowed: frozenset[str]
    failed: Callable[[EvaluationResult], EvaluationResult]


@dataclass
class CompiledFlag:
    key: str
    model: m.Flag
    scale: int
    # The whole evaluation: prerequisites (each evaluated through its own `evaluate`), then the rules.
    evaluate: FlagFn
    rules: list[CompiledRule] = field(default_factory=list)
    # The evaluation once every prerequisite holds (`evaluate` itself when there are none): evaluate_all
    # checks the gates against results it already has, so each prerequisite is evaluated once per call.
    body: FlagFn | None = None
    gates: tuple[Gate, ...] = ()
    # Whether an evaluation may read the time (a time window, a duration, a schedule, here or in a
    # prerequisite): only then is a caller's `now` converted.
    uses_time: bool = False

    def __post_init__(self) -> None:
        if self.body is None:
            self.body = self.evaluate


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


class _TimeUse:
    """Which conditions read the evaluation time, segments followed (validated acyclic), memoised."""

    def __init__(self, snapshot: m.Snapshot) -> None:
        self.segments = snapshot.segments
        self.memo: dict[str, bool] = {}

    def conditions(self, conds: Iterable[Any]) -> bool:
        stack = list(conds)
        while stack:
            cond = stack.pop()
            op = cond.op
            if op in _TIME_OPS:
                return True
            if op in ("all", "any"):
                stack.extend(cond.conditions)
            elif op == "not":
                stack.append(cond.condition)
            elif op == "segment":
                if any(self.segment(name) for name in cond.segments):
                    return True
        return False

    def segment(self, name: str) -> bool:
        found = self.memo.get(name)
        if found is None:
            self.memo[name] = False  # a reference back to a segment being walked adds nothing
            segment = self.segments.get(name)
            found = self.memo[name] = segment is not None and self.conditions(segment.conditions)
        return found

    def flag(self, flag: m.Flag) -> bool:
        return any(
            (rule.rollout is not None and rule.rollout.schedule is not None) or self.conditions(rule.conditions)
            for rule in flag.rules
        )


def prerequisite_failure(
    key: str, prerequisite: m.Prerequisite, off: EvaluationResult
) -> Callable[[EvaluationResult], EvaluationResult]:
    """``failed(served)``: the flag's PREREQUISITE_FAILED result for what the prerequisite served.

    One result per served variant, built once: the detail names the prerequisite and its variant
    (docs/snapshot.md words it: prerequisite `<key>` served `<variant>`, not one of [...]).
    """
    wanted = ", ".join(prerequisite.variants)
    name = prerequisite.flag
    cache: dict[str, EvaluationResult] = {}

    def failed(served: EvaluationResult) -> EvaluationResult:
        variant = served.variant
        if variant is None:  # an ERROR result serves no variant: it never holds
            detail = f"prerequisite `{name}` could not be evaluated ({served.error_code}: {served.detail})"
            return EvaluationResult(key, off.value, off.variant, r.PREREQUISITE_FAILED, None, None, detail, name)
        found = cache.get(variant)
        if found is None:
            detail = f"prerequisite `{name}` served `{variant}`, not one of [{wanted}]"
            found = EvaluationResult(key, off.value, off.variant, r.PREREQUISITE_FAILED, None, None, detail, name)
            if len(cache) < 4096:
                cache[variant] = found
        return found

    return failed


def prerequisite_error(key: str) -> Callable[[BaseException], EvaluationResult]:
    """The ERROR result of a prerequisite whose evaluation raised (result.raised)."""
    return functools.partial(raised, key)


def compile_flag(
    flag: m.Flag,
    scale: int,
    segments: SegmentTable,
    compiled: Mapping[str, CompiledFlag] | None = None,
    *,
    fused: bool = True,
    uses_time: bool = False,
) -> CompiledFlag:
    """``compiled`` holds every prerequisite of ``flag`` already compiled (``compile_snapshot`` compiles in
    dependency order); ``fused`` selects the generated function over the closure chain."""
    key = flag.key
    variants = flag.variants

    def result(variant: str, reason: str, rule: str | None = None, detail: str | None = None) -> EvaluationResult:
        return EvaluationResult(key, variants[variant], variant, reason, rule, None, detail)

    if not flag.enabled:
        # Disabled: the off variant, before (and without evaluating) any prerequisite.
        disabled = result(flag.off_variant, r.DISABLED, detail="flag is disabled")
        return CompiledFlag(key, flag, scale, lambda ctx, now: disabled)

    off = result(flag.off_variant, r.PREREQUISITE_FAILED)
    deps = compiled or {}
    gates = tuple(Gate(p.flag, frozenset(p.variants), prerequisite_failure(key, p, off)) for p in flag.prerequisites)
    dep_fns = [deps[p.flag].evaluate for p in flag.prerequisites]
    rules = [_compile_rule(rule, flag, scale, segments, result) for rule in flag.rules]
    static = result(flag.default_variant, r.STATIC) if not flag.rules else None
    default = _defaults(result, flag.default_variant)
    uses_time = uses_time or any(deps[p.flag].uses_time for p in flag.prerequisites)

    errors = [prerequisite_error(p.flag) for p in flag.prerequisites]
    if fused:

        def check_of(cond: Any) -> Check:
            return compile_condition(cond, segments, flag.time_zone)

        body = fuse(flag, rules, scale, default, static, check_of)
        whole = fuse(flag, rules, scale, default, static, check_of, gates, dep_fns, errors) if gates else body
    else:
        body = _closure_body(rules, default, static)
        whole = _closure_gated(body, gates, dep_fns, errors)
    return CompiledFlag(key, flag, scale, whole, rules, body, gates, uses_time)


def _defaults(result: Callable[..., EvaluationResult], default_variant: str) -> Callable[[str, str], EvaluationResult]:
    """``default(rule_id, detail)``: the DEFAULT result, one instance per (rule, failure text)."""
    defaults: dict[tuple[str, str], EvaluationResult] = {}

    def default(rule_id: str, detail: str) -> EvaluationResult:
        found = defaults.get((rule_id, detail))
        if found is None:
            found = result(default_variant, r.DEFAULT, rule_id, detail)
            if len(defaults) < 4096:  # details are constants, but bound memory for safety
                defaults[(rule_id, detail)] = found
        return found

    return default


def _closure_body(
    compiled: list[CompiledRule], default: Callable[[str, str], EvaluationResult], static: EvaluationResult | None
) -> FlagFn:
    if static is not None:
        return lambda ctx, now: static
    runs = [(c.run, c.model.id) for c in compiled]

    def evaluate(ctx: Mapping[str, Any], now: float | None) -> EvaluationResult:
        last: tuple[str, str] | None = None
        for run, rule_id in runs:
            outcome = run(ctx, now)
            if type(outcome) is not str:
                return outcome  # type: ignore[return-value]
            last = (rule_id, outcome)  # type: ignore[assignment]
        # The LAST rule's failure is reported: earlier rules are the exceptions (overrides listing a
        # few units come first), the last one is the flag's general targeting.
        assert last is not None
        return default(*last)

    return evaluate


def _closure_gated(
    body: FlagFn, gates: tuple[Gate, ...], deps: list[FlagFn], errors: list[Callable[[BaseException], EvaluationResult]]
) -> FlagFn:
    if not gates:
        return body
    steps = list(zip(deps, gates, errors))

    def evaluate(ctx: Mapping[str, Any], now: float | None) -> EvaluationResult:
        for dep, gate, error in steps:
            try:
                served = dep(ctx, now)
            except Exception as exc:
                served = error(exc)
            if served.variant not in gate.allowed:
                return gate.failed(served)
        return body(ctx, now)

    return evaluate


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


def dependency_order(snapshot: m.Snapshot) -> list[str]:
    """Every flag and experiment key, each after its prerequisites; otherwise in snapshot order (flags,
    then experiments). Iterative: validation bounds the chains, but no stack is needed to follow them."""
    every: dict[str, m.Flag] = {**snapshot.experiments, **snapshot.flags}
    order: list[str] = []
    done: set[str] = set()
    for root in [*snapshot.flags, *snapshot.experiments]:
        if root in done:
            continue
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            key, expanded = stack.pop()
            if key in done:
                continue
            if expanded:
                done.add(key)
                order.append(key)
                continue
            stack.append((key, True))
            found = every.get(key)
            for p in reversed(found.prerequisites if found is not None else []):
                if p.flag not in done and p.flag in every:
                    stack.append((p.flag, False))
    return order


def compile_snapshot(
    snapshot: m.Snapshot, *, fused: bool = True
) -> tuple[dict[str, CompiledFlag], dict[str, CompiledFlag]]:
    """Flags and experiments (each in snapshot order), compiled in dependency order so that a flag's
    generated code calls its prerequisites' functions directly."""
    segments = SegmentTable(snapshot)
    time_use = _TimeUse(snapshot)
    every: dict[str, m.Flag] = {**snapshot.experiments, **snapshot.flags}
    done: dict[str, CompiledFlag] = {}
    for key in dependency_order(snapshot):
        model = every[key]
        done[key] = compile_flag(
            model, snapshot.scale, segments, done, fused=fused, uses_time=model.enabled and time_use.flag(model)
        )
    flags = {k: done[k] for k in snapshot.flags}
    experiments = {k: done[k] for k in snapshot.experiments}
    return flags, experiments
