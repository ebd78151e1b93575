"""One generated Python function per flag: prerequisites, every rule's conditions, bucketing and results
written out as straight-line source and compiled once per snapshot.

The closure chain in ``compile.py`` (flag -> rule -> all-of -> each check -> hasher) costs a Python call
per link; with ten rules that overhead is most of the evaluation. Here the same semantics are inlined:

- a prerequisite is one call to its own generated function and a set membership test;
- every rule but the last is one ``if`` over a boolean expression: only the LAST rule's failure is ever
  reported (docs/evaluation.md), so an earlier rule needs to know whether it holds, not why not. String,
  number and boolean tests, ``exists``/``not_exists`` and all/any/not are inlined; a value of an
  unexpected class (missing, mistyped) and every other op call the compiled check, which decides;
- the last rule returns the flag's DEFAULT result with the check's own explanation: a listed-value miss
  returns a precomputed result, any other failure asks the check for its exact text;
- murmur3 bucketing is inlined: an ASCII unit is hashed as a str behind its CBOR head and ``salt:``
  (``unit_hasher``), and a fixed percentage or split weight is compared with the hash itself (``hash_bound``).

Results are identical to the closure path: tests/test_evaluate_fused.py compares both on generated flags
and contexts, and the conformance suite runs against both.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..snapshot import models as m
from . import reasons as r
from .bucketing import _hash, hash_bound, unit_hasher
from .conditions import Check, parsed_version, semver_key
from .result import EvaluationResult

Outcome = Callable[[Mapping[str, Any], float | None], EvaluationResult]
Default = Callable[[str, str], EvaluationResult]

# Deeper all/any/not trees call their compiled check instead of nesting more parentheses (Python's parser
# refuses about 200 levels; the snapshot allows 128 levels of JSON).
_MAX_INLINE_DEPTH = 8
_MAX_CHAINED_SPLIT = 4  # a split of more variants bisects its cumulative weights
_NUMBER_OPS = frozenset({"==", "!=", "<", "<=", ">", ">="})


class _Source:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {}
        self.ids: dict[int, str] = {}

    def const(self, value: Any) -> str:
        """A name for ``value`` in the generated function's globals (one name per object)."""
        found = self.ids.get(id(value))
        if found is not None and self.names[found] is value:
            return found
        name = f"K{len(self.names)}"
        self.names[name] = value
        self.ids[id(value)] = name
        return name

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)


def _hash_lines(src: _Source, salt: str, out: str, depth: int) -> None:
    """``out = murmur3(cbor(salt + ":" + _unit))`` inlined for an ASCII unit whose length's head is in the
    salt's table (``unit_hasher``); the salt's hasher, which fills the table, takes the others."""
    heads, hasher = unit_hasher(salt)
    heads_name, hash_name, hasher_name = src.const(heads), src.const(_hash), src.const(hasher)
    src.emit(depth, "if _unit.isascii():")
    src.emit(depth + 1, f"try: {out} = {hash_name}({heads_name}[len(_unit)] + _unit, 0, False)")
    src.emit(depth + 1, f"except (IndexError, TypeError): {out} = {hasher_name}(_unit)")  # too long, or not yet seen
    src.emit(depth, f"else: {out} = {hasher_name}(_unit)")


