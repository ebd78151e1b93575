"""The directive registry: one module per directive in this package, found at import time.

A directive module defines ``DIRECTIVE = Directive(name=..., check=..., resolve=...)``. ``check``
validates the arguments without running anything; ``resolve`` runs it during `tusk compile`/`tusk
parse --resolve`. `tusk check` and the editor (``ResolveContext.execute`` false) run only the
directives marked ``static`` (they read the environment or files and change nothing: `@env`,
`@file`); any other call stays an inert ``DirectiveCall``, a value that is unknown until compile time.
Adding a directive is adding a file.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..diagnostics import Diagnostic, Span
from ..source import SourceFile
from ..values import DirectiveCall

if TYPE_CHECKING:
    from ..db import Database
    from ..syntax import nodes

# Directives seen in TuskLang files that only make sense inside a running application.
RUNTIME_ONLY = frozenset({"learn", "optimize", "metrics", "request", "graphql", "php", "cache"})


class DirectiveFailed(Exception):
    """Raised by a directive with the diagnostics that say why (an @file: every problem of the file)."""

    def __init__(self, diagnostic: Diagnostic, *more: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic
        self.diagnostics = (diagnostic, *more)


@dataclass(frozen=True)
class Included:
    """What an @file brought in: its data, where that data came from, and which of it is secret.

    ``spans``/``key_spans``/``taint`` are keyed by data paths relative to the included file's top.
    """

    data: Any
    spans: dict[tuple[str | int, ...], Span]
    key_spans: dict[tuple[str | int, ...], Span]
    taint: dict[tuple[str | int, ...], set[Span]]


@dataclass(frozen=True)
class IncludedFile:
    """A file read by @file, with the chain of calls that brought it in (innermost first)."""

    path: Path
    name: str  # the file name its spans carry
    text: str
    source: SourceFile | None  # None when it could not be read
    document: nodes.Document | None  # None when it did not parse
    calls: tuple[Span, ...]


# (text, resolved path, the @file call, the including interpreter) -> Included; raises DirectiveFailed.
# Set by the resolver (tusklang/resolver.py): parsing and interpreting a file is its job, not a directive's.
IncludeFn = Callable[[str, Path, "nodes.Directive", Any], Included]


@dataclass
class ResolveContext:
    """Everything a directive may use while resolving one project (shared across @file includes)."""

    env: Mapping[str, str]
    database_url: str | None = None
    database: Database | None = None
    base_dir: Path = field(default_factory=Path.cwd)
    project_root: Path | None = None
    allow_outside_root: bool = False
    query_timeout: float = 5.0
    max_rows: int = 10_000
    # False for `tusk check` and the editor: only ``static`` directives run (see the module docstring).
    execute: bool = True
    # The build clock when fixed (SOURCE_DATE_EPOCH), and that variable's text when it is unusable.
    now: datetime | None = None
    clock_error: str | None = None
    include: IncludeFn | None = None
    # resolved path -> text to use instead of the file's (an editor's unsaved buffers)
    overlays: Mapping[str, str] = field(default_factory=dict)
    include_stack: list[Path] = field(default_factory=list)
    # the @file calls of the includes being resolved, outermost first
    include_calls: list[Span] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    included: list[IncludedFile] = field(default_factory=list)
    path_prefix: tuple[str | int, ...] = ()

    def connection(self, span: Span) -> Database:
        """The compile's one database connection, opened on first use."""
        if self.database is None:
            if not self.database_url:
                raise DirectiveFailed(
                    Diagnostic(
                        "TSK230",
                        "@query needs a database, and none is configured",
                        span,
                        hint="pass --db sqlite:///path/to.db (or postgresql://...), or set TUSK_DATABASE_URL",
                    )
                )
            from ..db import QueryError, connect, redact_url

            try:
                self.database = connect(self.database_url, timeout=self.query_timeout, max_rows=self.max_rows)
            except ValueError as exc:
                raise DirectiveFailed(Diagnostic("TSK231", str(exc), span)) from None
            except QueryError as exc:
                raise DirectiveFailed(
                    Diagnostic(
                        "TSK231",
                        f"cannot connect to the database {redact_url(self.database_url)}: {exc.message}",
                        span,
                    )
                ) from None
        return self.database

    def close(self) -> None:
        if self.database is not None:
            self.database.close()
            self.database = None


CheckFn = Callable[["nodes.Directive", list[Any]], list[Diagnostic]]
ResolveFn = Callable[["nodes.Directive", list[Any], ResolveContext, Any], Any]


@dataclass(frozen=True)
class Directive:
    name: str
    summary: str
    check: CheckFn
    resolve: ResolveFn
    # The value is a secret (@env): the interpreter tracks where it flows, and the compiler keeps it
    # out of anything a snapshot copies verbatim (docs/directives.md).
    secret: bool = False
    # Runs in `tusk check` too (ResolveContext.execute false): reads, never changes, anything. Its
    # ``resolve`` returns ``unknown(node, args)`` for what only a compile can know.
    static: bool = False


def unknown(node: nodes.Directive, args: list[Any]) -> DirectiveCall:
    """The inert call: a value not known until compile time (docs/lint.md)."""
    return DirectiveCall(node.name, None if node.args is None else tuple(args), node.span.location())


def _discover() -> dict[str, Directive]:
    found: dict[str, Directive] = {}
    # The package's modules by file name, sorted: what pkgutil.iter_modules gives, without importing
    # pkgutil (~4% of a cached `tusk check`, issue 19).
    names = sorted(name[:-3] for path in __path__ for name in os.listdir(path) if name.endswith(".py"))
    for name in names:
        if name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{name}")
        directive = getattr(module, "DIRECTIVE", None)
        if isinstance(directive, Directive):
            found[directive.name] = directive
    return found


def unknown_directive(node: nodes.Directive) -> Diagnostic:
    from ..suggest import did_you_mean

    names = sorted(REGISTRY)
    if node.name in RUNTIME_ONLY:
        return Diagnostic(
            "TSK221",
            f"`@{node.name}` is a runtime-only directive and cannot be resolved at compile time",
            node.name_span,
            hint="compute the value in your application, or use one of: " + ", ".join(f"@{n}" for n in names),
        )
    close = did_you_mean(node.name, names)
    hint = f"did you mean `@{close}`? " if close else ""
    return Diagnostic(
        "TSK220",
        f"unknown directive `@{node.name}`",
        node.name_span,
        hint=hint + "supported directives: " + ", ".join(f"@{n}" for n in names),
    )


def arg_span(node: nodes.Directive, index: int) -> Span:
    if node.args and index < len(node.args):
        return node.args[index].span
    return node.span


# Last, so the directive modules can import the names above.
REGISTRY: dict[str, Directive] = _discover()
SECRET_DIRECTIVES: frozenset[str] = frozenset(name for name, d in REGISTRY.items() if d.secret)
