"""Static checks of one file, for `tusk check` and the language server: never runs a directive."""

from __future__ import annotations

from typing import Any

from .diagnostics import Diagnostic, TuskError
from .interpret import Interpreter
from .syntax.parser import parse


def check_text(text: str, path: str | None = None) -> list[Diagnostic]:
    return check_source(text, path)[0]


def check_source(text: str, path: str | None = None) -> tuple[list[Diagnostic], dict[str, Any] | None]:
    """The diagnostics and, when the file parses, its data with directives left inert."""
    try:
        document = parse(text, path)
    except TuskError as exc:
        return exc.diagnostics, None
    from .resolver import static_hook

    interpreter = Interpreter(document, static_hook)
    data = interpreter.run()
    return interpreter.diagnostics, data
