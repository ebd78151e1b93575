"""A step-by-step account of one evaluation, built from the same compiled checks the evaluator runs.

One line per step in evaluation order: each prerequisite (what it served, and whether that lets the flag
go on), each rule's conditions (ok/FAIL and why; inside all/any/not and segment conditions, the clauses
that decided, so "which clause matched" is visible), the rollout bucket against the percentage, the
split bucket and its variant. It stops where the evaluation stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .client import Client, Now, epoch
from .compile import CompiledFlag, percent
from .conditions import Check, SegmentTable, compile_condition, describe
from .result import EvaluationResult

# Nested clauses are shown this deep; below, a logical condition is one line (its verdict and why).
_MAX_NESTING = 6


class _Walk:
    def __init__(self, client: Client, compiled: CompiledFlag, context: Mapping[str, Any], instant: float | None):
        self.client = client
        self.compiled = compiled
        self.context = context
        self.instant = instant
        self.lines: list[str] = []
        self._segments: SegmentTable | None = None

    @property
    def segments(self) -> SegmentTable:
        if self._segments is None:
            self._segments = SegmentTable(self.client.snapshot)
        return self._segments

    def check(self, cond: Any) -> Check:
        return compile_condition(cond, self.segments, self.compiled.model.time_zone)

    def condition(self, cond: Any, check: Check, indent: int, path: str) -> str | None:
        """One line for ``cond`` at ``path`` (and, for all/any/not/segment, the clauses that decided)."""
        outcome = check(self.context, self.instant)
        mark = "ok  " if outcome is None else "FAIL"
        self.lines.append(f"{'  ' * indent}{mark} {path}: {describe(cond)}" + (f": {outcome}" if outcome else ""))
        if indent - 1 >= _MAX_NESTING:
            return outcome
        op = cond.op
        if op in ("all", "any"):
            # Short-circuit as the evaluator does: `all` up to the first failing clause, `any` up to the
            # first holding one (the clause that matched).
            for i, sub in enumerate(cond.conditions):
                held = self.condition(sub, self.check(sub), indent + 1, f"{path}.{op}[{i}]") is None
                if held == (op == "any"):
                    break
        elif op == "not":
            self.condition(cond.condition, self.check(cond.condition), indent + 1, f"{path}.not")
        elif op == "segment":
            for name in cond.segments:
                member = self.segments.membership(name)(self.context, self.instant)
                self.lines.append(
                    f"{'  ' * (indent + 1)}{'ok  ' if member is None else 'FAIL'} {path}.segment `{name}`"
                    + (f": {member}" if member else "")
                )
                if member is None:
                    break
        return outcome

    def matched(self, cond: Any, path: str) -> list[str]:
        """The clauses that made ``cond`` (which holds) hold: every clause of an `all`, the first holding
        clause of an `any`, the first segment the unit is in; a `not` or a plain condition is itself."""
        op = cond.op
        if op == "all":
            return [line for i, sub in enumerate(cond.conditions) for line in self.matched(sub, f"{path}.all[{i}]")]
        if op == "any":
            for i, sub in enumerate(cond.conditions):
                if self.check(sub)(self.context, self.instant) is None:
                    return self.matched(sub, f"{path}.any[{i}]")
            return []  # unreachable for a holding `any`
        if op == "segment":
            for name in cond.segments:
                if self.segments.membership(name)(self.context, self.instant) is None:
                    return [f"{path} segment `{name}`"]
        return [f"{path} {describe(cond)}"]

    def prerequisites(self, result: EvaluationResult) -> bool:
        """Lines for the prerequisites; False when one did not hold (the evaluation ends there)."""
        for prerequisite in self.compiled.model.prerequisites:
            served = self.client.evaluate(prerequisite.flag, self.context, self.instant)
            wanted = "[" + ", ".join(prerequisite.variants) + "]"
            how = served.reason + (f", rule `{served.rule}`" if served.rule else "")
            if served.variant in prerequisite.variants:
                self.lines.append(
                    f"ok   prerequisite `{prerequisite.flag}` served `{served.variant}` ({how}), one of {wanted}"
                )
                continue
            self.lines.append(
                f"FAIL prerequisite `{prerequisite.flag}` served `{served.variant}` ({how}), not one of {wanted}"
                + (f": {served.detail}" if served.detail else "")
            )
            self.lines.append(f"-> off variant `{self.compiled.model.off_variant}` ({result.reason})")
            return False
        return True

    def rules(self, result: EvaluationResult) -> None:
        compiled, context, model = self.compiled, self.context, self.compiled.model
        for index, rule in enumerate(compiled.rules):
            self.lines.append(f"rule `{rule.model.id}` (#{index}):")
            if any(
                self.condition(cond, check, 1, f"when[{i}]") is not None for i, (cond, check) in enumerate(rule.checks)
            ):
                self.lines.append("  -> rule does not serve; next rule")
                continue
            unit = context.get(model.bucket_by)
            unit = str(unit) if type(unit) in (str, int) else None
            if (rule.gate_hasher or rule.split_hasher) and unit is None:
                self.lines.append(f"  FAIL bucketing attribute `{model.bucket_by}` missing or not a string/integer")
                continue
            if rule.gate_hasher and rule.percentage_at and unit is not None:
                pct = rule.percentage_at(self.instant)
                b = (rule.gate_hasher(unit) * compiled.scale) >> 32
                ok = b < pct or pct >= compiled.scale
                salt = rule.model.rollout.salt  # type: ignore[union-attr]
                self.lines.append(
                    f"  {'ok  ' if ok else 'FAIL'} rollout {percent(pct, compiled.scale)} "
                    f"(salt `{salt}`): bucket {b} of {compiled.scale} {'<' if ok else '>='} {pct}"
                )
                if not ok:
                    self.lines.append("  -> rule does not serve; next rule")
                    continue
            if rule.split_hasher and rule.model.split and unit is not None:
                total = sum(w for _, w in rule.model.split.weights)
                b = (rule.split_hasher(unit) * total) >> 32
                self.lines.append(
                    f"  split (salt `{rule.model.split.salt}`): bucket {b} of {total} -> `{result.variant}`"
                )
            clauses = [line for i, (cond, _) in enumerate(rule.checks) for line in self.matched(cond, f"when[{i}]")]
            self.lines.append(
                f"  -> serves `{result.variant}` ({result.reason}), rule `{rule.model.id}` (#{index})"
                + ("; matched " + "; ".join(clauses) if clauses else "; no conditions")
            )
            return
        self.lines.append(f"no rule served -> default variant `{model.default_variant}`")


def explain(client: Client, flag: str, context: Any, now: Now = None) -> tuple[EvaluationResult, list[str]]:
    """The result of ``client.evaluate`` plus one line per check, in evaluation order."""
    result = client.evaluate(flag, context, now)
    state = client._state
    compiled = state.flags.get(flag) if isinstance(flag, str) else None
    kind = "flag"
    if compiled is None and isinstance(flag, str):
        compiled, kind = state.experiments.get(flag), "experiment"
    if context is None:
        context = {}
    if compiled is None or not isinstance(context, Mapping) or result.error_code is not None:
        return result, [f"error {result.error_code}: {result.detail}"]
    model = compiled.model
    walk = _Walk(client, compiled, context, epoch(now) if now is not None else None)
    walk.lines.append(f"{kind} `{model.key}` ({model.type}), bucket_by `{model.bucket_by}`")
    if not model.enabled:
        walk.lines.append(f"disabled -> off variant `{model.off_variant}`")
        return result, walk.lines
    if not walk.prerequisites(result):
        return result, walk.lines
    if not compiled.rules:
        walk.lines.append(f"no rules -> static variant `{model.default_variant}`")
        return result, walk.lines
    walk.rules(result)
    return result, walk.lines