class _Expressions:
    """Boolean expressions that are True exactly when a condition holds (its check returns None)."""

    def __init__(self, src: _Source, check_of: Callable[[Any], Check]) -> None:
        self.src = src
        self.check_of = check_of

    def call(self, cond: Any, check: Check | None = None) -> str:
        name = self.src.const(check if check is not None else self.check_of(cond))
        return f"({name}(ctx, now) is None)"

    def of(self, cond: Any, check: Check | None = None, depth: int = 0) -> str:
        """``check`` is the condition's compiled check when the caller has it (else compiled on demand)."""
        op = cond.op
        if op in ("all", "any", "not") and depth >= _MAX_INLINE_DEPTH:
            return self.call(cond, check)
        if op in ("all", "any"):
            if not cond.conditions:
                return "True" if op == "all" else "False"
            joined = f" {'and' if op == 'all' else 'or'} ".join(self.of(c, None, depth + 1) for c in cond.conditions)
            return f"({joined})"
        if op == "not":
            return f"(not {self.of(cond.condition, None, depth + 1)})"
        if op == "exists":
            return f"(ctx.get({cond.attribute!r}) is not None)"
        if op == "not_exists":
            return f"(ctx.get({cond.attribute!r}) is None)"
        typed = self.typed_test(cond)
        if typed is None:
            return self.call(cond, check)
        classes, test = typed
        # The class test comes first (it binds _v); any other class (missing, mistyped, a subclass) is
        # decided by the check itself, so the inlined form can never disagree with it.
        return f"({test} if {self.class_test(cond.attribute, classes)} else {self.call(cond, check)})"

    @staticmethod
    def class_test(attribute: str, classes: Sequence[str]) -> str:
        first = f"(_v := ctx.get({attribute!r})).__class__ is {classes[0]}"
        return first + "".join(f" or _v.__class__ is {c}" for c in classes[1:])

    def typed_test(self, cond: Any) -> tuple[Sequence[str], str] | None:
        """(classes, test on ``_v``) for a condition whose outcome, for a value of exactly one of those
        classes, is the test; None when the op is left to its check."""
        op = cond.op
        src = self.src
        if op in ("in", "not_in") and all(type(v) is str for v in cond.values):
            listed = src.const(frozenset(cond.values))
            return ("str",), f"(_v {'not in' if op == 'not_in' else 'in'} {listed})"
        if op in _NUMBER_OPS:
            value = cond.value
            if type(value) is str:
                return ("str",), f"(_v {op} {src.const(value)})"
            if type(value) in (int, float):
                return ("int", "float"), f"(_v {op} {src.const(value)})"
            if type(value) is bool and op in ("==", "!="):
                return ("bool",), f"(_v {'is' if op == '==' else 'is not'} {value})"
            return None
        if op == "starts_with":
            return ("str",), f"_v.startswith({src.const(cond.value)})"
        if op == "ends_with":
            return ("str",), f"_v.endswith({src.const(cond.value)})"
        if op == "contains":
            return ("str",), f"({src.const(cond.value)} in _v)"
        if op.startswith("semver_"):
            target = semver_key(cond.value)
            if target is None:
                return None  # the check explains (it never holds)
            compare = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}[op[7:]]
            parse, bound = src.const(parsed_version), src.const(target)
            return ("str",), f"((_k := {parse}(_v)) is not None and _k {compare} {bound})"
        return None


