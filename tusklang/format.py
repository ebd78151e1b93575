"""The canonical layout of a TuskLang file, comments kept: what `tusk fmt` and the language server write.

Layout: `key = value`, one member per line, 4-space indentation, `{ ... }` blocks (angle blocks and
`key: value` become the same canonical form), blank lines between members kept as at most one, a
blank line before each `[section]`. Arrays stay on one line when they fit and hold no comment.

The formatter walks the AST and re-emits it; comments are not AST nodes, so they are taken from
``Document.comments`` in source order as the walk passes their offsets. Every comment is emitted
exactly once (a comment inside an expression moves to the line before the next member), so nothing
is lost and the output's data equals the input's. Scalars are copied from the source text (quoting
style, `0x1F`, `1_000` stay as written); expressions are rebuilt from the tree with the parentheses
precedence needs, because the parser keeps no node for parentheses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .syntax import nodes
from .syntax.parser import parse
from .syntax.precedence import COMPARISONS, PRECEDENCE

INDENT = "    "
LINE_WIDTH = 100
_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")
_TERNARY_LEVEL = 0
_UNARY_LEVEL = 5
_ATOM_LEVEL = 6


def format_text(text: str, path: str | None = None) -> str:
    """The canonical form of ``text``; raises ``TuskError`` when it does not parse."""
    return format_document(parse(text, path))


def format_document(document: nodes.Document) -> str:
    return _Formatter(document).run()


class _Formatter:
    def __init__(self, document: nodes.Document) -> None:
        self.document = document
        self.text = document.source.text
        self.comments = sorted(document.comments, key=lambda c: c.span.start)
        self.next_comment = 0
        self.lines: list[str] = []

    # --- comments ------------------------------------------------------------------------------

    def _take_before(self, offset: int) -> list[nodes.Comment]:
        taken = []
        while self.next_comment < len(self.comments) and self.comments[self.next_comment].span.start < offset:
            taken.append(self.comments[self.next_comment])
            self.next_comment += 1
        return taken

    def _take_trailing(self, end: int, limit: int) -> str:
        """Comments after ``end`` on the same source line (and before ``limit``): kept on that line."""
        parts = []
        while self.next_comment < len(self.comments):
            comment = self.comments[self.next_comment]
            start = comment.span.start
            if start < end or start >= limit or "\n" in self.text[end:start]:
                break
            parts.append(comment.text)
            self.next_comment += 1
            end = comment.span.end
        return "".join(" " + p for p in parts)

    def _has_comment_within(self, start: int, end: int) -> bool:
        for comment in self.comments[self.next_comment :]:
            if comment.span.start >= end:
                return False
            if comment.span.start >= start:
                return True
        return False

    def _blank_between(self, end: int | None, start: int) -> bool:
        return end is not None and _BLANK_LINE.search(self.text, end, start) is not None

    # --- members -------------------------------------------------------------------------------

    def run(self) -> str:
        document = self.document
        self._members(document.members, 0, document.sections[0].span.start if document.sections else None)
        for index, section in enumerate(document.sections):
            limit = document.sections[index + 1].span.start if index + 1 < len(document.sections) else len(self.text)
            self._section(section, limit)
        self._flush_comments(len(self.text) + 1, 0, None, blank_first=bool(self.lines))
        while self.lines and not self.lines[-1]:
            self.lines.pop()
        return "\n".join(self.lines) + "\n" if self.lines else ""

    def _section(self, section: nodes.Section, limit: int) -> None:
        leading = self._take_before(section.span.start)
        if self.lines:
            self.lines.append("")
        for comment in leading:
            self._comment_line(comment, 0)
        header_end = self.text.find("]", section.key.span.end) + 1
        name = ".".join(span.text for span in section.key.spans)
        self.lines.append(f"[{name}]" + self._take_trailing(header_end, limit))
        self._members(section.members, 0, limit)

    def _members(self, members: Sequence[Any], depth: int, close: int | None) -> None:
        """Members of a block at ``depth``; ``close`` is the offset of the block's end (None: file)."""
        previous_end: int | None = None
        for index, member in enumerate(members):
            first = _value_start(member)
            previous_end = self._flush_comments(first, depth, previous_end)
            if self._blank_between(previous_end, member.span.start):
                self._blank()
            limit = members[index + 1].span.start if index + 1 < len(members) else _limit(close, self.text)
            self._member(member, depth, limit)
            previous_end = member.span.end
        if close is not None:
            self._flush_comments(close, depth, previous_end)

    def _flush_comments(
        self, before: int, depth: int, previous_end: int | None, blank_first: bool = False
    ) -> int | None:
        """Comments before ``before``, each on its own line; returns the end of the last one."""
        for comment in self._take_before(before):
            if self._blank_between(previous_end, comment.span.start) or (blank_first and previous_end is None):
                self._blank()
            self._comment_line(comment, depth)
            previous_end = comment.span.end
        return previous_end

    def _blank(self) -> None:
        if self.lines and self.lines[-1] and not self.lines[-1].endswith(("{", "[")):
            self.lines.append("")

    def _comment_line(self, comment: nodes.Comment, depth: int) -> None:
        self.lines.append(INDENT * depth + comment.text)

    def _member(self, member: Any, depth: int, limit: int) -> None:
        pad = INDENT * depth
        if isinstance(member, nodes.VarDef):
            head = f"{pad}${member.name} = "
        else:
            head = f"{pad}{'.'.join(span.text for span in member.key.spans)} = "
        value = member.value
        if isinstance(value, nodes.Object):
            self._object_block(value, head, depth, limit, member.span.end)
            return
        text = self._value(value, depth, len(head))
        trailing = self._take_trailing(member.span.end, limit)
        self.lines.append(head + text + trailing)

    def _object_block(self, obj: nodes.Object, head: str, depth: int, limit: int, end: int) -> None:
        if not obj.members and not self._has_comment_within(obj.span.start, obj.span.end):
            self.lines.append(head + "{}" + self._take_trailing(end, limit))
            return
        opening = self._take_trailing(_line_end_of_open(obj, self.text), obj.span.end)
        self.lines.append(head + "{" + opening)
        self._members(obj.members, depth + 1, obj.span.end)
        self.lines.append(INDENT * depth + "}" + self._take_trailing(end, limit))

    # --- values --------------------------------------------------------------------------------

    def _value(self, node: Any, depth: int, column: int) -> str:
        """``node`` as text starting at ``column``; may span lines (already indented for ``depth``)."""
        if isinstance(node, nodes.Array):
            return self._array(node, depth, column)
        if isinstance(node, nodes.Object):
            return self._inline_object(node, depth, column)
        return self._expression(node, depth)

    def _array(self, array: nodes.Array, depth: int, column: int) -> str:
        if not array.items:
            if not self._has_comment_within(array.span.start, array.span.end):
                return "[]"
        elif not self._has_comment_within(array.span.start, array.span.end):
            inline = "[" + ", ".join(self._value(item, depth, 0) for item in array.items) + "]"
            if "\n" not in inline and column + len(inline) <= LINE_WIDTH:
                return inline
        pad = INDENT * (depth + 1)
        lines = ["["]
        previous_end: int | None = None
        for index, item in enumerate(array.items):
            for comment in self._take_before(item.span.start):
                lines.append(pad + comment.text)
            limit = array.items[index + 1].span.start if index + 1 < len(array.items) else array.span.end
            text = self._value(item, depth + 1, len(pad))
            lines.append(pad + text + "," + self._take_trailing(_after_comma(item, self.text), limit))
            previous_end = item.span.end
        del previous_end
        for comment in self._take_before(array.span.end):
            lines.append(pad + comment.text)
        lines.append(INDENT * depth + "]")
        return "\n".join(lines)

    def _inline_object(self, obj: nodes.Object, depth: int, column: int) -> str:
        """An object inside an array or a directive call: inline when short and comment-free."""
        if not self._has_comment_within(obj.span.start, obj.span.end):
            if not obj.members:
                return "{}"
            parts = [self._inline_member(m, depth) for m in obj.members]
            inline = "{ " + ", ".join(parts) + " }"
            if "\n" not in inline and column + len(inline) <= LINE_WIDTH:
                return inline
        saved = self.lines
        self.lines = []
        self.lines.append("{")
        self._members(obj.members, depth + 1, obj.span.end)
        self.lines.append(INDENT * depth + "}")
        block, self.lines = self.lines, saved
        return "\n".join(block)

    def _inline_member(self, member: Any, depth: int) -> str:
        if isinstance(member, nodes.VarDef):
            head = f"${member.name} = "
        else:
            head = ".".join(span.text for span in member.key.spans) + " = "
        return head + self._value(member.value, depth, 0)

    def _expression(self, node: Any, depth: int) -> str:
        kind = type(node)
        if kind is nodes.Binary:
            level = PRECEDENCE[node.op]
            left = self._operand(node.left, depth, _left_needs_parens(node.left, node.op))
            right = self._operand(node.right, depth, _level(node.right) <= level)
            return f"{left} {node.op} {right}"
        if kind is nodes.Ternary:
            condition = self._operand(node.condition, depth, _level(node.condition) == _TERNARY_LEVEL)
            then = self._value(node.then, depth, 0)
            otherwise = self._value(node.otherwise, depth, 0)
            return f"{condition} ? {then} : {otherwise}"
        if kind is nodes.Unary:
            return "!" + self._operand(node.operand, depth, _level(node.operand) < _UNARY_LEVEL)
        if kind is nodes.Directive:
            if node.args is None:
                return f"@{node.name}"
            args = ", ".join(
                arg.name if isinstance(arg, nodes.Bare) else self._value(arg, depth, 0) for arg in node.args
            )
            return f"@{node.name}({args})"
        if kind is nodes.Array or kind is nodes.Object:
            return self._value(node, depth, 0)
        # String, Template, Number, Bool, Null, Range, VarRef: exactly as written.
        return node.span.text

    def _operand(self, node: Any, depth: int, parens: bool) -> str:
        text = self._value(node, depth, 0)
        return f"({text})" if parens else text


