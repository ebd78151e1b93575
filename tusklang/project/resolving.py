"""Running a document's directives: the directive hook, @file includes and their chains.

Shared by the project loader (tusklang/project/loader.py) and the library's `resolve`
(tusklang/resolver.py). One ResolveContext serves a whole project: one database connection, one
include stack, one record of the files read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .._gc import gc_paused
from ..diagnostics import Diagnostic, Related, Span, TuskError
from ..directives import (
    REGISTRY,
    SECRET_DIRECTIVES,
    DirectiveFailed,
    Included,
    IncludedFile,
    ResolveContext,
    unknown,
    unknown_directive,
)
from ..interpret import DirectiveHook, Interpreter, inert_directive, is_runtime_directive
from ..source import SourceFile
from ..syntax import nodes
from ..syntax.parser import parse
from .settings import Settings

INCLUDED_HERE = "included from here"


def context_for(
    settings: Settings,
    *,
    base_dir: Path,
    root: Path,
    execute: bool,
    names: Mapping[str, str] | None = None,
    absolute: bool = False,
) -> ResolveContext:
    """The context of one run over a project, from its Settings.

    Included files' spans carry a name relative to the working folder (absolute with ``absolute``, as
    the files asked for were named), or for a file also asked for, the name it was asked for by
    (``names``: resolved path -> name), so one file has one name however it was reached.
    """
    ctx = ResolveContext(
        env=settings.env,
        base_dir=base_dir,
        project_root=root,
        allow_outside_root=settings.allow_outside_root,
        query_timeout=settings.query_timeout,
        max_rows=settings.max_rows,
        execute=execute,
        now=settings.now,
        clock_error=settings.clock_error,
    )
    if isinstance(settings.database, str) or settings.database is None:
        ctx.database_url = settings.database
    else:
        ctx.database = settings.database  # the caller's open connection: the caller closes it
    given = dict(names or {})

    def name(target: Path) -> str:
        return given.get(str(target)) or (str(target) if absolute else display_name(target))

    ctx.include = lambda text, target, node, parent: _include(ctx, text, target, node, parent, name)
    return ctx


def hook(ctx: ResolveContext) -> DirectiveHook:
    """The interpreter's directive hook: run (or, statically, check) each call."""

    def run(node: nodes.Directive, args: list[Any], interp: Interpreter) -> Any:
        directive = REGISTRY.get(node.name)
        if directive is None:
            if is_runtime_directive(node.name):
                # Only the application runs it: inert, reported where a compiled value needs it (TSK229).
                return inert_directive(node, args)
            interp.report(unknown_directive(node))
            return None
        if not ctx.execute and not directive.static:
            problems = directive.check(node, args)
            if problems:
                interp.report(*problems)
            return unknown(node, args)
        try:
            return directive.resolve(node, args, ctx, interp)
        except DirectiveFailed as exc:
            interp.report(*exc.diagnostics)
            return None

    return run


def run_document(document: nodes.Document, ctx: ResolveContext) -> tuple[Interpreter, dict[str, Any]]:
    """Interpret one top-level document with ``ctx`` (its folder is the base of its @file paths)."""
    own = Path(document.source.path).resolve() if document.source.path and Path(document.source.path).exists() else None
    if own is not None:
        ctx.include_stack.append(own)  # an include of the file itself is a cycle
    interpreter = Interpreter(document, hook(ctx), record_spans=True, secret_directives=SECRET_DIRECTIVES)
    try:
        with gc_paused():  # many small acyclic objects, as in parse (tusklang._gc)
            data = interpreter.run()
    finally:
        if own is not None:
            ctx.include_stack.pop()
    return interpreter, data


def _include(
    ctx: ResolveContext,
    text: str,
    target: Path,
    node: nodes.Directive,
    parent: Interpreter,
    namer: Callable[[Path], str],
) -> Included:
    """Parse and interpret an @file target with the including run's context."""
    name = namer(target)
    calls = (node.span, *reversed(ctx.include_calls))  # innermost first
    try:
        document = parse(text, name)
    except TuskError as exc:
        first = exc.diagnostics[0].span if exc.diagnostics else None
        ctx.included.append(IncludedFile(target, name, text, first.source if first else None, None, calls))
        raise DirectiveFailed(*exc.diagnostics) from None
    ctx.included.append(IncludedFile(target, name, text, document.source, document, calls))
    ctx.files.append(target)
    saved = (ctx.base_dir, ctx.path_prefix)
    ctx.base_dir = target.parent
    ctx.path_prefix = ctx.path_prefix + parent.path
    ctx.include_stack.append(target)
    ctx.include_calls.append(node.span)
    try:
        interpreter = Interpreter(document, hook(ctx), record_spans=True, secret_directives=SECRET_DIRECTIVES)
        data = interpreter.run()
    finally:
        ctx.include_calls.pop()
        ctx.include_stack.pop()
        ctx.base_dir, ctx.path_prefix = saved
    if any(d.is_error for d in interpreter.diagnostics):
        raise DirectiveFailed(*interpreter.diagnostics)
    parent.diagnostics.extend(interpreter.diagnostics)  # its warnings are the including run's too
    return Included(data, interpreter.spans, interpreter.key_spans, interpreter.taint)


def display_name(target: Path) -> str:
    """The name an included file's spans carry: relative to the working folder when possible."""
    try:
        return os.path.relpath(target)
    except ValueError:  # another drive (Windows)
        return str(target)


def include_chains(files: Iterable[IncludedFile]) -> dict[SourceFile, tuple[Span, ...]]:
    """Each included file's source -> the @file calls that brought it in (innermost first)."""
    chains: dict[SourceFile, tuple[Span, ...]] = {}
    for file in files:
        if file.source is not None:
            chains.setdefault(file.source, file.calls)
    return chains


def with_include_chain(
    diagnostics: Sequence[Diagnostic], chains: dict[SourceFile, tuple[Span, ...]]
) -> list[Diagnostic]:
    """Diagnostics inside included files, each with its include chain as related spans."""
    if not chains:
        return list(diagnostics)
    out = []
    for d in diagnostics:
        calls = chains.get(d.span.source) if d.span is not None else None
        if calls and not any(r.message == INCLUDED_HERE for r in d.related):
            d = replace(d, related=(*d.related, *(Related(call, INCLUDED_HERE) for call in calls)))
        out.append(d)
    return out