class _Flag:
    """The source of one flag's function."""

    def __init__(
        self,
        flag: m.Flag,
        scale: int,
        default: Default,
        check_of: Callable[[Any], Check],
    ) -> None:
        self.flag = flag
        self.scale = scale
        self.default = default
        self.src = _Source()
        self.expressions = _Expressions(self.src, check_of)
        self.variants = flag.variants

    def result(self, variant: str, reason: str, rule_id: str) -> EvaluationResult:
        return EvaluationResult(self.flag.key, self.variants[variant], variant, reason, rule_id)

    # --- one rule ----------------------------------------------------------------------------------

    def condition_expression(self, cond: Any, check: Check) -> str:
        return self.expressions.of(cond, check)

    def admitted(self, rule: m.Rule, served: str, depth: int) -> None:
        """The unit passed the rollout (or there is none): serve ``served`` or the split's variant."""
        src = self.src
        split = rule.split
        if split is None:
            src.emit(depth, f"return {served}")
            return
        cumulative: list[int] = []
        total = 0
        for _, weight in split.weights:
            total += weight
            cumulative.append(total)
        _hash_lines(src, split.salt, "_s", depth)
        if len(split.weights) <= _MAX_CHAINED_SPLIT:
            names = [src.const(self.result(v, r.SPLIT, rule.id)) for v, _ in split.weights]
            # The first variant whose cumulative weight exceeds the bucket, as bisect_right finds it, in a
            # chain of comparisons of the hash itself (hash_bound): cheaper than a call for the usual two
            # to four variants.
            chain = " else ".join(
                f"{name} if _s < {hash_bound(bound, total)}" for name, bound in zip(names[:-1], cumulative)
            )
            src.emit(depth, f"return {chain} else {names[-1]}" if chain else f"return {names[-1]}")
            return
        results = src.const(tuple(self.result(v, r.SPLIT, rule.id) for v, _ in split.weights))
        bounds = src.const(tuple(hash_bound(bound, total) for bound in cumulative))
        src.emit(depth, f"return {results}[{src.const(bisect.bisect_right)}({bounds}, _s)]")

    def bucketed(
        self,
        rule: m.Rule,
        percentage_at: Callable[[float | None], int] | None,
        depth: int,
        missing: str | None,
        excluded: Callable[[int], str] | None,
    ) -> None:
        """A rule with a rollout or a split, its conditions already held: the unit id, the rollout gate,
        then what is served. ``missing``/``excluded`` give the last rule's failures; an earlier rule falls
        through to the next one instead."""
        src, scale = self.src, self.scale
        matched = src.const(self.result(rule.serve, r.TARGETING_MATCH, rule.id)) if rule.serve else "None"
        gated = src.const(self.result(rule.serve, r.SPLIT, rule.id)) if rule.serve else "None"
        src.emit(depth, f"_unit = ctx.get({self.flag.bucket_by!r})")
        src.emit(depth, "if _unit.__class__ is not str:")
        src.emit(depth + 1, "if _unit.__class__ is int: _unit = str(_unit)")
        if missing is not None:
            src.emit(depth + 1, f"else: return {missing}")
            inner = depth
        else:
            src.emit(depth + 1, "else: _unit = None")
            src.emit(depth, "if _unit is not None:")
            inner = depth + 1
        rollout = rule.rollout
        if rollout is None:
            self.admitted(rule, matched, inner)
            return
        if rollout.percentage is not None:
            pct = rollout.percentage
            if pct >= scale:
                self.admitted(rule, matched, inner)
                return
            _hash_lines(src, rollout.salt, "_h", inner)
            least = hash_bound(pct, scale)  # the unit is admitted when its bucket is below pct
            if missing is not None:
                assert excluded is not None
                src.emit(inner, f"if _h >= {least}: return {src.const(self.default(rule.id, excluded(pct)))}")
                self.admitted(rule, gated, inner)
            else:
                src.emit(inner, f"if _h < {least}:")
                self.admitted(rule, gated, inner + 1)
            return
        assert percentage_at is not None
        src.emit(inner, f"_pct = {src.const(percentage_at)}(now)")
        src.emit(inner, f"if _pct >= {scale}:")
        self.admitted(rule, matched, inner + 1)
        _hash_lines(src, rollout.salt, "_h", inner)
        if missing is not None:
            assert excluded is not None
            fail, why = src.const(self.default), src.const(excluded)
            src.emit(inner, f"if (_h * {scale}) >> 32 >= _pct: return {fail}({rule.id!r}, {why}(_pct))")
            self.admitted(rule, gated, inner)
        else:
            src.emit(inner, f"if (_h * {scale}) >> 32 < _pct:")
            self.admitted(rule, gated, inner + 1)

    def quiet_rule(self, rule: Any) -> None:
        """A rule before the last: serve when it holds, else fall through (its failure is never shown)."""
        model: m.Rule = rule.model
        test = " and ".join(self.condition_expression(c, check) for c, check in rule.checks) or "True"
        if model.rollout is None and model.split is None:
            served = self.src.const(self.result(model.serve, r.TARGETING_MATCH, model.id))  # type: ignore[arg-type]
            self.src.emit(1, f"if {test}: return {served}")
            return
        self.src.emit(1, f"if {test}:")
        self.bucketed(model, rule.percentage_at, 2, None, None)

    def last_rule(self, rule: Any) -> None:
        """The last rule: every failure returns the flag's DEFAULT result explained by the check."""
        src = self.src
        model: m.Rule = rule.model
        rule_id = model.id
        fail = src.const(lambda detail, _default=self.default, _id=rule_id: _default(_id, detail))
        for cond, check in rule.checks:
            check_name = src.const(check)
            typed = self.expressions.typed_test(cond) if cond.op not in ("all", "any", "not") else None
            if typed is not None:
                classes, test = typed
                src.emit(1, f"if {self.expressions.class_test(cond.attribute, classes)}:")
                miss = _listing_failure(cond, check)
                if miss is not None:
                    src.emit(2, f"if not {test}: return {src.const(self.default(rule_id, miss))}")
                else:
                    src.emit(2, f"if not {test}: return {fail}({check_name}(ctx, now))")
                src.emit(1, "else:")
                src.emit(2, f"_d = {check_name}(ctx, now)")
                src.emit(2, f"if _d is not None: return {fail}(_d)")
            elif cond.op in ("all", "any", "not", "exists", "not_exists"):
                src.emit(1, f"if not {self.condition_expression(cond, check)}: return {fail}({check_name}(ctx, now))")
            else:
                src.emit(1, f"_d = {check_name}(ctx, now)")
                src.emit(1, f"if _d is not None: return {fail}(_d)")
        if model.rollout is None and model.split is None:
            src.emit(1, f"return {src.const(self.result(model.serve, r.TARGETING_MATCH, rule_id))}")  # type: ignore[arg-type]
            return
        missing = src.const(
            self.default(rule_id, f"bucketing attribute `{self.flag.bucket_by}` missing or not a string/integer")
        )
        self.bucketed(model, rule.percentage_at, 1, missing, rule.excluded)

    # --- the whole flag ----------------------------------------------------------------------------

    def prerequisites(
        self,
        gates: Sequence[Any],
        deps: Sequence[Outcome],
        errors: Sequence[Callable[[BaseException], EvaluationResult]],
    ) -> None:
        src = self.src
        for gate, dep, error in zip(gates, deps, errors):
            src.emit(1, "try:")
            src.emit(2, f"_p = {src.const(dep)}(ctx, now)")
            src.emit(1, f"except Exception as _e: _p = {src.const(error)}(_e)")
            src.emit(1, f"if _p.variant not in {src.const(gate.allowed)}: return {src.const(gate.failed)}(_p)")

    def build(self) -> Outcome:
        text = "def evaluate(ctx, now):\n" + "\n".join(self.src.lines) + "\n"
        namespace = dict(self.src.names)
        # Our own generated source: attribute names and values enter it only as repr() literals or constants.
        exec(compile(text, f"<tusklang flag {self.flag.key}>", "exec"), namespace)
        return namespace["evaluate"]  # type: ignore[no-any-return]


