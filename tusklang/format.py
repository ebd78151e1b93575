"""The canonical layout of a TuskLang file, comments kept: what `tusk fmt` and the language server write.

Layout: `key = value`, one member per line, 4-space indentation, `{ ... }` blocks (angle blocks,
indentation blocks and `key: value` become the same canonical form, `- item` lists become arrays, a
`;` ending a member is dropped), blank lines between members kept as at most one, a blank line before
each `[section]`. Arrays stay on one line when they fit and hold no comment. Foreign code
(`php(...)`) is copied byte for byte: it is another language's text.

The formatter walks the AST and re-emits it; comments are not AST nodes, so they are taken from
``Document.comments`` in source order as the walk passes their offsets. Every comment is emitted
exactly once (a comment inside an expression moves to the line before the next member), so nothing
is lost and the output's data equals the input's. Scalars are copied from the source text (quoting
style, `0x1F`, `1_000` stay as written); expressions are rebuilt from the tree with the parentheses
precedence needs, because the parser keeps no node for parentheses.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any

from .syntax import nodes
from .syntax.parser import parse
from .syntax.precedence import COMPARISONS, PRECEDENCE

INDENT = "    "
LINE_WIDTH = 100
_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")
_TERNARY_LEVEL = 0
_UNARY_LEVEL = 6
_ATOM_LEVEL = 7


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
        self._flat_texts: dict[int, str | None] = {}  # id(node) -> its one-line form (see _flat)

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
        # Comments are sorted: binary search, not a scan (nor a copy) of every comment still to come,
        # which made a file of many blocks and many comments quadratic.
        comments = self.comments
        index = bisect_left(comments, start, lo=self.next_comment, key=_comment_start)
        return index < len(comments) and comments[index].span.start < end

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
        if type(member) is nodes.Statement:
            head = pad
        elif isinstance(member, nodes.VarDef):
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
        text = self._expression(node, lambda part: self._value(part, depth, 0))
        assert text is not None, "laid out, never refused"
        return text

    def _flat(self, node: Any) -> str | None:
        """``node`` on one line, or None if it cannot be (a comment or a line break inside it).

        Whether a block fits on one line is decided from this, computed once per node: rendering
        the inline form with ``_value`` and then again across lines when it did not fit rendered each
        level twice, so nested arrays took 2^depth steps.
        """
        cached = self._flat_texts.get(id(node), _UNKNOWN)
        if cached is not _UNKNOWN:
            return cached  # type: ignore[return-value]
        text: str | None
        kind = type(node)
        if (kind is nodes.Array or kind is nodes.Object) and self._has_comment_within(node.span.start, node.span.end):
            text = None
        elif kind is nodes.Array:
            items = [self._flat(item) for item in node.items]
            text = None if None in items else "[" + ", ".join(items) + "]"  # type: ignore[arg-type]
        elif kind is nodes.Object:
            values = [self._flat(m.value) for m in node.members]
            if None in values:
                text = None
            elif not values:
                text = "{}"
            else:
                text = "{ " + ", ".join(_head(m) + v for m, v in zip(node.members, values, strict=True)) + " }"  # type: ignore[operator]
        else:
            text = self._expression(node, self._flat)
            if text is not None and "\n" in text:  # a multi-line string literal
                text = None
        self._flat_texts[id(node)] = text
        return text

    def _fits(self, node: Any, column: int) -> str | None:
        text = self._flat(node)
        return text if text is not None and column + len(text) <= LINE_WIDTH else None

    def _array(self, array: nodes.Array, depth: int, column: int) -> str:
        if not array.items and not self._has_comment_within(array.span.start, array.span.end):
            return "[]"
        inline = self._fits(array, column)
        if inline is not None:
            return inline
        pad = INDENT * (depth + 1)
        lines = ["["]
        for index, item in enumerate(array.items):
            for comment in self._take_before(item.span.start):
                lines.append(pad + comment.text)
            limit = array.items[index + 1].span.start if index + 1 < len(array.items) else array.span.end
            text = self._value(item, depth + 1, len(pad))
            lines.append(pad + text + "," + self._take_trailing(_after_comma(item, self.text), limit))
        for comment in self._take_before(array.span.end):
            lines.append(pad + comment.text)
        lines.append(INDENT * depth + "]")
        return "\n".join(lines)

    def _inline_object(self, obj: nodes.Object, depth: int, column: int) -> str:
        """An object inside an array or a directive call: inline when short and comment-free."""
        if not obj.members and not self._has_comment_within(obj.span.start, obj.span.end):
            return "{}"
        inline = self._fits(obj, column)
        if inline is not None:
            return inline
        saved = self.lines
        self.lines = []
        self.lines.append("{")
        self._members(obj.members, depth + 1, obj.span.end)
        self.lines.append(INDENT * depth + "}")
        block, self.lines = self.lines, saved
        return "\n".join(block)

    def _expression(self, node: Any, part: Callable[[Any], str | None]) -> str | None:
        """An expression, its parts written by ``part`` (laid out, or flat: None if one cannot be)."""
        kind = type(node)
        if kind is nodes.Binary:
            level = PRECEDENCE[node.op]
            left = _parenthesize(part(node.left), _left_needs_parens(node.left, node.op))
            right = _parenthesize(part(node.right), _level(node.right) <= level)
            return None if left is None or right is None else f"{left} {node.op} {right}"
        if kind is nodes.Ternary:
            condition = _parenthesize(part(node.condition), _level(node.condition) == _TERNARY_LEVEL)
            then = part(node.then)
            otherwise = part(node.otherwise)
            if condition is None or then is None or otherwise is None:
                return None
            return f"{condition} ? {then} : {otherwise}"
        if kind is nodes.Unary:
            operand = _parenthesize(part(node.operand), _level(node.operand) < _UNARY_LEVEL)
            return None if operand is None else "!" + operand
        if kind is nodes.Directive:
            if node.args is None:
                return f"@{node.name}"
            args = [arg.name if isinstance(arg, nodes.Bare) else part(arg) for arg in node.args]
            return None if None in args else f"@{node.name}(" + ", ".join(args) + ")"  # type: ignore[arg-type]
        if kind is nodes.Array or kind is nodes.Object:
            return part(node)
        if kind is nodes.Chain:
            return self._chain(node, part)
        if kind is nodes.Template and self._has_comment_within(node.span.start, node.span.end):
            return _template(node, part)
        # String, Template, Number, Bool, Null, Range, VarRef, Ref, Word, Foreign: exactly as written.
        return str(node.span.text)

    def _chain(self, node: nodes.Chain, part: Callable[[Any], str | None]) -> str | None:
        target = node.target
        text = part(target)
        plain = type(target) in (nodes.Ref, nodes.VarRef, nodes.Foreign) or (
            type(target) is nodes.Directive and target.args is not None
        )
        text = _parenthesize(text, not plain)
        if text is None:
            return None
        pieces = [text]
        for link in node.links:
            pieces.append("." + link.name)
            if link.args is not None:
                args = [arg.name if isinstance(arg, nodes.Bare) else part(arg) for arg in link.args]
                if None in args:
                    return None
                pieces.append("(" + ", ".join(args) + ")")  # type: ignore[arg-type]
        return "".join(pieces)


_UNKNOWN = object()


def _template(node: nodes.Template, part: Callable[[Any], str | None]) -> str | None:
    """A backtick template rebuilt from its parts (when a comment inside it is written elsewhere)."""
    out = ["`"]
    for piece in node.parts:
        if isinstance(piece, str):
            out.append(piece.replace("\\", "\\\\").replace("`", "\\`").replace("${", "\\${"))
        else:
            text = part(piece)
            if text is None:
                return None
            out.append("${" + text + "}")
    out.append("`")
    return "".join(out)


def _head(member: Any) -> str:
    """`name = ` / `a.b = ` / `$var = `: a member as written inline."""
    if type(member) is nodes.Statement:
        return ""
    if isinstance(member, nodes.VarDef):
        return f"${member.name} = "
    return ".".join(span.text for span in member.key.spans) + " = "


def _parenthesize(text: str | None, parens: bool) -> str | None:
    return f"({text})" if parens and text is not None else text


def _comment_start(comment: nodes.Comment) -> int:
    return comment.span.start


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
    """The offset just after the block's opening `{` (or `name >`, or the `:` of an indentation block)."""
    if obj.style == "angle":
        return text.find(">", obj.span.start) + 1
    if obj.style == "indent":
        return obj.span.start
    return obj.span.start + 1


def _after_comma(item: Any, text: str) -> int:
    end = item.span.end
    match = re.compile(r"[ \t)]*,?").match(text, end)
    return match.end() if match else end
