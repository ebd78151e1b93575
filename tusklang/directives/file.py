"""`@file("other.tsk")`, `@file("other.tsk", "key.path")`: another TuskLang file's data.

Paths are relative to the including file. They may not leave the project root (the folder of the
file compiled first) unless `allow_outside_root` is set. An include cycle is an error that shows
the cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostic, Related, TuskError
from ..syntax import nodes
from . import Directive, DirectiveFailed, ResolveContext, arg_span


def check(node: nodes.Directive, args: list[Any]) -> list[Diagnostic]:
    if node.args is None or not 1 <= len(args) <= 2 or not all(isinstance(a, str) for a in args):
        return [
            Diagnostic(
                "TSK240",
                "@file takes a path and an optional key path, both strings",
                node.span,
                hint='write `@file("segments.tsk")` or `@file("shared.tsk", "targeting.segments")`',
            )
        ]
    return []


def resolve(node: nodes.Directive, args: list[Any], ctx: ResolveContext, interp: Any) -> Any:
    problems = check(node, args)
    if problems:
        raise DirectiveFailed(problems[0])
    from ..resolver import resolve_included

    target = (ctx.base_dir / args[0]).resolve()
    root = (ctx.project_root or ctx.base_dir).resolve()
    if not ctx.allow_outside_root and not target.is_relative_to(root):
        raise DirectiveFailed(
            Diagnostic(
                "TSK241",
                f"@file path `{args[0]}` leaves the project root {root}",
                arg_span(node, 0),
                hint="keep included files inside the project, or pass --allow-outside-root",
            )
        )
    if target in ctx.include_stack:
        cycle = [*ctx.include_stack[ctx.include_stack.index(target) :], target]
        raise DirectiveFailed(
            Diagnostic(
                "TSK242",
                "include cycle: " + " -> ".join(p.name for p in cycle),
                node.span,
                hint="an included file may not include (directly or not) the file that includes it",
            )
        )
    try:
        text = target.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DirectiveFailed(Diagnostic("TSK243", f"@file: no such file `{args[0]}`", arg_span(node, 0))) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DirectiveFailed(
            Diagnostic("TSK243", f"@file: cannot read `{args[0]}`: {exc}", arg_span(node, 0))
        ) from None
    try:
        data = resolve_included(text, target, ctx, interp)
    except TuskError as exc:
        first = exc.diagnostics[0]
        raise DirectiveFailed(
            Diagnostic(
                first.code,
                first.message,
                first.span,
                first.severity,
                first.hint,
                (*first.related, Related(node.span, "included from here")),
            )
        ) from None
    if len(args) == 2:
        for part in args[1].split("."):
            if not isinstance(data, dict) or part not in data:
                raise DirectiveFailed(
                    Diagnostic(
                        "TSK244",
                        f"@file: `{args[0]}` has no key `{args[1]}` (missing `{part}`)",
                        arg_span(node, 1),
                    )
                )
            data = data[part]
    return data


def relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


DIRECTIVE = Directive("file", "include another TuskLang file's data", check, resolve)
