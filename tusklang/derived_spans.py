"""Spans the source text already tells, so the source map does not store them (issue 19: memory).

The interpreter's span tables (path -> span) held an entry per key and per array item: at 5,000 flags
a fifth of `tusk compile`'s peak memory, kept alive through validation. Two kinds are left out, because
the text around a stored span gives them back exactly:

- the key of ``name = value`` (or ``name: value``) when the key is written bare right before the
  separator: ``derive_key`` finds it in front of the value's span;
- a literal item (text, number, boolean) of an array written in brackets (``["a", 1]``, on one line
  or several): ``derive_item`` reads the array's text again (with the lexer's own item pattern for a
  one-line array of plain strings and numbers, else by parsing it) and takes the item's span.

The interpreter leaves an entry out only when the derivation gives that very span: a key whose text is
as long as its name (bare) with one of ``SEPARATORS`` between it and a value it records in place
(checked per member in ``Interpreter._members``), the items of an array ``items_are_derivable`` says
are written in brackets. ``tusklang.project.sourcemap.Locator`` asks these functions when a table has
no entry. Anything else (quoted keys, an aligned `=`, directives, values from variables) is stored.

Measured on `tusk compile` of 5,000 generated flags: peak RSS 97.8 -> 92.4 MB (88.4 MB with the
snapshot written in pieces, tusklang.compiler.emit.canonical_pieces).
"""

from __future__ import annotations

import functools

from .diagnostics import SPAN_MASK, SPAN_SHIFT, Span, TuskError

# What may stand between a bare key and its value for the interpreter to leave the key out (one `=` or
# `:`, at most one space on either side): ``derive_key`` accepts any run of blanks, so it finds each.
SEPARATORS = frozenset({"=", " =", "= ", " = ", ":", " :", ": ", " : "})
_BLANKS = " \t"
# ``derive_item`` parses an array's text as this member's value
_PREFIX = "_ = "


def derive_key(value: Span, name: str) -> Span | None:
    """The span of ``name`` written bare right before ``value``'s `=` or `:`; None if it is not there."""
    text = value.source.text
    at = value >> SPAN_SHIFT
    while at > 0 and text[at - 1] in _BLANKS:
        at -= 1
    if at == 0 or text[at - 1] not in "=:":
        return None
    at -= 1
    while at > 0 and text[at - 1] in _BLANKS:
        at -= 1
    start = at - len(name)
    if start < 0 or not name or text[start:at] != name:
        return None
    return type(value)(start << SPAN_SHIFT | at)


def items_are_derivable(array: Span) -> bool:
    """Whether ``derive_item`` finds the items of the array at ``array``: it is written in brackets
    (a `- item` list's items are not: their spans are stored)."""
    return array.source.text[array >> SPAN_SHIFT] == "["  # not startswith(, start): it parses its arguments


def derive_item(array: Span, index: int) -> Span | None:
    """The span of item ``index`` of the array literal written at ``array``; None if no such item."""
    offsets = _item_offsets(array.source.text[array >> SPAN_SHIFT : array & SPAN_MASK])
    if offsets is None or not 0 <= index < len(offsets):
        return None
    base = array >> SPAN_SHIFT
    start, end = offsets[index]
    return type(array)((base + start) << SPAN_SHIFT | (base + end))


@functools.lru_cache(maxsize=256)
def _item_offsets(written: str) -> tuple[tuple[int, int], ...] | None:
    """Each item's (start, end) within ``written``, when it is one array literal; else None."""
    if not written.startswith("["):
        return None  # a variable, an expression, a directive: no item is written here
    from .syntax import nodes
    from .syntax.lexer import SIMPLE_ARRAY_RE, SIMPLE_ITEM_RE
    from .syntax.parser import parse

    if SIMPLE_ARRAY_RE.fullmatch(written):
        # One line of plain strings and numbers, the common array: its items as the lexer reads them,
        # without a parse (each makes a source and its span class, which only the collector frees).
        return tuple(item.span() for item in SIMPLE_ITEM_RE.finditer(written, 1, len(written) - 1))

    try:
        document = parse(_PREFIX + written)
    except TuskError:
        return None
    if len(document.members) != 1 or document.sections:
        return None
    value = getattr(document.members[0], "value", None)
    cut = len(_PREFIX)
    if type(value) is not nodes.Array or value.span != type(value.span)(cut << SPAN_SHIFT | cut + len(written)):
        return None
    return tuple(((item.span >> SPAN_SHIFT) - cut, (item.span & SPAN_MASK) - cut) for item in value.items)
