"""The directive registry: one module per directive in this package, found at import time.

A directive module defines ``DIRECTIVE = Directive(name=..., check=..., resolve=...)``. ``check``
validates the arguments without running anything (for `tusk check` and the editor); ``resolve``
runs it during `tusk compile`/`tusk parse --resolve`. Adding a directive is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..diagnostics import Diagnostic, Span

if TYPE_CHECKING:
    from ..db import Database
    from ..syntax import nodes

# Directives seen in TuskLang files that only make sense inside a running application.
RUNTIME_ONLY = frozenset({"learn", "optimize", "metrics", "request", "graphql", "php", "cache"})


class DirectiveFailed(Exception):
    """Raised by a directive with the diagnostic that says why."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


@dataclass
class ResolveContext:
    """Everything a directive may use while resolving one compile (shared across @file includes)."""

    env: dict[str, str]
    database_url: str | None = None
    database: Database | None = None
    base_dir: Path = field(default_factory=Path.cwd)
    project_root: Path | None = None
    allow_outside_root: bool = False
    query_timeout: float = 5.0
    max_rows: int = 10_000
    include_stack: list[Path] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
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


def _discover() -> dict[str, Directive]:
    found: dict[str, Directive] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
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
