"""Reporting more than the first syntax error: blank the offending line and parse again.

An LALR parser stops at its first error. An editor and `tusk check` want every broken line at once,
so after an error the line (or lines) it sits on is replaced by spaces, which keeps every offset, and
the text is parsed again; each new error is reported against the original source. A line is blanked
only when its brackets balance, so removing it cannot unbalance the rest (an unclosed `{` would make
every later line look wrong); anything else ends the search. The search is bounded in count and time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..diagnostics import Diagnostic, Related, Span, TuskError
from ..source import SourceFile

MAX_ERRORS = 20
BUDGET_SECONDS = 0.5
# Errors that mean the structure itself is broken: nothing after them can be trusted.
_FINAL = {"TSK102", "TSK103", "TSK105"}
_STRINGS = re.compile(r'"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'')
_PAIRS = (("{", "}"), ("[", "]"), ("(", ")"))


def is_syntax_error(diagnostic: Diagnostic) -> bool:
    code = diagnostic.code
    return code.startswith("TSK1") and code not in ("TSK120", "TSK121", "TSK122", "TSK130")


def more_errors(source: SourceFile, first: Diagnostic, parse_once: Callable[[SourceFile], Any]) -> list[Diagnostic]:
    """``first`` and the syntax errors found after it, each pointing into ``source``."""
    found = [first]
    text = source.text
    deadline = time.perf_counter() + BUDGET_SECONDS
    while len(found) < MAX_ERRORS and time.perf_counter() < deadline:
        last = found[-1]
        if last.span is None or last.code in _FINAL:
            break
        start = text.rfind("\n", 0, last.span.start) + 1
        end = text.find("\n", max(last.span.end - 1, last.span.start))
        end = len(text) if end == -1 else end
        segment = text[start:end]
        if not segment.strip() or not _balanced(segment):
            break
        text = text[:start] + re.sub(r"[^\r\n]", " ", segment) + text[end:]
        try:
            parse_once(SourceFile(text, source.path))
        except TuskError as exc:
            nxt = exc.diagnostics[0]
            if not is_syntax_error(nxt) or nxt.span is None or nxt.span.start <= last.span.start:
                break
            found.append(_into(nxt, source))
            continue
        break
    return found


def _balanced(segment: str) -> bool:
    bare = _STRINGS.sub("", segment)  # a bracket in a comment counts: conservative, recovery just stops
    return all(bare.count(open_) == bare.count(close) for open_, close in _PAIRS)


def _into(diagnostic: Diagnostic, source: SourceFile) -> Diagnostic:
    """The diagnostic with its spans moved onto the original source (offsets are unchanged)."""

    def move(span: Span | None) -> Span | None:
        return None if span is None else Span(source, span.start, span.end)

    related = tuple(Related(move(r.span), r.message) for r in diagnostic.related)  # type: ignore[arg-type]
    return replace(diagnostic, span=move(diagnostic.span), related=related)