def fuse(
    flag: m.Flag,
    rules: Sequence[Any],
    scale: int,
    default: Default,
    static: EvaluationResult | None,
    check_of: Callable[[Any], Check],
    gates: Sequence[Any] = (),
    deps: Sequence[Outcome] = (),
    errors: Sequence[Callable[[BaseException], EvaluationResult]] = (),
) -> Outcome:
    """The whole evaluation of an enabled flag as one function ``(ctx, now) -> EvaluationResult``.

    ``rules`` are ``compile.CompiledRule``s; ``default(rule_id, detail)`` gives the DEFAULT result (cached
    by detail); ``static`` is the STATIC result of a flag without rules; ``gates``/``deps``/``errors`` are
    the prerequisites (``compile.Gate``), their functions and what an exception in one becomes.
    """
    out = _Flag(flag, scale, default, check_of)
    out.prerequisites(gates, deps, errors)
    if static is not None:
        out.src.emit(1, f"return {out.src.const(static)}")
        return out.build()
    for rule in rules[:-1]:
        out.quiet_rule(rule)
    out.last_rule(rules[-1])
    return out.build()


def _listing_failure(cond: Any, check: Check) -> str | None:
    """The check's own explanation for a string that fails an ``in``/``not_in``/``==`` test, which is a
    constant: the inlined test returns it as is. None for other ops (the check is asked at run time)."""
    op = cond.op
    if op == "not_in" and cond.values:
        probe: Any = cond.values[0]
    elif op == "in" or (op == "==" and type(cond.value) is str):
        taken = set(cond.values) if op == "in" else {cond.value}
        probe = "\0"
        while probe in taken:
            probe += "\0"
    else:
        return None
    detail = check({cond.attribute: probe}, None)
    assert detail is not None, "a string outside the listed values must fail the check"
    return detail
