"""Static checks of one file, for `tusk check` and the language server: never runs a directive."""

from __future__ import annotations

from .diagnostics import Diagnostic, TuskError
from .interpret import Interpreter
from .syntax.parser import parse


def check_text(text: str, path: str | None = None) -> list[Diagnostic]:
    try:
        document = parse(text, path)
    except TuskError as exc:
        return exc.diagnostics
    from .resolver import static_hook

    interpreter = Interpreter(document, static_hook)
    interpreter.run()
    return interpreter.diagnostics