def _level(node: Any) -> int:
    kind = type(node)
    if kind is nodes.Binary:
        return PRECEDENCE[node.op]
    if kind is nodes.Ternary:
        return _TERNARY_LEVEL
    if kind is nodes.Unary:
        return _UNARY_LEVEL
    return _ATOM_LEVEL


def _left_needs_parens(left: Any, op: str) -> bool:
    level = _level(left)
    if level < PRECEDENCE[op]:
        return True
    # `a == b == c` is rejected by the parser, so a comparison under a comparison keeps its parens.
    return type(left) is nodes.Binary and left.op in COMPARISONS and op in COMPARISONS


def _value_start(member: Any) -> int:
    """Where a member's own text ends and its value starts: comments before it lead the member."""
    value = member.value
    if isinstance(value, nodes.Object | nodes.Array):
        return member.span.start
    return value.span.start


def _limit(close: int | None, text: str) -> int:
    return close if close is not None else len(text) + 1


def _line_end_of_open(obj: nodes.Object, text: str) -> int:
    """The offset just after the block's opening `{` (or `name >`)."""
    if obj.style == "angle":
        return text.find(">", obj.span.start) + 1
    return obj.span.start + 1


def _after_comma(item: Any, text: str) -> int:
    end = item.span.end
    match = re.compile(r"[ \t)]*,?").match(text, end)
    return match.end() if match else end
