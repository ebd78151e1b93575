"""A step-by-step account of one evaluation, built from the same compiled checks the evaluator runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .client import Client, Now, epoch
from .compile import percent
from .conditions import describe
from .result import EvaluationResult


def explain(client: Client, flag: str, context: Any, now: Now = None) -> tuple[EvaluationResult, list[str]]:
    """The result of ``client.evaluate`` plus one line per check, in evaluation order."""
    result = client.evaluate(flag, context, now)
    state = client._state
    compiled = state.flags.get(flag) if isinstance(flag, str) else None
    kind = "flag"
    if compiled is None and isinstance(flag, str):
        compiled, kind = state.experiments.get(flag), "experiment"
    lines: list[str] = []
    if compiled is None or not isinstance(context, Mapping):
        lines.append(f"error {result.error_code}: {result.detail}")
        return result, lines
    model = compiled.model
    instant = epoch(now) if now is not None else None
    lines.append(f"{kind} `{model.key}` ({model.type}), bucket_by `{model.bucket_by}`")
    if not model.enabled:
        lines.append(f"disabled -> off variant `{model.off_variant}`")
        return result, lines
    if not compiled.rules:
        lines.append(f"no rules -> static variant `{model.default_variant}`")
        return result, lines
    for rule in compiled.rules:
        lines.append(f"rule `{rule.model.id}`:")
        failed = False
        for cond, check in rule.checks:
            outcome = check(context, instant)
            lines.append(
                f"  {'ok  ' if outcome is None else 'FAIL'} {describe(cond)}" + (f": {outcome}" if outcome else "")
            )
            if outcome is not None:
                failed = True
                break
        if failed:
            lines.append("  -> rule does not serve; next rule")
            continue
        unit = context.get(model.bucket_by)
        unit = str(unit) if type(unit) in (str, int) else None
        if (rule.gate_hasher or rule.split_hasher) and unit is None:
            lines.append(f"  FAIL bucketing attribute `{model.bucket_by}` missing or not a string/integer")
            continue
        if rule.gate_hasher and rule.percentage_at and unit is not None:
            pct = rule.percentage_at(instant)
            b = (rule.gate_hasher(unit) * compiled.scale) >> 32
            ok = b < pct or pct >= compiled.scale
            salt = rule.model.rollout.salt  # type: ignore[union-attr]
            lines.append(
                f"  {'ok  ' if ok else 'FAIL'} rollout {percent(pct, compiled.scale)} "
                f"(salt `{salt}`): bucket {b} of {compiled.scale} {'<' if ok else '>='} {pct}"
            )
            if not ok:
                lines.append("  -> rule does not serve; next rule")
                continue
        if rule.split_hasher and rule.model.split and unit is not None:
            total = sum(w for _, w in rule.model.split.weights)
            b = (rule.split_hasher(unit) * total) >> 32
            lines.append(f"  split (salt `{rule.model.split.salt}`): bucket {b} of {total} -> `{result.variant}`")
        lines.append(f"  -> serves `{result.variant}` ({result.reason})")
        return result, lines
    lines.append(f"no rule served -> default variant `{model.default_variant}`")
    return result, lines
