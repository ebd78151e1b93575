"""Operator precedence for the grammar's flat `operand (op operand)*` lists.

Loosest to tightest: `||`, `&&`, comparisons (`== != < <= > >=`, not chainable), `+ -`, `* / %`.
All binary operators group to the left. Doing this here keeps the LALR grammar small and every plain value
one reduction away from its member, which is most of what a config file is.
"""

from __future__ import annotations

from typing import Any

from ..diagnostics import Diagnostic, Span, TuskError
from ..source import SourceFile
from . import nodes

PRECEDENCE = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    "<": 3,
    "<=": 3,
    ">": 3,
    ">=": 3,
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
}
COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})


def fold_operators(first: Any, tail: list[Any], source: SourceFile) -> Any:
    """``tail`` alternates operator tokens and operands: [op, x, op, y, ...]."""
    operands = [first]
    operators: list[Any] = []
    built: set[int] = set()  # comparisons made here, as opposed to ones inside parentheses

    def reduce() -> None:
        op = operators.pop()
        right = operands.pop()
        left = operands.pop()
        if op.value in COMPARISONS and id(left) in built and left.op in COMPARISONS:
            _chained(op, source)
        node = nodes.Binary(
            op.value,
            left,
            right,
            Span(source, op.start, op.end),
            Span(source, left.span.start, right.span.end),
        )
        built.add(id(node))
        operands.append(node)

    for i in range(0, len(tail), 2):
        op = tail[i]
        level = PRECEDENCE[op.value]
        while operators and PRECEDENCE[operators[-1].value] >= level:
            reduce()
        operators.append(op)
        operands.append(tail[i + 1])
    while operators:
        reduce()
    return operands[0]


def _chained(op: Any, source: SourceFile) -> None:
    raise TuskError(
        [
            Diagnostic(
                "TSK111",
                f"comparisons cannot be chained: `{op.value}` follows another comparison",
                Span(source, op.start, op.end),
                hint="combine them with `&&`, e.g. `a < b && b < c`",
            )
        ]
    )
