"""Resolve a parsed document: run @env, @query, @file, @date through the directive registry.

A separate pass after parsing: parsing never runs anything. Every failure is a diagnostic at the
directive's position; nothing a directive fails to produce ever becomes data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._gc import gc_paused
from .diagnostics import Diagnostic, Span, TuskError
from .directives import REGISTRY, SECRET_DIRECTIVES, DirectiveFailed, ResolveContext, unknown_directive
from .interpret import Interpreter, TaintMap
from .syntax import nodes
from .syntax.parser import parse
from .values import DirectiveCall

if TYPE_CHECKING:
    from .db import Database

Path_ = tuple[str | int, ...]


@dataclass
class Resolved:
    data: dict[str, Any]
    spans: dict[Path_, Span]
    key_spans: dict[Path_, Span]
    queries: list[dict[str, Any]]
    diagnostics: list[Diagnostic]
    # Data path -> spans of the @env calls its value depends on (through variables, interpolation,
    # operators, @file): the compiler keeps them out of snapshots (tusklang/compiler/secrets.py).
    taint: TaintMap = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    @property
    def secret_paths(self) -> set[Path_]:
        """The paths whose value depends on @env (anything below them is listed separately)."""
        return set(self.taint)


def resolve_document(
    document: nodes.Document,
    *,
    env: dict[str, str] | None = None,
    database: str | Database | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    project_root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
    query_timeout: float = 5.0,
    max_rows: int = 10_000,
    context: ResolveContext | None = None,
) -> Resolved:
    """Run every directive of ``document``; raise TuskError with all problems if any."""
    ctx = context or make_context(
        document,
        env=env,
        database=database,
        base_dir=base_dir,
        project_root=project_root,
        allow_outside_root=allow_outside_root,
        query_timeout=query_timeout,
        max_rows=max_rows,
    )
    own_connection = context is None and not _is_database(database)
    if document.source.path and Path(document.source.path).exists():
        ctx.include_stack.append(Path(document.source.path).resolve())
    interpreter = Interpreter(document, _hook(ctx), record_spans=True, secret_directives=SECRET_DIRECTIVES)
    try:
        with gc_paused():  # many small acyclic objects, as in parse (tusklang._gc)
            data = interpreter.run()
    finally:
        if own_connection:
            ctx.close()
    if any(d.is_error for d in interpreter.diagnostics):
        raise TuskError(interpreter.diagnostics)
    return Resolved(
        data,
        interpreter.spans,
        interpreter.key_spans,
        ctx.queries,
        interpreter.diagnostics,
        interpreter.taint,
        ctx.files,
    )


def make_context(
    document: nodes.Document | None = None,
    *,
    env: dict[str, str] | None = None,
    database: str | Database | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    project_root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
    query_timeout: float = 5.0,
    max_rows: int = 10_000,
) -> ResolveContext:
    environ = dict(os.environ) if env is None else dict(env)
    if base_dir is None:
        path = document.source.path if document is not None else None
        base = Path(path).resolve().parent if path and Path(path).exists() else Path.cwd()
    else:
        base = Path(base_dir).resolve()
    ctx = ResolveContext(
        env=environ,
        base_dir=base,
        project_root=Path(project_root).resolve() if project_root is not None else base,
        allow_outside_root=allow_outside_root,
        query_timeout=query_timeout,
        max_rows=max_rows,
    )
    if _is_database(database):
        ctx.database = database  # type: ignore[assignment]
    else:
        ctx.database_url = database or environ.get("TUSK_DATABASE_URL")  # type: ignore[assignment]
    return ctx


def _is_database(value: object) -> bool:
    return value is not None and not isinstance(value, str)


def _hook(ctx: ResolveContext) -> Any:
    def run(node: nodes.Directive, args: list[Any], interp: Interpreter) -> Any:
        directive = REGISTRY.get(node.name)
        if directive is None:
            interp.report(unknown_directive(node))
            return None
        try:
            return directive.resolve(node, args, ctx, interp)
        except DirectiveFailed as exc:
            interp.report(exc.diagnostic)
            return None

    return run


def static_hook(node: nodes.Directive, args: list[Any], interp: Interpreter) -> Any:
    """For `tusk check` and the editor: check a directive's arguments, never run it."""
    directive = REGISTRY.get(node.name)
    if directive is None:
        interp.diagnostics.append(unknown_directive(node))
    else:
        interp.diagnostics.extend(directive.check(node, args))
    return DirectiveCall(node.name, None if node.args is None else tuple(args), node.span.location())


def resolve_included(text: str, target: Path, ctx: ResolveContext, parent: Interpreter) -> tuple[Any, TaintMap]:
    """Parse and resolve an @file target with the including compile's context: its data and taint."""
    document = parse(text, _display(target, ctx))
    saved = (ctx.base_dir, ctx.path_prefix)
    prefix = ctx.path_prefix + parent.path
    ctx.base_dir = target.parent
    ctx.path_prefix = prefix
    ctx.include_stack.append(target)
    ctx.files.append(target)
    try:
        interpreter = Interpreter(document, _hook(ctx), record_spans=True, secret_directives=SECRET_DIRECTIVES)
        data = interpreter.run()
    finally:
        ctx.include_stack.pop()
        ctx.base_dir, ctx.path_prefix = saved
    if any(d.is_error for d in interpreter.diagnostics):
        raise TuskError(interpreter.diagnostics)
    for path, span in interpreter.spans.items():
        parent.spans[parent.path + path] = span
    for path, span in interpreter.key_spans.items():
        parent.key_spans[parent.path + path] = span
    return data, interpreter.taint


def _display(target: Path, ctx: ResolveContext) -> str:
    root = ctx.project_root or ctx.base_dir
    try:
        return os.path.relpath(target, Path.cwd()) if not target.is_relative_to(root) else os.path.relpath(target)
    except ValueError:
        return str(target)


def resolve(document: nodes.Document | str, **options: Any) -> dict[str, Any]:
    """The data of a document (or TuskLang text) with every directive run. See resolve_document."""
    if isinstance(document, str):
        document = parse(document, options.pop("path", None))
    return resolve_document(document, **options).data


def resolve_file_text(text: str, path: str | None, **options: Any) -> dict[str, Any]:
    return resolve_document(parse(text, path), **options).data


__all__ = ["REGISTRY", "Resolved", "resolve", "resolve_document", "resolve_file_text", "static_hook"]
