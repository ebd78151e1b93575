"""`@env(NAME)`, `@env("NAME")`, `@env(NAME, default)`: read an environment variable.

Type rule: the value is a string, unless the default is a number or a boolean, in which case the
variable's text must read as one (`"8080"` -> 8080, `"true"`/`"false"` -> booleans) or it is an
error. A missing variable without a default is an error naming it; with a default, the default.

`tusk check` and the editor (ResolveContext.execute false) read the variable too; a variable that is
not set is then the default when there is one, else an unknown value (a compile may run where it is
set), never TSK223.

The value is a secret (``secret=True``): where it may flow is decided by the compiler
(docs/directives.md). A value that is not valid UTF-8 (the OS hands such bytes to Python as lone
surrogates) is refused here, at the call: it could never be written to a snapshot, and silently
replacing its bytes would make it a different value (a wrong password, say).
"""

from __future__ import annotations

import math
import re
from typing import Any, NoReturn

from ..diagnostics import Diagnostic
from ..limits import MAX_INT_DIGITS
from ..syntax import nodes
from ..values import Identifier
from . import Directive, DirectiveFailed, ResolveContext, arg_span, unknown

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check(node: nodes.Directive, args: list[Any]) -> list[Diagnostic]:
    if node.args is None or not 1 <= len(args) <= 2:
        return [
            Diagnostic(
                "TSK222",
                "@env takes the variable's name and an optional default",
                node.span,
                hint='write `@env(NAME)` or `@env("NAME", "default")`',
            )
        ]
    name = args[0]
    name = name.name if isinstance(name, Identifier) else name
    if not isinstance(name, str) or not _NAME.match(name):
        return [
            Diagnostic(
                "TSK222",
                "the first argument of @env must be a variable name",
                arg_span(node, 0),
                hint='e.g. `@env(REDIS_URL)` or `@env("APP_ENV", "development")`',
            )
        ]
    return []


def resolve(node: nodes.Directive, args: list[Any], ctx: ResolveContext, interp: Any) -> Any:
    problems = check(node, args)
    if problems:
        raise DirectiveFailed(problems[0])
    name = args[0].name if isinstance(args[0], Identifier) else args[0]
    raw = ctx.env.get(name)
    if raw is not None and not _is_utf8(raw):
        # The value itself is never shown: it may be a secret.
        raise DirectiveFailed(
            Diagnostic(
                "TSK273",
                f"environment variable `{name}` is not valid UTF-8 text",
                node.span,
                hint="set it to UTF-8 text (a binary secret can be stored base64-encoded)",
            )
        )
    if len(args) == 1:
        if raw is None:
            if not ctx.execute:
                return unknown(node, args)
            raise DirectiveFailed(
                Diagnostic(
                    "TSK223",
                    f"environment variable `{name}` is not set",
                    node.span,
                    hint=f'set it, pass --env-file, or give a default: `@env({name}, "...")`',
                )
            )
        return raw
    default = args[1]
    if raw is None:
        return default
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        _wrong_type(node, name, "a boolean (true/false)", default)
    if isinstance(default, int):
        digits = raw.strip().replace("_", "")
        if len(digits) > MAX_INT_DIGITS:  # as for literals (int() itself stops at 4,300 digits)
            _wrong_type(node, name, f"an integer of at most {MAX_INT_DIGITS:,} digits", default, "an integer")
        try:
            return int(digits, 0)
        except ValueError:
            _wrong_type(node, name, "an integer", default)
    if isinstance(default, float):
        try:
            number = float(raw.strip())
        except ValueError:
            _wrong_type(node, name, "a number", default)
        if not math.isfinite(number):  # "nan", "inf", "1e999": no TuskLang or JSON number is one
            _wrong_type(node, name, "a finite number", default, "a number")
        return number
    return raw


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: bytes that were not UTF-8 (PEP 383)
        return False
    return True


def _wrong_type(node: nodes.Directive, name: str, kind: str, default: Any, default_kind: str = "") -> NoReturn:
    # The value itself is not shown: environment variables often hold secrets.
    raise DirectiveFailed(
        Diagnostic(
            "TSK224",
            f"environment variable `{name}` must be {kind}, because the default is {default_kind or kind}",
            node.span,
            hint=f"fix the variable's value, or make the default a string to read it as text "
            f"(default here: {default!r})",
        )
    )


DIRECTIVE = Directive("env", "read an environment variable", check, resolve, secret=True, static=True)
