"""Values `tusk check` cannot know, and the checks that need them.

Statically (`tusk check`, the editor) a directive that only a compile may run (`@query`, `@date`,
`@env` of a variable that is not set and has no default) is an inert ``DirectiveCall``, and an
expression reading one an ``Expression``: the value is *unknown*. It is left out before validation,
with a note (TSK332), and every check that could depend on it is skipped: a schema, normaliser or
lint finding whose span encloses an unknown value (a flag object with an unknown
`rollout_percentage` may well be complete), and the findings that depend on a whole collection when
part of it is unknown (segment references, when segments come from `@query`). So `tusk check` never
reports a problem that `tusk compile` would not; what it cannot see, `tusk compile` checks.

A runtime-only value (`php(...)`, `@request.x`, `@learn(...)`, a method chain, an expression reading
one: tusklang/values.py) can be computed by no compile. Where one reaches a compiled value (any value
of a flag project's data) `tusk check` and `tusk compile` both report it, TSK229 at the construct, and
leave it out the same way, so the findings that depend on it are skipped rather than echoed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..diagnostics import Diagnostic, Severity, Span
from ..interpret import runtime_only_diagnostic
from ..project.sourcemap import Locator, Path, dotted
from ..values import DirectiveCall, Expression, is_runtime_only

UNKNOWN_NOTE = "TSK332"

# Values kept even when unknown: the schema takes anything there, and nothing checks it further.
KEPT: frozenset[Path] = frozenset({("feature_flags", "storage", "connection")})

# Findings about a whole collection, and where its members are defined: when any of those is unknown,
# the finding cannot be decided statically.
COLLECTIONS: dict[str, tuple[Path, ...]] = {
    "TSK330": (  # "segment `x` is not defined here"
        ("feature_flags", "targeting", "user_segments"),
        ("feature_flags", "targeting", "external_segments"),
        ("feature_flags_data", "user_segments"),
    ),
    "TSK343": (  # "flag `a` requires `b`, which is not a flag of this project" (rows may define `b`)
        ("feature_flags", "flags"),
        ("feature_flags_data", "flag_definitions"),
        ("ab_testing_config", "experiments"),
    ),
}


def _is_unknown(value: Any) -> bool:
    return isinstance(value, DirectiveCall | Expression)


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _holds(data: Any, wanted: Callable[[Any], bool]) -> bool:
    """Whether any value in ``data`` is ``wanted``: one loop, no paths, nothing copied.

    Almost every project has no runtime-only or unknown value; the walks below copy the whole tree
    and build a path per value (0.1 s and a second set of containers on 5,000 flags), so they run
    only when this finds something to leave out.
    """
    stack = [data]
    pop, extend = stack.pop, stack.extend
    while stack:
        value = pop()
        kind = type(value)
        if kind is dict:
            extend(value.values())
        elif kind is list:
            extend(value)
        elif kind in _PLAIN:
            continue
        elif isinstance(value, dict):
            extend(value.values())
        elif isinstance(value, list):
            extend(value)
        elif wanted(value):
            return True
    return False


def strip_runtime(
    data: dict[str, Any], locator: Locator, problems: list[Diagnostic]
) -> tuple[dict[str, Any], dict[Path, Span | None]]:
    """``data`` without its runtime-only values, and where each was; one TSK229 error each.

    Run by check and compile alike, before the unknown values are left out. A list holding one is
    left out as a whole, as ``strip_unknown`` does.
    """
    found: dict[Path, Span | None] = {}
    if not _holds(data, is_runtime_only):
        return data, found

    def walk(value: Any, path: Path) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                kept = walk(item, (*path, key))
                if kept is not _DROP:
                    out[key] = kept
            return out
        if isinstance(value, list):
            first = next((item for item in value if is_runtime_only(item)), None)
            if first is not None:
                return drop(first, path)
            return [walk(item, (*path, index)) for index, item in enumerate(value)]
        if is_runtime_only(value):
            return drop(value, path)
        return value

    def drop(value: Any, path: Path) -> Any:
        place = locator.value(path)
        diagnostic = runtime_only_diagnostic(value, dotted(path), place)
        found[path] = diagnostic.span
        problems.append(diagnostic)
        return _DROP

    return walk(data, ()), found


def strip_unknown(
    data: dict[str, Any], locator: Locator, notes: list[Diagnostic]
) -> tuple[dict[str, Any], dict[Path, Span | None]]:
    """``data`` without its unknown values, and where each was (path -> span); one TSK332 note each.

    A list with an unknown item is unknown as a whole: dropping the item would shift the others.
    """
    unknown: dict[Path, Span | None] = {}
    if not _holds(data, _is_unknown):
        return data, unknown

    def walk(value: Any, path: Path) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                sub = (*path, key)
                if sub in KEPT:
                    out[key] = item
                    continue
                kept = walk(item, sub)
                if kept is not _DROP:
                    out[key] = kept
            return out
        if isinstance(value, list):
            first = next((item for item in value if _is_unknown(item)), None)
            if first is not None:
                return _drop(first, path)
            return [walk(item, (*path, index)) for index, item in enumerate(value)]
        if _is_unknown(value):
            return _drop(value, path)
        return value

    def _drop(value: DirectiveCall | Expression, path: Path) -> Any:
        span = locator.value(path)
        unknown[path] = span
        what = f"@{value.name}(...)" if isinstance(value, DirectiveCall) else "an expression reading a directive"
        notes.append(
            Diagnostic(
                UNKNOWN_NOTE,
                f"{what} at `{dotted(path)}` was not run; its value is not checked",
                span,
                Severity.INFO,
                "`tusk compile` runs directives and checks the result",
            )
        )
        return _DROP

    return walk(data, ()), unknown


_DROP: Any = object()


def needs_execution(diagnostic: Diagnostic, unknown: Mapping[Path, Span | None]) -> bool:
    """Whether a finding may depend on an unknown value (so `tusk check` cannot decide it)."""
    if not unknown or diagnostic.code == UNKNOWN_NOTE:
        return False
    collections = COLLECTIONS.get(diagnostic.code)
    if collections and any(_overlaps(path, where) for path in unknown for where in collections):
        return True
    span = diagnostic.span
    if span is None:
        return False
    return any(
        inner is not None and inner.source is span.source and span.start <= inner.start and inner.end <= span.end
        for inner in unknown.values()
    )


def _overlaps(a: Path, b: Path) -> bool:
    """One path is at or under the other."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]
