"""Which block lost its closing bracket, with indentation as the evidence (as rustc and CUE do).

Brackets alone cannot say where a `}` is missing: in

    a = {
        b = {
            x = 1
        y = 2
    }

the `}` on the last line closes `b` and `a` is left open, so bracket counting blames `a`, far from
the mistake. The indentation tells the writer's intent: `y = 2` is indented no deeper than the line
that opened `b`, so `b` ended before it; and the last `}` lines up with `a`'s line, so it is `a`'s.

This module reads that evidence from the token stream. It runs only after the brackets were found
not to balance (never on a good file), so it may take its time. A block gives evidence only when
its members are indented deeper than its opening line, or start on that same line (`b = { x = 1`):
a block written without indentation says nothing, and is never blamed on indentation grounds.
"""

from __future__ import annotations

from typing import Any, NamedTuple

# Token types that open and close a bracket, and the bracket character each stands for.
OPENERS = {"LBRACE": "{", "LSQB": "[", "LPAR": "(", "DIRECTIVE_CALL": "(", "ANGLE": ">"}
CLOSERS = {"RBRACE": "{", "RSQB": "[", "RPAR": "(", "ANGLE_END": ">"}
CLOSER_OF = {"{": "}", "[": "]", "(": ")", ">": "<"}
CLOSER_TYPE = {"{": "RBRACE", "[": "RSQB", "(": "RPAR", ">": "ANGLE_END"}


class Break(NamedTuple):
    """The block whose closing bracket is missing, and the token it should have come before."""

    char: str  # `{` or `>`
    where: int  # offset of the opening bracket (of the key, for an angle block)
    token_index: int  # index of the breaking token in the token list (len(tokens) for a header not yet added)
    at: int  # offset of the breaking token
    kind: str  # "line" (a line indented no deeper), "closer" (a closer lined up with an outer block), "header"
    outer: int | None  # for "closer": the offset of the outer block's opener the closer lines up with


class _Block:
    __slots__ = ("aligned", "char", "evidence", "indent", "inline", "line_end", "where")

    def __init__(self, char: str, where: int, indent: int, line_end: int, inline: bool) -> None:
        self.char = char
        self.where = where
        self.indent = indent  # indentation of the line that opened the block
        self.line_end = line_end
        self.inline = inline  # a member follows the opener on its own line
        self.evidence: bool | None = None  # decided at the block's first content line
        self.aligned = False  # closed by a closer lined up with its opening line


def opener_offset(tok: Any) -> int:
    """Where a token's bracket is: a directive call's `(` is its last character."""
    return tok.end - 1 if tok.type == "DIRECTIVE_CALL" else tok.start


def find_break(text: str, tokens: list[Any], header_at: int | None = None) -> Break | None:
    """The earliest block whose members' indentation breaks and which no aligned closer closes.

    ``header_at``: the offset of a `[section]` header met while blocks are open (it is not in
    ``tokens``): a header ends every block, so it breaks the innermost one if that one gives evidence.
    """
    stack: list[_Block] = []
    candidates: list[tuple[_Block, int, str, int | None]] = []
    pending: tuple[_Block, int] | None = None  # a "line" break, confirmed if its line does not close the block
    line_end = -1
    n = len(tokens)
    for i in range(n + (header_at is not None)):
        start: int
        if i == n:
            assert header_at is not None
            start = header_at  # the header, as a last token of its own line
            ttype = "SECTION"
            tok = None
        else:
            tok = tokens[i]
            start = tok.start
            ttype = tok.type
        if start > line_end:  # the first token of a line
            if pending is not None:
                block, index = pending
                pending = None
                if block in stack:
                    candidates.append((block, index, "line", None))
            line_start = text.rfind("\n", 0, start) + 1
            nl = text.find("\n", start)
            line_end = len(text) if nl == -1 else nl
            indent = start - line_start
            top = stack[-1] if stack else None
            if top is not None and top.char in "{>":
                if top.evidence is None and ttype not in CLOSERS:
                    top.evidence = top.inline or indent > top.indent
                if ttype in CLOSERS:
                    if top.evidence and indent < top.indent:
                        lined_up = next(
                            (b for b in reversed(stack[:-1]) if b.char in "{>" and b.indent == indent), None
                        )
                        if lined_up is not None:
                            candidates.append((top, i, "closer", lined_up.where))
                elif ttype == "SECTION" and i == n:
                    if top.evidence and indent <= top.indent:
                        candidates.append((top, i, "header", None))
                elif top.evidence and indent <= top.indent:
                    pending = (top, i)
            if tok is not None and ttype in CLOSERS and top is not None:
                top.aligned = indent == top.indent
        elif tok is not None and ttype in CLOSERS and stack and stack[-1].line_end >= start:
            stack[-1].aligned = True  # closed on its own line: `{ x = 1 }`
        if tok is None:
            break
        if ttype in OPENERS:
            nxt = tokens[i + 1] if i + 1 < n else None
            inline = nxt is not None and nxt.start < line_end and nxt.type not in CLOSERS
            stack.append(_Block(OPENERS[ttype], opener_offset(tok), indent, line_end, inline))
        elif ttype in CLOSERS and stack:
            stack.pop()
    if pending is not None and pending[0] in stack:
        candidates.append((pending[0], pending[1], "line", None))
    for block, index, kind, outer in candidates:
        if not block.aligned:
            at = header_at if index == n and header_at is not None else tokens[index].start
            return Break(block.char, block.where, index, at, kind, outer)
    return None


def synthetic_closer(char: str, at: int) -> tuple[str, str, int, int]:
    """(type, value, start, end) of a zero-width closer put in by recovery at ``at``."""
    return CLOSER_TYPE[char], CLOSER_OF[char], at, at


def rebalance(tokens: list[Any], make: Any) -> list[Any]:
    """The tokens with every bracket matched: a stray closer is dropped, a closer that skips open
    brackets closes them first, and what is still open at the end is closed there.

    Recovery only (``parse_tolerant``): ``make(type, value, start, end)`` builds a token.
    """
    out: list[Any] = []
    stack: list[str] = []
    for tok in tokens:
        ttype = tok.type
        if ttype in OPENERS:
            stack.append(OPENERS[ttype])
        elif ttype in CLOSERS:
            want = CLOSERS[ttype]
            if want not in stack:
                continue  # nothing of its kind is open: drop it
            while stack[-1] != want:
                at = out[-1].end if out else tok.start
                out.append(make(*synthetic_closer(stack.pop(), at)))
            stack.pop()
        out.append(tok)
    at = out[-1].end if out else 0
    while stack:
        out.append(make(*synthetic_closer(stack.pop(), at)))
    return out
