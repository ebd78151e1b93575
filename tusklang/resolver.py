"""Resolve a parsed document: run @env, @query, @file, @date through the directive registry.

A separate pass after parsing: parsing never runs anything. Every failure is a diagnostic at the
directive's position (inside an included file: at its own line, with the include chain); nothing a
directive fails to produce ever becomes data.

This is the library's one-document entry point (`tusklang.resolve`); commands read whole projects
with `tusklang.project.load_project`, which runs the same hook (tusklang/project/resolving.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .diagnostics import Diagnostic, Span, TuskError
from .directives import REGISTRY, IncludedFile, ResolveContext
from .interpret import TaintMap, runtime_only_diagnostic, runtime_only_problems
from .project.resolving import context_for, include_chains, run_document, with_include_chain
from .project.settings import DEFAULT_MAX_ROWS, DEFAULT_QUERY_TIMEOUT, Settings
from .project.sourcemap import Locator, dotted
from .syntax import nodes
from .syntax.parser import parse

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
    included: list[IncludedFile] = field(default_factory=list)

    @property
    def locator(self) -> Locator:
        """Where each value and key is written: the tables leave out what the text tells (derived_spans)."""
        return Locator(self.spans, self.key_spans)

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
    query_timeout: float = DEFAULT_QUERY_TIMEOUT,
    max_rows: int = DEFAULT_MAX_ROWS,
    context: ResolveContext | None = None,
    settings: Settings | None = None,
) -> Resolved:
    """Run every directive of ``document``; raise TuskError with all problems if any.

    ``settings`` says everything at once; without it the keywords build one, ``env`` being the whole
    environment (default ``os.environ``): `@env` reads it, and so do TUSK_DATABASE_URL and
    SOURCE_DATE_EPOCH (Settings.from_environment).
    """
    ctx = context or make_context(
        document,
        env=env,
        database=database,
        base_dir=base_dir,
        project_root=project_root,
        allow_outside_root=allow_outside_root,
        query_timeout=query_timeout,
        max_rows=max_rows,
        settings=settings,
    )
    own_connection = context is None and ctx.database is None
    try:
        interpreter, data = run_document(document, ctx)
    finally:
        if own_connection:
            ctx.close()
    # What only the application can compute cannot be resolved: TSK229 where it reached the data.
    runtime = [
        runtime_only_diagnostic(value, dotted(path), interpreter.spans.get(path))
        for path, value in runtime_only_problems(data)
    ]
    diagnostics = with_include_chain([*interpreter.diagnostics, *runtime], include_chains(ctx.included))
    if any(d.is_error for d in diagnostics):
        raise TuskError(diagnostics)
    return Resolved(
        data,
        interpreter.spans,
        interpreter.key_spans,
        ctx.queries,
        diagnostics,
        interpreter.taint,
        ctx.files,
        ctx.included,
    )


def make_context(
    document: nodes.Document | None = None,
    *,
    env: dict[str, str] | None = None,
    database: str | Database | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    project_root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
    query_timeout: float = DEFAULT_QUERY_TIMEOUT,
    max_rows: int = DEFAULT_MAX_ROWS,
    settings: Settings | None = None,
    execute: bool = True,
) -> ResolveContext:
    """A context for one document: its folder is the base of @file paths and, by default, the root."""
    if settings is None:
        settings = Settings.from_environment(
            environ=env,
            database=database,
            allow_outside_root=allow_outside_root,
            query_timeout=query_timeout,
            max_rows=max_rows,
        )
    if base_dir is None:
        path = document.source.path if document is not None else None
        base = Path(path).resolve().parent if path and Path(path).exists() else Path.cwd()
    else:
        base = Path(base_dir).resolve()
    root = project_root if project_root is not None else settings.root
    return context_for(
        settings, base_dir=base, root=Path(root).resolve() if root is not None else base, execute=execute
    )


def resolve(document: nodes.Document | str, **options: Any) -> dict[str, Any]:
    """The data of a document (or TuskLang text) with every directive run. See resolve_document."""
    if isinstance(document, str):
        document = parse(document, options.pop("path", None))
    return resolve_document(document, **options).data


def resolve_file_text(text: str, path: str | None, **options: Any) -> dict[str, Any]:
    return resolve_document(parse(text, path), **options).data


__all__ = ["REGISTRY", "Resolved", "make_context", "resolve", "resolve_document", "resolve_file_text"]
