"""After a syntax error: report the errors after it, and (for editors) recover a Document anyway.

An LALR parser stops at its first error. An editor and `tusk check` want every broken line at once,
so after an error the line (or lines) it sits on is replaced by spaces, which keeps every offset, and
the text is parsed again; each new error is reported against the original source. A line is blanked
only when its brackets balance, so removing it cannot unbalance the rest (an unclosed `{` would make
every later line look wrong); anything else ends the search. The search is bounded in count and time.

``parse_tolerant`` wants a Document as well, for the outline, hover and completion of a file being
typed. The reporting above often ends with one (the text parses once its broken lines are blanked);
when it does not, a second, quieter pass goes on without reporting anything more: it lexes in
tolerant mode (an unclosed block is closed where its indentation ends, see ``blocks.py``; a stray
closer is dropped) and blanks whichever line the next error sits on, balanced or not, until the
text parses. Its own count and time bounds keep an editor responsive on any input.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from ..diagnostics import Diagnostic, Span, TuskError
from ..source import SourceFile
from . import nodes

MAX_ERRORS = 20
BUDGET_SECONDS = 0.5
# The quiet pass that recovers a document: at most this many more parses, and this much time.
MAX_REPAIRS = 40
REPAIR_SECONDS = 0.5
# Errors that mean the structure itself is broken: nothing after them can be trusted.
_FINAL = {"TSK102", "TSK103", "TSK105"}
_STRINGS = re.compile(r'"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'')
_PAIRS = (("{", "}"), ("[", "]"), ("(", ")"))
_NOT_NEWLINE = re.compile(r"[^\r\n]")
# The repair also blanks a lone carriage return (itself an error, TSK107); CRLF line ends stay.
_NOT_LINE_END = re.compile(r"\r(?!\n)|[^\r\n]")
# ``_parse_source(source, text, tolerant)``: a document and its check problems, or TuskError.
ParseOnce = Callable[[SourceFile, str, bool], tuple[Any, list[Diagnostic]]]


def is_syntax_error(diagnostic: Diagnostic) -> bool:
    code = diagnostic.code
    return code.startswith("TSK1") and code not in ("TSK120", "TSK121", "TSK122", "TSK130")


def recover(
    source: SourceFile, first: Diagnostic | None, parse_once: ParseOnce, *, want_document: bool
) -> tuple[list[Diagnostic], nodes.Document | None]:
    """``first`` and the syntax errors found after it; with ``want_document``, also a recovered Document.

    ``first`` None: the first error was not one to search past (it is reported as it is); only
    the document is wanted.
    """
    found = [] if first is None else [first]
    text = source.text
    result: tuple[Any, list[Diagnostic]] | None = None
    deadline = time.perf_counter() + BUDGET_SECONDS
    while found and len(found) < MAX_ERRORS and time.perf_counter() < deadline:
        last = found[-1]
        if last.span is None or last.code in _FINAL:
            break
        start, end = _line_bounds(text, last.span.start, last.span.end)
        segment = text[start:end]
        if not segment.strip() or not _balanced(segment):
            break
        text = text[:start] + _NOT_NEWLINE.sub(" ", segment) + text[end:]
        try:
            result = parse_once(source, text, False)
        except TuskError as exc:
            nxt = exc.diagnostics[0]
            if not is_syntax_error(nxt) or nxt.span is None or nxt.span.start <= last.span.start:
                break
            found.append(nxt)
            continue
        break
    if not want_document:
        return found, None
    if result is None:
        result = _repair(source, text, parse_once, found[0].span if found else None)
    if result is None:
        return found, None
    document, problems = result
    return found, first_wins(document, problems) if problems else document


def _repair(
    source: SourceFile, blanked: str, parse_once: ParseOnce, first: Span | None
) -> tuple[Any, list[Diagnostic]] | None:
    """Blank the line of each next error, balanced or not, parsing in tolerant mode, until the text parses.

    ``blanked`` is the text as the reporting left it. The tolerant lexer first reads the original text:
    when it sees the same first error as ``parse`` (``first``), the lines blanked since were real
    errors and the repair goes on from ``blanked``; when it sees an earlier cause (a quote left open
    pairs with one lines below, and the reported errors were its echoes), it starts over from there.
    """
    deadline = time.perf_counter() + REPAIR_SECONDS
    text = source.text
    for attempt in range(MAX_REPAIRS + 1):
        try:
            return parse_once(source, text, True)
        except TuskError as exc:
            span = exc.diagnostics[0].span
            if span is None:
                return None
            if attempt == 0 and text is not blanked and first is not None and span.start == first.start:
                text = blanked
                continue
            start, end = _line_bounds(text, span.start, span.end)
            if attempt >= MAX_REPAIRS - 1 or time.perf_counter() > deadline:
                # Out of budget: keep what comes before this error (blocks open there are closed),
                # which is still an outline for most of a file that is broken all over.
                end = len(text)
            segment = text[start:end]
            blank = _NOT_LINE_END.sub(" ", segment)
            if blank == segment:
                return None  # nothing left to blank there: give up rather than loop
            text = text[:start] + blank + text[end:]
    return None


def _line_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The whole lines that ``[start, end)`` touches (without the final line break)."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", max(end - 1, start))
    return line_start, len(text) if line_end == -1 else line_end


def _balanced(segment: str) -> bool:
    bare = _STRINGS.sub("", segment)  # a bracket in a comment counts: conservative, recovery just stops
    return all(bare.count(open_) == bare.count(close) for open_, close in _PAIRS)


# --- the first definition wins -------------------------------------------------------------------

_DUPLICATES = {"TSK120", "TSK121", "TSK122"}


def first_wins(document: nodes.Document, problems: list[Diagnostic]) -> nodes.Document:
    """``document`` without the members ``check_document`` reported as repeating or conflicting.

    Each such diagnostic points at the later member's key (a part of it for TSK122, the name for a
    variable, the header for a section), so a member goes when one of its key's spans is reported.
    """
    marked = {d.span.start for d in problems if d.code in _DUPLICATES and d.span is not None}
    if not marked:
        return document
    sections = tuple(
        section._replace(members=_members(section.members, marked))
        for section in document.sections
        if all(span.start not in marked for span in (section.key.span, *section.key.spans))
    )
    return document._replace(members=_members(document.members, marked), sections=sections)


def _members(members: tuple[Any, ...], marked: set[int]) -> tuple[Any, ...]:
    kept = []
    for member in members:
        if type(member) is nodes.Statement:
            kept.append(member._replace(value=_value(member.value, marked)))
            continue
        if isinstance(member, nodes.VarDef):
            if member.name_span.start in marked:
                continue
        elif any(span.start in marked for span in member.key.spans) or member.key.span.start in marked:
            continue
        kept.append(member._replace(value=_value(member.value, marked)))
    return tuple(kept)


def _value(value: Any, marked: set[int]) -> Any:
    """The value with the same pruning inside nested objects (in arrays, arguments and expressions too)."""
    if isinstance(value, nodes.Object):
        return value._replace(members=_members(value.members, marked))
    if isinstance(value, nodes.Array):
        return value._replace(items=tuple(_value(item, marked) for item in value.items))
    if isinstance(value, nodes.Directive) and value.args:
        return value._replace(args=tuple(_value(arg, marked) for arg in value.args))
    if isinstance(value, nodes.Binary):
        return value._replace(left=_value(value.left, marked), right=_value(value.right, marked))
    if isinstance(value, nodes.Ternary):
        return value._replace(
            condition=_value(value.condition, marked),
            then=_value(value.then, marked),
            otherwise=_value(value.otherwise, marked),
        )
    if isinstance(value, nodes.Unary):
        return value._replace(operand=_value(value.operand, marked))
    if isinstance(value, nodes.Chain):
        links = tuple(
            link if link.args is None else link._replace(args=tuple(_value(arg, marked) for arg in link.args))
            for link in value.links
        )
        return value._replace(target=_value(value.target, marked), links=links)
    if isinstance(value, nodes.Template):
        return value._replace(parts=tuple(p if isinstance(p, str) else _value(p, marked) for p in value.parts))
    return value
