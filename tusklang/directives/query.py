"""`@query("SQL", params...)`: rows from the configured database, as a list of objects.

The SQL runs read-only with bound `?` parameters, a timeout and a row limit (tusklang/db): one
statement that returns rows, whatever its text and whatever the database role (docs/database.md).
Every failure, including a refused statement or a value with no JSON form, is TSK232 at the
directive. Only the SQL text's hash and the row count go into provenance; the connection string
never does.
"""

from __future__ import annotations

from typing import Any

from ..diagnostics import Diagnostic
from ..syntax import nodes
from ..values import DirectiveCall, Expression, Identifier
from . import Directive, DirectiveFailed, ResolveContext, arg_span


def check(node: nodes.Directive, args: list[Any]) -> list[Diagnostic]:
    if node.args is None or not args:
        return [
            Diagnostic(
                "TSK225",
                "@query needs the SQL text as its first argument",
                node.span,
                hint='write `@query("SELECT ... WHERE x = ?", value)`',
            )
        ]
    problems = []
    if not isinstance(args[0], str | DirectiveCall | Expression):
        problems.append(Diagnostic("TSK225", "the SQL of @query must be a string", arg_span(node, 0)))
    for index, value in enumerate(args[1:], start=1):
        if isinstance(value, Identifier) or isinstance(value, dict | list):
            problems.append(
                Diagnostic(
                    "TSK226",
                    "a @query parameter must be a string, number, boolean or null",
                    arg_span(node, index),
                    hint="parameters are bound to the `?` placeholders in order",
                )
            )
    return problems


def resolve(node: nodes.Directive, args: list[Any], ctx: ResolveContext, interp: Any) -> Any:
    problems = check(node, args)
    if problems:
        raise DirectiveFailed(problems[0])
    from ..db import QueryError

    sql = args[0]
    database = ctx.connection(node.span)
    try:
        rows = database.query(sql, args[1:])
    except QueryError as exc:
        raise DirectiveFailed(
            Diagnostic(
                "TSK232",
                f"@query failed ({exc.kind.replace('_', ' ')}): {exc.message}",
                node.span,
                hint=exc.first.hint or _HINTS.get(exc.kind),
            )
        ) from None
    import hashlib  # here, not at import: hashlib loads OpenSSL, and `tusk check` runs no @query

    ctx.queries.append(
        {
            "sha256": hashlib.sha256(sql.encode("utf-8")).hexdigest(),
            "rows": len(rows),
            "location": node.span.location(),
            "path": list(ctx.path_prefix + interp.path),
        }
    )
    return rows


_HINTS = {
    "read_only": "queries run read-only: @query can only read (SELECT)",
    "multiple_statements": "@query runs exactly one statement",
    "timeout": "make the query faster, or raise the limit with --query-timeout",
    "too_many_rows": "narrow the query (WHERE/LIMIT), or raise the limit with --max-rows",
    "connection": "check that the database server is running and the URL is right",
}

DIRECTIVE = Directive("query", "rows from the database (read-only, bound parameters)", check, resolve)
