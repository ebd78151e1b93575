"""Static checks of one text (syntax and semantics), as `tusk check` makes them: never runs a directive.

`@env` reads the given environment (none by default: a variable without a default is then an unknown
value), `@file` includes are followed read-only, every other directive's arguments are checked and
its value is unknown. Whole projects (schema and lint too): `tusklang.compiler.check.check_project`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .diagnostics import Diagnostic, TuskError
from .project.resolving import include_chains, run_document, with_include_chain
from .project.settings import Settings
from .syntax.parser import parse


def check_text(text: str, path: str | None = None, env: Mapping[str, str] | None = None) -> list[Diagnostic]:
    return check_source(text, path, env)[0]


def check_source(
    text: str, path: str | None = None, env: Mapping[str, str] | None = None
) -> tuple[list[Diagnostic], dict[str, Any] | None]:
    """The diagnostics and, when the file parses, its data with unknown values left inert."""
    try:
        document = parse(text, path)
    except TuskError as exc:
        return exc.diagnostics, None
    from .resolver import make_context

    ctx = make_context(document, settings=Settings(env=dict(env or {})), execute=False)
    interpreter, data = run_document(document, ctx)
    return with_include_chain(interpreter.diagnostics, include_chains(ctx.included)), data
