"""A flag's `rules` and their clauses, lowered into snapshot rules and conditions (docs/config.md, "Rules").

Every operand is checked here, at its position: a regular expression that does not compile, a version
that is not SemVer, a date that is not ISO 8601, a string where a number is compared, a list where one
value is expected. The evaluator then never meets an operand it cannot use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..schema.feature_flags import FlagConfig
from ..schema.rules import (
    LIST_OPS,
    PRESENCE_OPS,
    AllClause,
    AnyClause,
    AttributeClause,
    NotClause,
    SegmentClause,
)
from ..snapshot.format import is_semver, regex_problem
from .locate import Path, suggest
from .typed import At, Typed, kind, resolve, shown

if TYPE_CHECKING:
    from .normalise import Normaliser

_ORDERING = frozenset({"<", "<=", ">", ">="})
_SUBSTRING = frozenset({"starts_with", "ends_with", "contains"})
_SEMVER_OPS = {"semver_eq", "semver_ne", "semver_lt", "semver_le", "semver_gt", "semver_ge"}
_SCALAR = (str, int, float, bool)
_SYMBOL = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge"}


def lower_rules(norm: Normaliser, key: str, cfg: FlagConfig, typed: Typed, at: At) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for index, rule in enumerate(cfg.rules or []):
        rpath = at("rules", index)
        rid = rule.id or f"rule-{index + 1}"
        lowered: dict[str, Any] = {"id": rid, "conditions": lower_when(norm, rule.when, (*rpath, "when"))}
        if rule.description:
            lowered["description"] = rule.description
        if rule.rollout is not None:
            # One salt for every rule of the flag: reordering or renaming rules never re-buckets a unit.
            lowered["rollout"] = {
                "salt": f"{key}/rollout",
                "percentage": norm.percent(rule.rollout, (*rpath, "rollout")),
            }
        if rule.split is not None:
            if "serve" in rule.model_fields_set:
                norm.error(
                    "TSK319",
                    f"rule `{rid}` of flag `{key}` has both `serve` and `split`",
                    (*rpath, "serve"),
                    "a rule serves one variant, or splits its units between several",
                    key=True,
                )
            for name in rule.split:
                if name not in typed.values:
                    _unknown_variant(norm, key, name, typed, (*rpath, "split", name), key_span=True)
            lowered["split"] = {
                "salt": f"{key}/split",
                "weights": norm.weights(f"{key}` rule `{rid}", rule.split, (*rpath, "split")),
            }
        else:
            serve = _serve(norm, key, rid, rule.serve if "serve" in rule.model_fields_set else None, typed, rpath)
            if serve is not None:
                lowered["serve"] = serve
        out.append(lowered)
    return out


def _serve(norm: Normaliser, key: str, rid: str, want: Any, typed: Typed, rpath: Path) -> str | None:
    if want is None:
        if "on" in typed.values:
            return "on"
        norm.error(
            "TSK305",
            f"rule `{rid}` of flag `{key}` says neither what it serves nor how it splits",
            rpath,
            f'add `serve = "<variant>"` (one of {", ".join(typed.values)}) or `split = {{ ... }}`',
        )
        return None
    found = resolve(typed.values, want)
    if len(found) == 1:
        return found[0]
    if found:
        norm.error(
            "TSK319",
            f"rule `{rid}` of flag `{key}` serves {shown(want)}, the value of several variants ({', '.join(found)})",
            (*rpath, "serve"),
            "name the variant instead",
        )
        return None
    _unknown_variant(norm, key, want, typed, (*rpath, "serve"))
    return None


def _unknown_variant(norm: Normaliser, key: str, want: Any, typed: Typed, path: Path, key_span: bool = False) -> None:
    close = suggest(want, list(typed.values)) if isinstance(want, str) else None
    norm.error(
        "TSK319",
        f"flag `{key}` has no variant named {shown(want)}" + ("" if isinstance(want, str) else " nor with that value"),
        path,
        f"did you mean `{close}`?" if close else "variants: " + ", ".join(typed.values),
        key=key_span,
    )


def lower_when(norm: Normaliser, when: Any, path: Path) -> list[dict[str, Any]]:
    """The conditions of a `when`: one clause, or a list of clauses that must all hold."""
    if when is None:
        return []
    if isinstance(when, list):
        found = [lower_clause(norm, clause, (*path, index)) for index, clause in enumerate(when)]
        return [c for c in found if c is not None]
    if isinstance(when, AllClause) and when.all:  # `when = { all = [...] }` is the rule's own list
        return lower_when(norm, when.all, (*path, "all"))
    condition = lower_clause(norm, when, path)
    return [] if condition is None else [condition]


def lower_clause(norm: Normaliser, clause: Any, path: Path) -> dict[str, Any] | None:
    if isinstance(clause, AttributeClause):
        return _attribute(norm, clause, path)
    if isinstance(clause, SegmentClause):
        names = [clause.segment] if isinstance(clause.segment, str) else list(clause.segment)
        norm.segment_refs(names, (*path, "segment"))
        return {"op": "segment", "segments": names}
    if isinstance(clause, AllClause | AnyClause):
        op = "all" if isinstance(clause, AllClause) else "any"
        items = clause.all if isinstance(clause, AllClause) else clause.any
        if not items:
            norm.error(
                "TSK342",
                f"an empty `{op}` {'holds for every unit' if op == 'all' else 'holds for no unit'}",
                (*path, op),
                "list the clauses it combines, or remove it",
            )
            return None
        found = [lower_clause(norm, item, (*path, op, index)) for index, item in enumerate(items)]
        return {"op": op, "conditions": [c for c in found if c is not None]}
    if isinstance(clause, NotClause):
        inner = lower_clause(norm, clause.not_, (*path, "not"))
        return None if inner is None else {"op": "not", "condition": inner}
    return None  # validation already refused anything else


def _attribute(norm: Normaliser, clause: AttributeClause, path: Path) -> dict[str, Any] | None:
    op, attribute = clause.op, clause.attribute
    given = clause.model_fields_set
    condition: dict[str, Any] = {"op": op, "attribute": attribute}
    if op in PRESENCE_OPS:
        for extra in ("value", "values"):
            if extra in given:
                norm.error("TSK342", f"`{op}` takes no operand", (*path, extra), f"remove `{extra}`", key=True)
                return None
        return condition
    if op in LIST_OPS:
        if "values" not in given or clause.values is None:
            norm.error(
                "TSK342",
                f"`{op}` compares `{attribute}` with a list: write `values = [...]`",
                (*path, "value") if "value" in given else path,
                f"e.g. values = [{shown(clause.value)}]" if "value" in given else None,
                key="value" in given,
            )
            return None
        if not clause.values:
            norm.error(
                "TSK342",
                f"`{attribute} {op} []` {'holds for every unit' if op == 'not_in' else 'holds for no unit'}",
                (*path, "values"),
                "list at least one value",
            )
            return None
        ok = True
        for index, item in enumerate(clause.values):
            if not isinstance(item, _SCALAR):
                norm.error(
                    "TSK342",
                    f"`{op}` lists {kind(item)}; it compares strings, numbers and booleans",
                    (*path, "values", index),
                )
                ok = False
        condition["values"] = list(clause.values)
        return condition if ok else None
    if "value" not in given:
        norm.error(
            "TSK342",
            f"`{op}` compares `{attribute}` with one value: write `value = ...`",
            (*path, "values") if "values" in given else path,
            ("`in` / `not_in` take a list" if op in ("==", "!=") else None) if "values" in given else None,
            key="values" in given,
        )
        return None
    value = _operand(norm, op, clause.value, (*path, "value"))
    if value is _BAD:
        return None
    condition["value"] = value
    return condition


_BAD: Any = object()


def _operand(norm: Normaliser, op: str, value: Any, vpath: Path) -> Any:
    if op in ("==", "!="):
        if isinstance(value, _SCALAR):
            return value
        return _bad(norm, f"`{op}` compares with a string, a number or a boolean, not {kind(value)}", vpath)
    if op in _ORDERING:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        hint = None
        if isinstance(value, str) and norm.looks_like_instant(value):  # before semver: 2024-06-01 is one
            hint = f'dates compare with `op = "{"before" if op in ("<", "<=") else "after"}"`'
        elif isinstance(value, str) and is_semver(value):
            hint = f'versions compare with `op = "semver_{_SYMBOL[op]}"`'
        return _bad(norm, f"`{op}` compares numbers, and {shown(value)} is {kind(value)}", vpath, hint)
    if not isinstance(value, str) and op not in ("before", "after"):
        return _bad(norm, f"`{op}` takes a string, not {kind(value)}", vpath)
    if op in _SUBSTRING:
        return value
    if op == "matches":
        problem = regex_problem(value)
        return value if problem is None else _bad(norm, problem, vpath, "Python `re` syntax; the match is re.search")
    if op in _SEMVER_OPS:
        if is_semver(value):
            return value
        return _bad(
            norm,
            f"{shown(value)} is not a semantic version",
            vpath,
            'write MAJOR[.MINOR[.PATCH]][-prerelease], e.g. "2.1.0" or "v2.1"',
        )
    instant = norm.instant(value, vpath)  # before / after: TSK321 when it does not parse
    return _BAD if instant is None else norm.iso(instant)


def _bad(norm: Normaliser, message: str, path: Path, hint: str | None = None) -> Any:
    norm.error("TSK342", message, path, hint)
    return _BAD


__all__ = ["lower_clause", "lower_rules", "lower_when", "suggest"]
