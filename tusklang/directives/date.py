"""`@date`, `@date("Y-m-d")`: the build date, reproducible under SOURCE_DATE_EPOCH.

Formats use PHP's letters, as TuskLang files do (Y m d H i s, c for ISO 8601, U for the epoch),
or strftime's when the format contains `%`. Without SOURCE_DATE_EPOCH the current UTC time is used
and the snapshot is then not reproducible; `tusk compile` warns about it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..diagnostics import Diagnostic, Span
from ..syntax import nodes
from . import Directive, DirectiveFailed, ResolveContext, arg_span

_PHP = {
    "Y": "%Y",
    "y": "%y",
    "m": "%m",
    "n": "%-m",
    "d": "%d",
    "j": "%-d",
    "H": "%H",
    "G": "%-H",
    "i": "%M",
    "s": "%S",
    "D": "%a",
    "l": "%A",
    "M": "%b",
    "F": "%B",
}


def check(node: nodes.Directive, args: list[Any]) -> list[Diagnostic]:
    if args and (len(args) > 1 or not isinstance(args[0], str)):
        return [Diagnostic("TSK227", "@date takes one optional format string", arg_span(node, 0))]
    return []


def now(ctx: ResolveContext, span: Span | None = None) -> datetime:
    """The build clock of the run (Settings.now: SOURCE_DATE_EPOCH, read once), else the wall clock."""
    if ctx.clock_error is not None:
        raise DirectiveFailed(
            Diagnostic(
                "TSK228",
                "SOURCE_DATE_EPOCH must be a whole number of seconds (a date in the years 1 to 9999)",
                span,
                hint="e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)",
            )
        )
    if ctx.now is not None:
        return ctx.now if ctx.now.tzinfo else ctx.now.replace(tzinfo=UTC)
    return datetime.now(UTC)


def resolve(node: nodes.Directive, args: list[Any], ctx: ResolveContext, interp: Any) -> Any:
    problems = check(node, args)
    if problems:
        raise DirectiveFailed(problems[0])
    moment = now(ctx, node.span)
    if not args:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    fmt = args[0]
    if "%" in fmt:
        return moment.strftime(fmt)
    out = []
    for ch in fmt:
        if ch == "c":
            out.append(moment.strftime("%Y-%m-%dT%H:%M:%S+00:00"))
        elif ch == "U":
            out.append(str(int(moment.timestamp())))
        elif ch in _PHP:
            out.append(moment.strftime(_PHP[ch]))
        else:
            out.append(ch)
    return "".join(out)


DIRECTIVE = Directive("date", "the build date (SOURCE_DATE_EPOCH when set)", check, resolve)
