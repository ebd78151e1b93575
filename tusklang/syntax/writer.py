"""Data to canonical TuskLang text: `key = value`, one member per line, 4-space indentation.

The output parses back to the same data (`loads(dumps(x)) == x`). Objects nested in arrays are
written inline (`{ a = 1, b = 2 }`), since an array holds values, not members. So data `loads`
would refuse is refused here, as TSK130: nesting deeper than ``limits.MAX_DEPTH`` (which also stops a
list that contains itself), integers longer than ``limits.MAX_INT_DIGITS`` digits, NaN and
infinities, and lone surrogates (no file can hold one).
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..diagnostics import Diagnostic, TuskError
from ..limits import MAX_DEPTH, MAX_INT_DIGITS
from ..values import DirectiveCall, Expression, ForeignCall, Identifier, MemberChain
from .foreign import is_balanced
from .lexer import DIRECTIVE_FUNCTIONS, KEYWORDS
from .strings import quote

_BARE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_KEYWORDS = {"true", "false", "null"}
INDENT = "    "
_INT_CEILING = 10**MAX_INT_DIGITS
_CEILING_BITS = _INT_CEILING.bit_length() - 1  # below this many bits a value cannot reach the ceiling
_SURROGATE = re.compile("[\ud800-\udfff]")


def dumps(data: dict[str, Any]) -> str:
    if not isinstance(data, dict):
        _fail(f"the top level must be a dict (an object), not {type(data).__name__}")
    lines: list[str] = []
    _members(data, 0, lines)
    text = "\n".join(lines) + ("\n" if lines else "")
    # One scan of the result instead of one per string: a lone surrogate can only come from a str.
    surrogate = _SURROGATE.search(text)
    if surrogate is not None:
        _fail(f"a string holds a lone surrogate (U+{ord(surrogate.group()):04X}), which no file can encode")
    return text


def _members(data: dict[str, Any], depth: int, lines: list[str]) -> None:
    """The members of an object at ``depth`` (the top level is 0, i.e. nesting level 1)."""
    if depth >= MAX_DEPTH:
        _too_deep()
    pad = INDENT * depth
    for key, value in data.items():
        name = format_key(key)
        if isinstance(value, dict) and not _is_range(value):
            if not value:
                if depth + 1 >= MAX_DEPTH:
                    _too_deep()
                lines.append(f"{pad}{name} = {{}}")
                continue
            lines.append(f"{pad}{name} = {{")
            _members(value, depth + 1, lines)
            lines.append(f"{pad}}}")
        else:
            lines.append(f"{pad}{name} = {format_value(value, depth + 1)}")


def _too_deep() -> None:
    _fail(f"the data is nested more than {MAX_DEPTH} levels deep (or contains itself)")


def format_key(key: Any) -> str:
    if not isinstance(key, str):
        _fail(f"keys must be strings, not {type(key).__name__} ({key!r})")
    if _BARE_KEY.match(key) and key not in _KEYWORDS:
        return key
    return quote(key)


def _is_range(value: dict[str, Any]) -> bool:
    # {"min": a, "max": b} is written as an object, never as `a-b`, so it reads back the same
    # whatever the numbers; ranges are only a way to write, not a type of their own.
    return False


def format_value(value: Any, depth: int = 0) -> str:
    """``value`` as TuskLang; ``depth`` is the nesting level of the object holding it (0: the top)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if value.bit_length() > _CEILING_BITS and abs(value) >= _INT_CEILING:  # cheap test first
            _fail(
                f"an integer with more than {MAX_INT_DIGITS:,} digits cannot be written (TuskLang refuses to read it)"
            )
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            _fail(f"{value} cannot be written in TuskLang")
        text = repr(value)
        return text if any(c in text for c in ".e") else text + ".0"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, list | tuple | dict | DirectiveCall | MemberChain) and depth >= MAX_DEPTH:
        _too_deep()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v, depth + 1) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{format_key(k)} = {format_value(v, depth + 1)}" for k, v in value.items()) + " }"
    if isinstance(value, DirectiveCall):
        if value.args is None:
            return f"@{value.name}"
        return f"@{value.name}(" + ", ".join(format_value(a, depth + 1) for a in value.args) + ")"
    if isinstance(value, Identifier):
        return value.name
    if isinstance(value, Expression):
        # Its source text is a whole value; one that spans lines is kept in parentheses, inside which
        # a line break is only whitespace.
        return f"({value.text})" if "\n" in value.text else value.text
    if isinstance(value, ForeignCall):
        if not _NAME.match(value.name) or value.name in DIRECTIVE_FUNCTIONS or value.name in KEYWORDS:
            _fail(
                f"`{value.name}(...)` cannot be written as foreign code: its name must be a name that is no directive"
            )
        if not is_balanced(value.code):
            _fail(f"the code of `{value.name}(...)` does not balance its parentheses, so it cannot be written back")
        return f"{value.name}({value.code})"
    if isinstance(value, MemberChain):
        return _chain(value, depth)
    _fail(f"cannot write a {type(value).__name__} value in TuskLang: {value!r}")
    raise AssertionError  # pragma: no cover


def _chain(chain: MemberChain, depth: int) -> str:
    target = chain.target
    if (isinstance(target, DirectiveCall) and target.args is not None) or isinstance(target, ForeignCall):
        text = format_value(target, depth)
    else:  # a bare directive would take the links into its name (`@request.method`): parenthesize
        text = f"({format_value(target, depth)})"
    for index, link in enumerate(chain.links):
        if not _BARE_KEY.match(link.name):
            _fail(f"`.{link.name}` cannot be written: a member's name is letters, digits, `_` and `-`")
        text += f".{link.name}"
        if link.args is not None:
            # Each link counts a level, as the parser counts it (docs/syntax.md, Limits).
            text += "(" + ", ".join(format_value(a, depth + index + 1) for a in link.args) + ")"
    return text


def _fail(message: str) -> None:
    raise TuskError([Diagnostic("TSK130", message)])
