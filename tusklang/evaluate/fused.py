"""One generated Python function per single-rule flag: conditions, bucketing and results inlined.

The closure chain in ``compile.py`` (flag -> rule -> all-of -> each check -> hasher) costs a Python
call per link; for the common flag (one rule, string conditions, a rollout or a split) that overhead is
most of the evaluation. Here the same semantics are written out as straight-line source and compiled
once per snapshot: string ``in``/``==`` conditions and murmur3 bucketing are inlined, every other
condition calls its compiled check. Failure details are the checks' own: an inlined test that fails
for a reason other than "value not listed" re-runs the check to get its exact explanation, so results
are identical to the closure path (the conformance suite runs against both).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from typing import Any

from ..snapshot import models as m
from .bucketing import cbor_text
from .conditions import Check
from .result import EvaluationResult

Outcome = Callable[[Mapping[str, Any], float | None], EvaluationResult]


class _Source:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {}

    def const(self, value: Any) -> str:
        name = f"K{len(self.names)}"
        self.names[name] = value
        return name

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)


def _hash_lines(src: _Source, salt: str, out: str, fallback: Callable[[str], int], depth: int = 1) -> None:
    """``out = murmur3(cbor(salt + ":" + unit))`` inlined, with the CBOR head precomputed per length."""
    from .bucketing import _hash

    prefix = f"{salt}:".encode()
    plen = len(prefix)
    heads = tuple(cbor_text(b"\0" * n)[: -n or None] + prefix if n >= plen else b"" for n in range(plen + 1024))
    heads_name, fallback_name, hash_name = src.const(heads), src.const(fallback), src.const(_hash)
    src.emit(depth, f"_n = {plen} + len(_data)")
    fast = f"{hash_name}({heads_name}[_n] + _data, 0, False)"
    src.emit(depth, f"{out} = {fast} if _n < {len(heads)} else {fallback_name}(_unit)")


def fuse_single_rule(
    flag: m.Flag,
    rule: m.Rule,
    checks: list[tuple[Any, Check]],
    scale: int,
    result: Callable[..., EvaluationResult],
    fail: Callable[[str], EvaluationResult],
    percentage_at: Callable[[float | None], int] | None,
    gate_hasher: Callable[[str], int] | None,
    split_hasher: Callable[[str], int] | None,
    excluded: Callable[[int], str],
) -> Outcome:
    """The whole evaluation of a one-rule flag as one function ``(ctx, now) -> EvaluationResult``.

    ``fail(detail)`` turns a failure explanation into the flag's DEFAULT result (cached by detail).
    """
    src = _Source()
    fail_name = src.const(fail)
    rule_id = rule.id
    for index, (cond, check) in enumerate(checks):
        check_name = src.const(check)
        var = f"_v{index}"
        op = cond.op
        if op in ("in", "not_in") and cond.values and all(type(v) is str for v in cond.values):
            listed = src.const(frozenset(cond.values))
            miss = src.const(fail(_listing_failure(cond, check)))
            src.emit(1, f"{var} = ctx.get({cond.attribute!r})")
            src.emit(1, f"if {var}.__class__ is str:")
            src.emit(2, f"if {var} {'in' if op == 'not_in' else 'not in'} {listed}: return {miss}")
            src.emit(1, f"else: return {fail_name}({check_name}(ctx, now))")
        elif op == "==" and type(cond.value) is str:
            value = src.const(cond.value)
            miss = src.const(fail(_listing_failure(cond, check)))
            src.emit(1, f"{var} = ctx.get({cond.attribute!r})")
            src.emit(1, f"if {var}.__class__ is str:")
            src.emit(2, f"if {var} != {value}: return {miss}")
            src.emit(1, f"else: return {fail_name}({check_name}(ctx, now))")
        else:
            src.emit(1, f"{var} = {check_name}(ctx, now)")
            src.emit(1, f"if {var} is not None: return {fail_name}({var})")

    rollout, split = rule.rollout, rule.split
    matched = result(rule.serve, "TARGETING_MATCH", rule_id) if rule.serve else None
    if rollout is None and split is None:
        src.emit(1, f"return {src.const(matched)}")
        return _build(src, flag.key)

    key_missing = src.const(fail(f"bucketing attribute `{flag.bucket_by}` missing or not a string/integer"))
    src.emit(1, f"_unit = ctx.get({flag.bucket_by!r})")
    src.emit(1, "if _unit.__class__ is not str:")
    src.emit(2, "if _unit.__class__ is int: _unit = str(_unit)")
    src.emit(2, f"else: return {key_missing}")
    src.emit(1, "_data = _unit.encode()")
    served = src.const(matched)
    if rollout is not None:
        assert gate_hasher is not None and percentage_at is not None
        gated = src.const(result(rule.serve, "SPLIT", rule_id) if rule.serve else None)
        if rollout.percentage is not None:
            pct = rollout.percentage
            if pct < scale:
                _hash_lines(src, rollout.salt, "_h", gate_hasher)
                src.emit(1, f"if (_h * {scale}) >> 32 >= {pct}: return {src.const(fail(excluded(pct)))}")
                served = gated
        else:
            at, excl = src.const(percentage_at), src.const(excluded)
            src.emit(1, f"_pct = {at}(now)")
            src.emit(1, f"_served = {served}")
            src.emit(1, f"if _pct < {scale}:")
            _hash_lines(src, rollout.salt, "_h", gate_hasher, depth=2)
            src.emit(2, f"if (_h * {scale}) >> 32 >= _pct: return {fail_name}({excl}(_pct))")
            src.emit(2, f"_served = {gated}")
            served = "_served"
    if split is not None:
        assert split_hasher is not None
        cumulative: list[int] = []
        total = 0
        for _, weight in split.weights:
            total += weight
            cumulative.append(total)
        results = src.const(tuple(result(v, "SPLIT", rule_id) for v, _ in split.weights))
        bounds, bisect_right = src.const(tuple(cumulative)), src.const(bisect.bisect_right)
        _hash_lines(src, split.salt, "_s", split_hasher)
        src.emit(1, f"return {results}[{bisect_right}({bounds}, (_s * {total}) >> 32)]")
        return _build(src, flag.key)
    src.emit(1, f"return {served}")
    return _build(src, flag.key)


def _listing_failure(cond: Any, check: Check) -> str:
    """The check's own explanation for a string that fails it: the inlined test returns it as is."""
    if cond.op == "not_in":
        probe = cond.values[0]
    else:
        taken = set(cond.values) if cond.op == "in" else {cond.value}
        probe = "\0"
        while probe in taken:
            probe += "\0"
    detail = check({cond.attribute: probe}, None)
    assert detail is not None, "a string outside the listed values must fail the check"
    return detail


def _build(src: _Source, key: str) -> Outcome:
    text = "def evaluate(ctx, now):\n" + "\n".join(src.lines) + "\n"
    namespace = dict(src.names)
    exec(compile(text, f"<tusklang flag {key}>", "exec"), namespace)  # our own generated source, no user text
    return namespace["evaluate"]  # type: ignore[no-any-return]
