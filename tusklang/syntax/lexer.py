"""The TuskLang lexer: source text to the token stream the grammar in grammar/tusk.lark declares.

Hand-written around two master regular expressions because TuskLang's tokens depend on context a
regular lexer cannot see: a key is a key only at the start of a member, a newline separates members
only after a complete value, `<` closes an angle block only alone on its line. Scalars are turned
into AST nodes here, once, so the parser only moves them around.

It also handles what needs no grammar: bracket balance (so an unclosed `{` is reported where it was
opened), missing separators between members, the layout rules (`;` ending a member, items of an
array separated by line breaks, indentation blocks: a `key:` with nothing after it over deeper lines
opens a block, which the lexer closes with a DEDENT token where the indentation ends), foreign code
(`php(...)`, captured whole by ``foreign.scan``), and the nesting limit (``limits.MAX_DEPTH``, see
``_Lexer.run``): every later stage walks the tree recursively, so a tree deeper than the limit is
refused here, at the token that crosses it, before anything recursive runs.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from ..diagnostics import SPAN_SHIFT, Diagnostic, Related, Span, TuskError, span_class
from ..limits import MAX_DEPTH, MAX_INT_DIGITS
from ..source import SourceFile
from . import foreign, nodes
from .blocks import CLOSER_OF, CLOSER_TYPE, Break, find_break, rebalance
from .strings import decode_string, decode_template_text

NAME = r"[A-Za-z_][A-Za-z0-9_\-]*"
_DQ = r'"(?:[^"\\\n]|\\.)*"'
_SQ = r"'(?:[^'\\\n]|\\.)*'"
_KEYPART = rf"(?:{NAME}|{_DQ}|{_SQ})"
_KEYPATH = rf"{_KEYPART}(?:[ \t]*\.[ \t]*{_KEYPART})*"

# Tried at the start of a member, before the value patterns.
MEMBER_RE = re.compile(
    rf"""
    (?P<key>{_KEYPATH})[ \t]*(?:(?P<sep>=(?!=)|:)[ \t]*|(?=[{{\[])|(?P<angle>>)[ \t]*(?=\r?\n|\#|//|/\*|$))
  | \$(?P<var>[A-Za-z_][A-Za-z0-9_]*)[ \t]*[=:]
  | (?P<angle_end><)[ \t]*(?=\r?\n|\#|//|/\*|$)
  | (?P<section>\[)
  | (?P<dash>-)[ \t]
    """,
    re.VERBOSE,
)

_NUMBER = r"""
    -?(?:0x[0-9A-Fa-f](?:_?[0-9A-Fa-f])*|0o[0-7](?:_?[0-7])*|0b[01](?:_?[01])*
         |(?:0|[1-9](?:_?[0-9])*)(?:\.[0-9](?:_?[0-9])*)?(?:[eE][+-]?[0-9]+)?)
"""

TOKEN_RE = re.compile(
    rf"""
    (?P<nl>\r?\n)[ \t]*
  | (?P<ws>[ \t\f\v]+)
  | (?P<comment>\#[^\n]*|//[^\n]*|/\*(?:[^*]|\*(?!/))*\*/)
  | (?P<string3>\"\"\"(?:[^"\\]|\\[\s\S]|"(?!""))*\"\"\")
  | (?P<dstring>"(?:[^"\\]|\\[\s\S])*")
  | (?P<sstring>'(?:[^'\\]|\\[\s\S])*')
  | (?P<range>[0-9]+-[0-9]+)(?![\w.])
  | (?P<number>{_NUMBER})(?![\w.])
  | \$(?P<variable>[A-Za-z_][A-Za-z0-9_]*)
  | @(?P<directive>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_\-]*)*)(?P<call>\()?
  | (?P<name>{NAME})
  | (?P<op>\|\||&&|==|!=|<=|>=|/(?![*/])|[<>!+\-*%?:;,()\[\]{{}}])
  | (?P<template>`)
    """,
    re.VERBOSE,
)

# A one-line array of plain double-quoted strings (no escapes, no `${`), the commonest list in flag
# configs (`regions = ["us-east", "eu-west"]`), becomes one ARRAY token carrying the finished Array
# node: the same node the grammar would build, without a parser step per bracket, string and comma.
_PLAIN = r'"[^"\\\n$]*"'
STRING_ARRAY_RE = re.compile(rf"\[[ \t]*{_PLAIN}(?:[ \t]*,[ \t]*{_PLAIN})*[ \t]*,?[ \t]*\]")
PLAIN_STRING_RE = re.compile(_PLAIN)

# The commonest member of all, `name = <literal>` alone on its line, in one match: the member becomes
# one SIMPLE token carrying the finished Member node (the node the grammar would build from its KEY
# and value tokens), and the line break and the next line's indentation are consumed too (a value
# then a newline starts the next member), without further trips through the loop or the parser. The
# literal: a string without `${` (escapes \n \t \r \" \\ \/ allowed), a `"""` block without
# backslashes, a plain number, `true`/`false`, or a one-line array of plain strings and numbers.
# Anything unusual (a quoted or dotted key, another escape, a number with `_`/exponent/base prefix, a
# comment after the value) does not match and takes the general path, which builds the same node.
_SIMPLE_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"
_SIMPLE_ITEM = rf"(?:{_PLAIN}|{_SIMPLE_NUMBER})"
_SIMPLE_ARRAY = rf"\[[ \t]*(?:{_SIMPLE_ITEM}(?:[ \t]*,[ \t]*{_SIMPLE_ITEM})*[ \t]*,?[ \t]*)?\]"
SIMPLE_MEMBER_RE = re.compile(
    rf"""(?P<key>{NAME})[ \t]*=(?!=)[ \t]*
    (?:(?P<STRING>{_PLAIN})
      |(?P<NUMBER>{_SIMPLE_NUMBER})
      |(?P<TRUE>true)|(?P<FALSE>false)
      |(?P<ARRAY>{_SIMPLE_ARRAY})
      |(?P<ESCAPED>"(?:[^"\\\n$]|\\[ntr"\\/])*")
      |(?P<BLOCK>\"\"\"(?:[^"\\]|"(?!""))*\"\"\")
    )
    [ \t]*(?:\r?\n[ \t]*|\Z)""",
    re.VERBOSE,
)
SIMPLE_ITEM_RE = re.compile(rf"(?P<s>{_PLAIN})|{_SIMPLE_NUMBER}")
# SIMPLE_MEMBER_RE's array alone: its items are SIMPLE_ITEM_RE's matches (tusklang.derived_spans)
SIMPLE_ARRAY_RE = re.compile(_SIMPLE_ARRAY)

# The hot paths build nodes (NamedTuples) with tuple.__new__ directly: the NamedTuple's own __new__ is
# a Python function that does just that, and calling it doubles the cost of a node.
new = tuple.__new__
String, Number, Bool, Array, Key, Member = nodes.String, nodes.Number, nodes.Bool, nodes.Array, nodes.Key, nodes.Member

# `name = {` ending its line, and the next line's indentation; `}` ending its line (``simple_object``).
OBJECT_OPEN_RE = re.compile(rf"(?P<key>{NAME})[ \t]*=(?!=)[ \t]*(?P<brace>\{{)[ \t]*\r?\n(?P<indent>[ \t]*)")
OBJECT_CLOSE_RE = re.compile(r"\}[ \t]*(?:\r?\n[ \t]*|\Z)")

# Line breaks, with the spaces around them and the blank lines after them.
BLANK_LINES_RE = re.compile(r"(?:[ \t]*\r?\n)+[ \t]*")

# Half of a UTF-16 pair: a str can hold one (a wrong decode, an API caller), no file can encode it.
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
# A number with more digits than this cannot be an int (CPython refuses to convert it): compared
# with the value itself, so `0x...` literals obey the same bound as decimal ones.
_INT_CEILING = 10**MAX_INT_DIGITS

# A line that starts a member (`key =`, `$name =`; not `==`): inside `[...]` or `(...)` it can only
# mean the bracket was never closed.
MEMBER_LINE_RE = re.compile(rf"(?:{_KEYPATH}|\$[A-Za-z_][A-Za-z0-9_]*)[ \t]*=(?!=)")

SECTION_RE = re.compile(rf"\[[ \t]*(?P<path>{_KEYPATH})[ \t]*\]")
KEYPART_RE = re.compile(rf"[ \t]*(?P<part>{_KEYPART})[ \t]*\.?")

VALUE_EXAMPLES = 'e.g. `name = "text"`, `count = 3`, `enabled = true`, `items = [...]` or `block = { ... }`'
KEYWORDS = {"true": "TRUE", "false": "FALSE", "null": "NULL"}
# Plain calls (without `@`) that are directive calls, their arguments TuskLang: `env("HOME", "/")` is
# `@env("HOME", "/")`. Any other plain call holds foreign code (`php(...)`). These are the names of
# tusklang.directives.REGISTRY (a test keeps the two equal; the lexer cannot import that stage).
DIRECTIVE_FUNCTIONS = frozenset({"env", "file", "query", "date"})
# A line that is a statement (a value without a key: `@json({...})`, `php(echo $x)`, `response`,
# `format == "html" ? a : b`): a directive, a call, or a name followed by an operator, a member, or
# nothing. A name followed by another value (`port 8080`) is a key missing its `=`.
STATEMENT_RE = re.compile(rf"@|{NAME}(?:\(|\.[A-Za-z_]|[ \t]*(?:[|&=!<>?+*/%]|-[ \t]|;|\r?\n|\#|//|/\*|$))")
# `.name` or `.name(` right after a value: member access and method calls.
LINK_RE = re.compile(rf"\.(?P<name>{NAME})(?P<call>\()?")
# The text of a backtick template up to its next `${` or its closing backtick.
TEMPLATE_TEXT_RE = re.compile(r"(?:[^`\\$]|\\[\s\S]|\$(?!\{))*")
OP_TYPES = {
    "||": "BINOP",
    "&&": "BINOP",
    "==": "BINOP",
    "!=": "BINOP",
    "<=": "BINOP",
    ">=": "BINOP",
    "<": "BINOP",
    ">": "BINOP",
    "+": "BINOP",
    "-": "BINOP",
    "*": "BINOP",
    "/": "BINOP",
    "%": "BINOP",
    "!": "BANG",
    "?": "QUESTION",
    ":": "COLON",
    ",": "COMMA",
    ";": "SEMICOLON",  # never a token: it ends a member, as a line break does
    "(": "LPAR",
    ")": "RPAR",
    "[": "LSQB",
    "]": "RSQB",
    "{": "LBRACE",
    "}": "RBRACE",
}
# Tokens after which a newline ends the member (a value is complete). INDENT and LIST end the line
# that opens an indentation block, and DEDENT a block: the next line starts a member (or an item).
VALUE_END = frozenset(
    {
        "STRING",
        "NUMBER",
        "RANGE",
        "TRUE",
        "FALSE",
        "NULL",
        "VARIABLE",
        "DIRECTIVE",
        "RPAR",
        "RSQB",
        "RBRACE",
        "ARRAY",
        "ANGLE",
        "ANGLE_END",
        "SECTION",
        "NAME",
        "FOREIGN",
        "MEMBER",
        "TEMPLATE_TAIL",
        "INDENT",
        "LIST",
        "DEDENT",
        "SIMPLE",
    }
)
# Tokens a member chain may follow (`name.x`, `$v.x`, `@d(...).x`, `php(...).x`, `(...).x`).
CHAINS_AFTER = frozenset({"NAME", "VARIABLE", "RPAR", "FOREIGN", "MEMBER"})
# ... and those a `.` may follow at all (one after a bare directive was its name's end: `@cache.`).
_DOT_AFTER = CHAINS_AFTER | {"DIRECTIVE"}
CLOSERS = {")": "(", "]": "[", "}": "{"}
# Tokens after which a line continues on the next (an operator still wants its operand).
CONTINUES = frozenset({"BINOP", "BANG", "QUESTION", "COLON"})
OPENER_NAMES = {"(": "`(`", "[": "`[`", "{": "`{`", ">": "angle block `>`", "@(": "`(`", "`": "`${`"}
# Frames of the bracket stack that hold members (objects), and the two indentation blocks: "i" holds
# members (`key:` over deeper `k: v` lines), "l" holds `- item` lines.
MEMBER_FRAMES = "{>il"
INDENT_FRAMES = "il"
# Token kinds (of TOKEN_RE) that start a value: after a line break inside `[...]` one of these starts
# the next item.
_ITEM_STARTS = frozenset(
    {"dstring", "sstring", "string3", "number", "range", "variable", "directive", "call", "name", "template"}
)


class Tok:
    """The parser needs only ``type``; ``value`` carries the node or text, offsets the position."""

    __slots__ = ("end", "start", "type", "value")

    def __init__(self, type: str, value: Any, start: int, end: int) -> None:
        self.type = type
        self.value = value
        self.start = start
        self.end = end

    def __repr__(self) -> str:
        return f"Tok({self.type}, {self.value!r}, {self.start})"


def tokenize(
    source: SourceFile, text: str | None = None, tolerant: bool = False
) -> tuple[list[Tok], list[nodes.Comment]]:
    """Split ``source`` into tokens; raise TuskError on a lexical or layout problem.

    ``text`` (recovery only) is what to scan instead of ``source.text``: the same text with broken
    lines blanked, so every offset and span still points into ``source``. ``tolerant`` (recovery
    only) repairs the brackets instead of reporting them: an unclosed block is closed where its
    indentation ends, a stray closer is dropped, and skipped constructs (TSK110) are not raised.
    """
    return _Lexer(source, text, tolerant).run()


class _Lexer:
    def __init__(self, source: SourceFile, text: str | None = None, tolerant: bool = False) -> None:
        self.source = source
        self.span_type = span_class(source)
        self.text = source.text if text is None else text
        self.tolerant = tolerant
        self.tokens: list[Tok] = []
        self.comments: list[nodes.Comment] = []
        self.stack: list[tuple[str, int]] = []  # open brackets: (char, offset)
        # For each indentation block on the stack (an "i" or "l" frame), in order: the indentation of
        # the line that opened it and the indentation of its members.
        self.indents: list[tuple[str, str]] = []
        self.problems: list[Diagnostic] = []
        self.no_object_at: set[int] = set()  # where ``simple_object`` failed
        # One str per distinct plain string value of the simple paths, while lexing: a config repeats
        # its values (every flag's "percentage", its environments), and the data, the validated models
        # and the snapshot all hold the one the AST does (issue 19: 2.7 MB at 5,000 flags).
        self.strings: dict[str, str] = {}
        self.string_arrays: dict[str, list[tuple[str, int, int]]] = {}

    def span(self, start: int, end: int) -> Span:
        return Span(self.source, start, end)

    def fail(self, code: str, message: str, start: int, end: int, hint: str | None = None, **kw: Any) -> NoReturn:
        raise TuskError([Diagnostic(code, message, self.span(start, end), hint=hint, **kw)])

    def run(self) -> tuple[list[Tok], list[nodes.Comment]]:
        text = self.text
        n = len(text)
        if not text.isascii() and (surrogate := _SURROGATE_RE.search(text)) is not None:
            self.lone_surrogate(surrogate.start())
        pos = 1 if text.startswith("\ufeff") else 0  # a byte order mark is not content
        tokens = self.tokens
        append = tokens.append
        stack = self.stack
        indents = self.indents
        source = self.source
        span_type = self.span_type
        token_match = TOKEN_RE.match
        member_match = MEMBER_RE.match
        simple_match = SIMPLE_MEMBER_RE.match
        object_open = OBJECT_OPEN_RE.match
        member_start = True
        last_type = ""
        # Inside `[...]`, after a line break that followed a complete item: the next token starts
        # another item if it starts a value (the line break then separates items, as a `,` would).
        item_break = False
        no_simple_at = -1  # where SIMPLE_MEMBER_RE was last tried in vain
        # One (name,) tuple per distinct simple key: a config repeats its key names (every flag has an
        # `enabled`), and sharing the tuple and its string saves two objects per member.
        key_parts: dict[str, tuple[str]] = {}
        strings = self.strings

        # Nesting (docs/syntax.md, "Limits"). The depth of a node is the number of containers and
        # operator nodes above it, the document being depth 1; every container and operator node
        # must be at depth <= MAX_DEPTH. Counted per bracket frame (the document is one), for the
        # item being read (a member of an object, an element of an array or argument list):
        #   base   the depth of the frame's own container (a `(` counts as one, like the others);
        #   level  where the item's next node goes: base, plus the implicit objects of a dotted key
        #          (`a.b.c =` puts its value 2 levels further down), plus one per operator or chain
        #          link so far (an expression with k operators is at most k deep; exactly k for
        #          `1 + 1 + 1`, whose tree is left-deep);
        #   sub    the height of the tallest bracketed part of the item closed so far;
        #   fmax   the deepest level any finished item of the frame reached.
        # level + sub bounds the depth of every node of the item, so checking it whenever it grows
        # (an opening bracket, an operator, a dotted key) bounds the whole tree, in one pass, without
        # building anything. A new member resets the item: no cost for plain ones. An indentation
        # block is a frame like `{`, a `${` of a backtick template like `(`.
        frames: list[tuple[int, int, int, int]] = []  # the enclosing frames' (base, level, sub, fmax)
        self.frames = frames
        tolerant = self.tolerant
        base = level = fmax = 1
        sub = 0

        while pos < n:
            top = stack[-1][0] if stack else ""
            if member_start and top and top in INDENT_FRAMES and (closes := self.dedents(pos)) is not None:
                # A line inside an indentation block: its indentation says which block it belongs to.
                for _ in range(closes):
                    at = tokens[-1].end
                    stack.pop()
                    indents.pop()
                    append(Tok("DEDENT", None, at, at))
                    child = fmax if fmax > level + sub else level + sub
                    base, level, sub, fmax = frames.pop()
                    if child - level > sub:
                        sub = child - level
                    last_type = "DEDENT"
                top = stack[-1][0] if stack else ""
                if top == "l":
                    pos = self.list_item(pos)
                    if level != base or sub:
                        if level + sub > fmax:
                            fmax = level + sub
                        level, sub = base, 0
                    last_type = "DASH"
                    member_start = False
                    continue
            # Inside (...) or [...] there are no members; elsewhere a member may start here.
            in_object = not top or top in MEMBER_FRAMES
            if member_start and in_object and text[pos] != "\n":  # a blank line starts no member
                m = simple_match(text, pos) if pos != no_simple_at else None
                obj = None
                if m is None and pos != no_simple_at and (opens := object_open(text, pos)) is not None:
                    obj = self.simple_object(pos, base, key_parts, opens)
                if m is not None or obj is not None:
                    # A run of such lines, all indented alike, becomes one SIMPLE token holding their
                    # Members (the parser's member lists take them whole). Lines indented otherwise
                    # start a new token: find_break reads each line's first token for its indentation.
                    # An object of such lines (``simple_object``) is one of them.
                    batch: list[nodes.Member] = []
                    first = pos
                    indent = pos - text.rfind("\n", 0, pos) - 1
                    while True:
                        if level != base or sub:  # a new member: the last one's item is finished
                            if level + sub > fmax:
                                fmax = level + sub
                            level, sub = base, 0
                        if m is None:
                            assert obj is not None
                            member, pos, end, sub = obj  # sub: the object's height
                            batch.append(member)
                        else:
                            key_end = m.end("key")
                            pos_high = pos << SPAN_SHIFT  # the key and the member start there
                            span = span_type(pos_high | key_end)
                            kind = m.lastgroup or ""  # one value group always matched
                            start, end = m.span(kind)
                            if kind == "STRING":
                                plain = text[start + 1 : end - 1]
                                value: Any = new(
                                    String, (strings.setdefault(plain, plain), span_type(start << SPAN_SHIFT | end))
                                )
                            elif kind == "NUMBER":
                                number = self.simple_number(text[start:end], start, end)
                                value = new(Number, (number, span_type(start << SPAN_SHIFT | end)))
                            elif kind == "ARRAY":
                                if level >= MAX_DEPTH:  # the array itself would be too deep
                                    self.too_deep(start, start + 1)
                                sub = 1  # an array of scalars is one level high
                                value = new(
                                    Array, (self.simple_items(start, end), span_type(start << SPAN_SHIFT | end))
                                )
                            elif kind == "ESCAPED":
                                value = decode_string(text[start:end], source, start, "dstring")
                            elif kind == "BLOCK":
                                value = decode_string(text[start:end], source, start, "string3")
                            else:
                                value = new(Bool, (kind == "TRUE", span_type(start << SPAN_SHIFT | end)))
                            name = text[pos:key_end]
                            parts = key_parts.get(name)
                            if parts is None:
                                parts = key_parts[name] = (name,)
                            key = new(Key, (parts, (), span))
                            batch.append(new(Member, (key, value, None)))  # Member.span: key to value end
                            pos = m.end()
                        if top == "i" or top == "l" or pos >= n:  # an indentation block checks each line
                            break
                        if pos - text.rfind("\n", 0, pos) - 1 != indent:
                            break
                        m = simple_match(text, pos)
                        if m is None:
                            opens = object_open(text, pos)
                            obj = None if opens is None else self.simple_object(pos, base, key_parts, opens)
                            if obj is None:
                                no_simple_at = pos  # the general path need not try again
                                break
                    append(Tok("SIMPLE", batch, first, end))
                    last_type = "SIMPLE"
                    member_start = True  # the match ended the line (or the text)
                    continue
                m = member_match(text, pos)
                if m is not None:
                    if level != base or sub:  # as above (a line starting with an operator is no member)
                        if level + sub > fmax:
                            fmax = level + sub
                        level, sub = base, 0
                    key_text = m.group("key")
                    if (
                        key_text is not None
                        and m.group("sep") is not None
                        and key_text[0] not in "\"'"
                        and "." not in key_text
                        and (m.group("sep") == "=" or not self.may_open_block(m.end()))
                    ):
                        # The common case, inlined: `name = ` / `name:`.
                        span = Span(source, pos, pos + len(key_text))
                        pos = m.end()
                        append(Tok("KEY", nodes.Key((key_text,), (), span), span.start, pos))
                        last_type = "KEY"
                        member_start = False
                        continue
                    count = len(tokens)
                    pos = self.member_token(m, pos)
                    if len(tokens) == count:  # an unsupported construct was reported and skipped
                        member_start = True
                        continue
                    tok = tokens[-1]
                    last_type = tok.type
                    member_start = last_type in ("ANGLE", "SECTION", "ANGLE_END", "INDENT", "LIST")
                    if last_type == "INDENT" or last_type == "LIST":  # `key:` opened an indentation block
                        key_tok = tokens[-2]
                        level = base + len(key_tok.value.parts) - 1
                        if level > MAX_DEPTH:
                            self.too_deep(*_bounds(key_tok.value.spans[MAX_DEPTH - base]))
                        frames.append((base, level, sub, fmax))
                        base = level = fmax = level + 1
                        if base > MAX_DEPTH:
                            self.too_deep(key_tok.start, key_tok.end)
                        sub = 0
                    elif last_type == "KEY" or last_type == "ANGLE":
                        level = base + len(tok.value.parts) - 1
                        if level > MAX_DEPTH:
                            self.too_deep(*_bounds(tok.value.spans[MAX_DEPTH - base]))
                        if last_type == "ANGLE":  # member_token opened the block
                            frames.append((base, level, sub, fmax))
                            base = level = fmax = level + 1
                            if base > MAX_DEPTH:
                                self.too_deep(tok.start, tok.end)
                            sub = 0
                    elif last_type == "ANGLE_END":
                        child = fmax if fmax > level + sub else level + sub
                        base, level, sub, fmax = frames.pop()
                        if child - level > sub:
                            sub = child - level
                    elif last_type == "SECTION":  # only at the top level: its members are this deep
                        parts = tok.value.parts
                        if len(parts) >= MAX_DEPTH:
                            self.too_deep(*_bounds(tok.value.spans[MAX_DEPTH - 1]))
                        base = level = fmax = 1 + len(parts)
                    continue
                if not stack and STATEMENT_RE.match(text, pos) is not None:
                    # A value alone on its line, at the top level or in a section: a statement (run by
                    # the application, not data). Inside a block such a line is a member missing its `=`.
                    if level != base or sub:
                        if level + sub > fmax:
                            fmax = level + sub
                        level, sub = base, 0
                    append(Tok("STMT", None, pos, pos))
                    last_type = "STMT"
                    member_start = False
                    continue
            m = token_match(text, pos)
            if m is None:
                if text.startswith(".", pos) and tokens and tokens[-1].end == pos and last_type in _DOT_AFTER:
                    link = LINK_RE.match(text, pos)
                    if link is not None and last_type in CHAINS_AFTER:
                        # A chain link counts a level, like an operator.
                        level += 1
                        if level + sub > MAX_DEPTH:
                            self.too_deep(pos, link.end())
                        name = link.group("name")
                        name_span = Span(source, pos + 1, pos + 1 + len(name))
                        end = link.end()
                        if link.group("call"):
                            stack.append(("(", end - 1))
                            frames.append((base, level, sub, fmax))
                            base = level = fmax = level + 1
                            if base > MAX_DEPTH:
                                self.too_deep(end - 1, end)
                            sub = 0
                            append(Tok("METHOD", (name, name_span), pos, end))
                        else:
                            append(Tok("MEMBER", (name, name_span), pos, end))
                        last_type = tokens[-1].type
                        member_start = False
                        pos = end
                        continue
                    self.fail("TSK107", "expected a name after `.`", pos, pos + 1, hint="read a member as `value.name`")
                self.unexpected_character(pos)
            kind = m.lastgroup or ""
            if kind == "call":
                kind = "directive"
            end = m.end()
            if kind == "ws":
                pos = end
                continue
            if kind == "nl":
                if in_object and last_type in VALUE_END:
                    member_start = True
                elif in_object and (last_type == "KEY" or last_type == "VARDEF" or last_type == "DASH"):
                    end = self.skip_to_value(end)
                elif in_object and last_type in CONTINUES and MEMBER_LINE_RE.match(text, end) is not None:
                    # `x = 1 +` then a member: the line continues, so the error would land on the next
                    # line (`unexpected =`), and recovery would blank the wrong one. Point at the operator.
                    op_tok = tokens[-1]
                    self.fail(
                        "TSK100",
                        f"expected a value after `{op_tok.value}`",
                        op_tok.start,
                        op_tok.end,
                        hint=f"a line that ends in `{op_tok.value}` continues on the next line, which starts a new "
                        "member here: finish the expression or remove the operator",
                    )
                elif not in_object and (k := MEMBER_LINE_RE.match(text, end)) is not None:
                    # A member inside `[...]`/`(...)`: the brackets above the innermost object were
                    # never closed. Rare (only lines inside brackets get here), so cost is no concern.
                    if not tolerant:
                        self.member_in_brackets(end, k.end())
                    while stack and stack[-1][0] in "([`":
                        append(self.closing_token(stack.pop()[0], pos))
                        child = fmax if fmax > level + sub else level + sub
                        base, level, sub, fmax = frames.pop()
                        if child - level > sub:
                            sub = child - level
                    last_type = tokens[-1].type
                    member_start = True
                elif top == "[" and last_type in VALUE_END:
                    item_break = True
                pos = end
                continue
            if kind == "comment":
                self.comments.append(nodes.Comment(m.group(), Span(source, pos, end)))
                pos = end
                continue
            if item_break:
                # `["a"` newline `"b"]`: the line break separates two items.
                item_break = False
                if kind in _ITEM_STARTS or (kind == "op" and text[pos] in "[{(!"):
                    if level != base or sub:
                        if level + sub > fmax:
                            fmax = level + sub
                        level, sub = base, 0
                    append(Tok("COMMA", ",", pos, pos))
                    last_type = "COMMA"
            # A new member on the same line as a finished value needs a comma.
            if in_object and last_type in VALUE_END and not member_start and kind in ("name", "dstring", "sstring"):
                k = member_match(text, pos)
                if k is not None and k.group("key") and (k.group("sep") or text.startswith(("{", "["), k.end())):
                    self.fail(
                        "TSK104",
                        "expected a newline or `,` before the next member",
                        pos,
                        pos + len(k.group("key")),
                        hint="put each member on its own line, or separate them with `,`",
                    )
            starting, member_start = member_start, False
            if kind == "op":
                op = m.group()
                if op == "[" and (whole := STRING_ARRAY_RE.match(text, pos)) is not None:
                    if level >= MAX_DEPTH:  # the array itself would be too deep
                        self.too_deep(pos, pos + 1)
                    sub = sub or 1  # an array of strings is one level high
                    end = whole.end()
                    items = tuple(
                        nodes.String(item.group()[1:-1], Span(source, item.start(), item.end()))
                        for item in PLAIN_STRING_RE.finditer(text, pos, end)
                    )
                    append(Tok("ARRAY", nodes.Array(items, Span(source, pos, end)), pos, end))
                    last_type = "ARRAY"
                    pos = end
                    continue
                ttype = OP_TYPES[op]
                if op in "([{":
                    stack.append((op, pos))
                    frames.append((base, level, sub, fmax))
                    base = level = fmax = level + 1
                    if base > MAX_DEPTH:
                        self.too_deep(pos, end)
                    sub = 0
                    if op == "{":
                        member_start = True
                elif op in ")]}":
                    while stack and stack[-1][0] in INDENT_FRAMES:  # a closer ends the blocks inside it
                        at = tokens[-1].end
                        stack.pop()
                        indents.pop()
                        append(Tok("DEDENT", None, at, at))
                        child = fmax if fmax > level + sub else level + sub
                        base, level, sub, fmax = frames.pop()
                        if child - level > sub:
                            sub = child - level
                    if op == "}" and stack and stack[-1][0] == "`":
                        # The `}` of a template's `${...}`: the template's text goes on after it.
                        stack.pop()
                        child = fmax if fmax > level + sub else level + sub
                        base, level, sub, fmax = frames.pop()
                        if child - level > sub:
                            sub = child - level
                        pos = self.template_text(pos + 1, False)
                        if tokens[-1].type == "TEMPLATE_MIDDLE":
                            stack.append(("`", pos - 2))
                            frames.append((base, level, sub, fmax))
                            base = level = fmax = level + 1
                            if base > MAX_DEPTH:
                                self.too_deep(pos - 2, pos)
                            sub = 0
                        last_type = tokens[-1].type
                        continue
                    if tolerant and (not stack or stack[-1][0] != CLOSERS[op]):
                        if all(char != CLOSERS[op] for char, _ in stack):
                            pos = end  # a stray closer: dropped
                            continue
                        while stack[-1][0] != CLOSERS[op]:  # close what it skips over
                            append(self.closing_token(stack.pop()[0], pos))
                            child = fmax if fmax > level + sub else level + sub
                            base, level, sub, fmax = frames.pop()
                            if child - level > sub:
                                sub = child - level
                    self.close(op, pos)
                    child = fmax if fmax > level + sub else level + sub
                    base, level, sub, fmax = frames.pop()
                    if child - level > sub:
                        sub = child - level
                elif op == ",":
                    if level != base or sub:  # the item is finished
                        if level + sub > fmax:
                            fmax = level + sub
                        level, sub = base, 0
                    if not stack or stack[-1][0] in "{>i":
                        member_start = True
                elif op == ";":
                    # `;` ends a member, as a line break does (anywhere one may).
                    if starting or not (in_object and top != "l" and last_type in VALUE_END):
                        self.fail(
                            "TSK107",
                            "unexpected `;`",
                            pos,
                            end,
                            hint="`;` may end a member (`key = value;`), nothing else",
                        )
                    member_start = True
                    pos = end
                    continue
                elif op == "-" and last_type not in VALUE_END:
                    self.fail(
                        "TSK107",
                        "unexpected `-`",
                        pos,
                        end,
                        hint="`-` subtracts (`a - b`); a negative number is written `-5`, a range `8000-9000`",
                    )
                elif ttype == "BINOP" or ttype == "BANG" or ttype == "QUESTION":
                    level += 1
                    if level + sub > MAX_DEPTH:
                        self.too_deep(pos, end)
                append(Tok(ttype, op, pos, end))
                if op == "{" or (op == "}" and (not stack or stack[-1][0] in MEMBER_FRAMES)):
                    # The line break after `{` or after an object's `}` only starts the next member:
                    # consumed here with the blank lines after it, saving the loop a pass per line.
                    blank = BLANK_LINES_RE.match(text, end)
                    if blank is not None:
                        end = blank.end()
                        member_start = True
            elif tolerant and (kind == "dstring" or kind == "sstring") and self.runaway_string(pos, end):
                # Recovery only: a quote left open pairs with the next one, lines below. `parse` must
                # accept the string (strings may span lines); recovery blanks its first line instead.
                self.fail("TSK105", "unterminated string", pos, pos + 1)
            elif kind == "dstring" and "\\" not in (raw := m.group()) and "${" not in raw and end - pos > 2:
                append(Tok("STRING", nodes.String(raw[1:-1], Span(source, pos, end)), pos, end))
            elif kind == "dstring" or kind == "sstring" or kind == "string3":
                if end - pos == 2 and text.startswith('"', end):  # `""` + `"`: an unclosed `"""`
                    self.fail("TSK105", "unterminated string", pos, pos + 3, hint='close it with """')
                append(Tok("STRING", decode_string(m.group(), source, pos, kind), pos, end))
            elif kind == "number":
                if last_type in VALUE_END and text[pos] == "-":
                    # `5 -3`, `$a-1`: after a value, `-` subtracts.
                    level += 1
                    if level + sub > MAX_DEPTH:
                        self.too_deep(pos, pos + 1)
                    end = pos + 1
                    append(Tok("BINOP", "-", pos, end))
                else:
                    append(
                        Tok(
                            "NUMBER",
                            nodes.Number(self.number(m.group(), pos, end), Span(source, pos, end)),
                            pos,
                            end,
                        )
                    )
            elif kind == "name":
                word = m.group()
                kw = KEYWORDS.get(word)
                if kw is not None:
                    if kw == "NULL":
                        append(Tok(kw, nodes.Null(Span(source, pos, end)), pos, end))
                    else:
                        append(Tok(kw, nodes.Bool(kw == "TRUE", Span(source, pos, end)), pos, end))
                elif end < n and text[end] == "(":
                    name_span = Span(source, pos, end)
                    if word in DIRECTIVE_FUNCTIONS:  # `env(...)` is `@env(...)`
                        end += 1
                        stack.append(("(", end - 1))
                        frames.append((base, level, sub, fmax))
                        base = level = fmax = level + 1
                        if base > MAX_DEPTH:
                            self.too_deep(end - 1, end)
                        sub = 0
                        append(Tok("DIRECTIVE_CALL", (word, name_span), pos, end))
                    else:
                        end = self.foreign_call(word, name_span, end)
                else:
                    append(Tok("NAME", word, pos, end))
            elif kind == "variable":
                append(Tok("VARIABLE", nodes.VarRef(m.group("variable"), Span(source, pos, end)), pos, end))
            elif kind == "range":
                low, _, high = m.group().partition("-")
                append(
                    Tok(
                        "RANGE",
                        nodes.Range(
                            self.integer(low, pos), self.integer(high, end - len(high)), Span(source, pos, end)
                        ),
                        pos,
                        end,
                    )
                )
            elif kind == "directive":
                name = m.group("directive")
                name_span = Span(source, pos, pos + 1 + len(name))
                if m.group("call"):
                    stack.append(("(", end - 1))
                    frames.append((base, level, sub, fmax))
                    base = level = fmax = level + 1
                    if base > MAX_DEPTH:
                        self.too_deep(end - 1, end)
                    sub = 0
                    append(Tok("DIRECTIVE_CALL", (name, name_span), pos, end))
                else:
                    append(Tok("DIRECTIVE", (name, name_span), pos, end))
            elif kind == "template":
                end = self.template_text(pos + 1, True)
                if tokens[-1].type == "TEMPLATE_HEAD":
                    stack.append(("`", end - 2))
                    frames.append((base, level, sub, fmax))
                    base = level = fmax = level + 1
                    if base > MAX_DEPTH:
                        self.too_deep(end - 2, end)
                    sub = 0
            else:  # pragma: no cover - every group is handled above
                raise AssertionError(kind)
            last_type = tokens[-1].type
            pos = end

        while stack and stack[-1][0] in INDENT_FRAMES:  # the end of the text ends every block
            at = tokens[-1].end
            stack.pop()
            indents.pop()
            append(Tok("DEDENT", None, at, at))
            frames.pop()
        if stack and tolerant:
            self.tokens = tokens = self.close_by_indentation(tokens)
        elif stack:
            found = find_break(text, tokens) if any(char in "{>" for char, _ in stack) else None
            if found is not None:
                self.unclosed_block(found, "the end of the file")
            char, where = stack[-1]
            if char == ">":
                self.fail(
                    "TSK103",
                    "unclosed angle block: `<` expected",
                    where,
                    where + 1,
                    hint="close the block with `<` alone on its own line",
                )
            if char == "`":
                self.fail(
                    "TSK105",
                    "unterminated `${...}` in a template string",
                    where,
                    where + 2,
                    hint="close the interpolation with `}` and the template with a backtick",
                )
            closer = {"(": ")", "[": "]", "{": "}"}[char]
            line, col = self.source.position(where)
            self.fail(
                "TSK103",
                f"unclosed `{char}` opened at {line}:{col}",
                where,
                where + 1,
                hint=f"add the missing `{closer}`",
            )
        if self.problems and not tolerant:
            raise TuskError(self.problems)
        self.strings, self.string_arrays = {}, {}
        return tokens, self.comments

    def runaway_string(self, start: int, end: int) -> bool:
        """A `"`/`'` string whose next line starts a member (`key = ...`): most likely left unclosed."""
        text = self.text
        nl = text.find("\n", start, end)
        if nl == -1:
            return False
        i = nl + 1
        while i < end and text[i] in " \t":
            i += 1
        return MEMBER_LINE_RE.match(text, i) is not None

    def close_by_indentation(self, tokens: list[Tok]) -> list[Tok]:
        """Recovery: close each unclosed block where its indentation says it ended, then balance the rest."""
        for _ in range(len(self.stack)):
            found = find_break(self.text, tokens)
            if found is None:
                break
            at = tokens[found.token_index - 1].end if found.token_index else found.at
            tokens.insert(found.token_index, Tok(CLOSER_TYPE[found.char], CLOSER_OF[found.char], at, at))
        return rebalance(tokens, Tok)

    def unclosed_block(self, found: Break, at_the: str) -> NoReturn:
        """TSK103 at the block whose members' indentation breaks, with the evidence as notes."""
        source = self.source
        line, col = source.position(found.where)
        break_line = source.position(found.at)[0]
        closer = CLOSER_OF[found.char]
        related = []
        if found.kind == "closer":
            assert found.outer is not None
            outer_line, outer_col = source.position(found.outer)
            related.append(
                Related(
                    self.span(found.at, found.at + 1),
                    f"this `{closer}` lines up with the line that opened `{{` at {outer_line}:{outer_col}, "
                    "so it closes that block",
                )
            )
        elif found.kind == "header":
            related.append(Related(self.span(found.at, found.at + 1), "a `[section]` header ends every block"))
        else:
            tok = self.tokens[found.token_index]
            if tok.type == "SIMPLE":
                end = tok.value[0].key.span.end
            else:
                end = tok.value.span.end if tok.type in ("KEY", "ANGLE") else tok.end
            related.append(
                Related(
                    self.span(found.at, end),
                    "this line is indented no deeper than the line that opened the block, so the block ends before it",
                )
            )
        still_open = [where for char, where in self.stack if char in "{>" and where != found.where]
        if still_open:
            char = next(c for c, w in self.stack if w == still_open[-1])
            what = "angle block" if char == ">" else f"`{char}`"
            related.append(
                Related(self.span(still_open[-1], still_open[-1] + 1), f"this {what} is still open at {at_the}")
            )
        if found.char == ">":
            message = f"unclosed angle block opened at {line}:{col}: `<` expected"
            hint = f"close the block with `<` alone on its own line, before line {break_line}"
        else:
            message = f"unclosed `{found.char}` opened at {line}:{col}"
            hint = f"add the missing `{closer}` before line {break_line}"
        self.fail("TSK103", message, found.where, found.where + 1, hint=hint, related=tuple(related))

    def member_in_brackets(self, start: int, end: int) -> NoReturn:
        """TSK103: a line starting a member while `[`/`(` are open: they were never closed."""
        unclosed = []
        for char, where in reversed(self.stack):
            if char in "{>":
                break
            unclosed.append((char, where))
        char, where = unclosed[0]
        line, col = self.source.position(where)
        inside = "`[...]`, so the array ends" if char == "[" else "`(...)`, so the parentheses end"
        closers = "".join(CLOSER_OF[c] for c, _ in unclosed)
        key_end = start + len(self.text[start:end].rstrip(" \t="))
        self.fail(
            "TSK103",
            f"unclosed `{char}` opened at {line}:{col}",
            where,
            where + 1,
            hint=f"add the missing `{closers}` before line {self.source.position(start)[0]}",
            related=(
                Related(self.span(start, key_end), f"a member (`key = value`) cannot be inside {inside} before it"),
            ),
        )

    def simple_object(
        self, pos: int, base: int, key_parts: dict[str, tuple[str]], o: re.Match[str] | None = None
    ) -> tuple[nodes.Member, int, int, int] | None:
        """`name = {` ending its line, over lines that are all SIMPLE members or such objects, indented
        alike and deeper than it, closed by `}` alone on a line indented as it: (the Member, where the
        next line's content starts, the Member's end, the object's height in levels). None for
        anything else, which the general path then reads (it builds the same nodes).

        The object's lines go into the SIMPLE token with it; find_break would see nothing in them (each
        line is as deep as its neighbours, the `}` lines up with its opening line).
        """
        if base + 2 > MAX_DEPTH or pos in self.no_object_at:
            return None  # near the nesting limit the general path reports what crosses it
        text = self.text
        if o is None:  # ``run`` matches OBJECT_OPEN_RE itself, to skip the call for other lines
            o = OBJECT_OPEN_RE.match(text, pos)
            if o is None:
                return None
        line_start = text.rfind("\n", 0, pos) + 1
        if line_start != pos and not text[line_start:pos].isspace():
            return None  # not first on its line (after `,` or `;`)
        indent = pos - line_start
        inner = o.end()
        inner_indent = inner - o.start("indent")
        span_type = self.span_type
        members: list[nodes.Member] = []
        height = 1
        n = len(text)
        while inner_indent > indent:
            m = SIMPLE_MEMBER_RE.match(text, inner)
            if m is not None:
                members.append(self.simple_member(m, inner, key_parts))
                if m.lastgroup == "ARRAY" and height < 2:
                    height = 2
                nxt = m.end()
            else:
                found = self.simple_object(inner, base + 1, key_parts)
                if found is None:
                    break
                members.append(found[0])
                nxt = found[1]
                if found[3] + 1 > height:
                    height = found[3] + 1
            if nxt >= n:
                break
            at = nxt - text.rfind("\n", 0, nxt) - 1
            if at == inner_indent:
                inner = nxt
                continue
            close = OBJECT_CLOSE_RE.match(text, nxt) if at == indent else None
            if close is None:
                break
            brace = o.start("brace")
            key_end = o.end("key")
            pos_high = pos << SPAN_SHIFT  # the key and the member start there
            span = span_type(pos_high | key_end)
            name = text[pos:key_end]
            parts = key_parts.get(name)
            if parts is None:
                parts = key_parts[name] = (name,)
            value = new(nodes.Object, (tuple(members), span_type(brace << SPAN_SHIFT | nxt + 1), "brace"))
            member = new(Member, (new(Key, (parts, (), span)), value, None))  # the value ends at nxt + 1
            return member, close.end(), nxt + 1, height
        self.no_object_at.add(pos)  # an enclosing object's attempt will not scan this one again
        return None

    def simple_member(self, m: re.Match[str], pos: int, key_parts: dict[str, tuple[str]]) -> nodes.Member:
        """The Member of a SIMPLE_MEMBER_RE match at ``pos`` (the loop in ``run`` inlines this)."""
        text, source, span_type = self.text, self.source, self.span_type
        key_end = m.end("key")
        pos_high = pos << SPAN_SHIFT  # the key and the member start there
        span = span_type(pos_high | key_end)
        kind = m.lastgroup or ""
        start, end = m.span(kind)
        value: Any
        if kind == "STRING":
            plain = text[start + 1 : end - 1]
            value = new(String, (self.strings.setdefault(plain, plain), span_type(start << SPAN_SHIFT | end)))
        elif kind == "NUMBER":
            value = new(Number, (self.simple_number(text[start:end], start, end), span_type(start << SPAN_SHIFT | end)))
        elif kind == "ARRAY":
            value = new(Array, (self.simple_items(start, end), span_type(start << SPAN_SHIFT | end)))
        elif kind == "ESCAPED":
            value = decode_string(text[start:end], source, start, "dstring")
        elif kind == "BLOCK":
            value = decode_string(text[start:end], source, start, "string3")
        else:
            value = new(Bool, (kind == "TRUE", span_type(start << SPAN_SHIFT | end)))
        name = text[pos:key_end]
        parts = key_parts.get(name)
        if parts is None:
            parts = key_parts[name] = (name,)
        return new(Member, (new(Key, (parts, (), span)), value, None))

    def simple_items(self, start: int, end: int) -> tuple[nodes.String | nodes.Number, ...]:
        """The items of a one-line array of plain strings and numbers (SIMPLE_MEMBER_RE checked its shape)."""
        span_type, text = self.span_type, self.text
        written = text[start:end]
        # An array of strings written again (every flag's `environments`) is read once: its items'
        # strings and offsets are kept, by its text, for the rest of the file.
        known = self.string_arrays.get(written)
        if known is not None:
            return tuple(
                [new(String, (value, span_type(start + at << SPAN_SHIFT | start + to))) for value, at, to in known]
            )
        strings = self.strings
        items: list[nodes.String | nodes.Number] = []
        shape: list[tuple[str, int, int]] | None = []
        for item in SIMPLE_ITEM_RE.finditer(text, start + 1, end - 1):
            at, to = item.span()
            raw = item.group()
            if raw[0] == '"':
                plain = raw[1:-1]
                plain = strings.setdefault(plain, plain)
                items.append(new(String, (plain, span_type(at << SPAN_SHIFT | to))))
                if shape is not None:
                    shape.append((plain, at - start, to - start))
            else:
                items.append(new(Number, (self.simple_number(raw, at, to), span_type(at << SPAN_SHIFT | to))))
                shape = None
        if shape is not None:
            self.string_arrays[written] = shape
        return tuple(items)

    def simple_number(self, raw: str, start: int, end: int) -> int | float:
        """``number`` for the plain decimals of SIMPLE_MEMBER_RE (no `_`, base prefix or exponent)."""
        if len(raw) > 300:  # the limits (digits, a float's range) are ``number``'s to check
            return self.number(raw, start, end)
        return float(raw) if "." in raw else int(raw)

    def member_token(self, m: re.Match[str], pos: int) -> int:
        source = self.source
        end = m.end()
        if m.group("key") is not None:
            key_text = m.group("key")
            key = self.key(key_text, pos)
            if m.group("angle"):
                self.stack.append((">", pos))
                self.tokens.append(Tok("ANGLE", key, pos, end))
                return end
            sep = m.group("sep")
            block = self.block_kind(key, end) if sep == ":" and self.may_open_block(end) else None
            self.tokens.append(Tok("KEY", key, pos, end))
            if block is not None:
                kind, parent, members = block
                self.stack.append((kind, end))
                self.indents.append((parent, members))
                self.tokens.append(Tok("INDENT" if kind == "i" else "LIST", None, end, end))
            return end
        if m.group("var") is not None:
            name = m.group("var")
            self.tokens.append(Tok("VARDEF", (name, Span(source, pos, pos + 1 + len(name))), pos, end))
            return end
        if m.group("angle_end") is not None:
            if not self.stack or self.stack[-1][0] != ">":
                if self.tolerant:
                    return pos + 1  # dropped; an angle block it was meant for is closed at the end
                self.fail("TSK102", "unexpected `<`: no angle block is open", pos, pos + 1)
            self.stack.pop()
            self.tokens.append(Tok("ANGLE_END", "<", pos, pos + 1))
            return pos + 1
        if m.group("section") is not None:
            s = SECTION_RE.match(self.text, pos)
            if s is not None and self.stack:
                # A header is only at the top level: open blocks whose indentation ends here were
                # never closed (TSK103 at the one that lost its `}`); others hold a misplaced header.
                if self.tolerant:
                    at = self.tokens[-1].end if self.tokens else pos
                    while self.stack:
                        char = self.stack.pop()[0]
                        self.tokens.append(Tok(CLOSER_TYPE[char], CLOSER_OF[char], at, at))
                    self.frames.clear()
                else:
                    found = find_break(self.text, self.tokens, header_at=pos)
                    if found is not None:
                        self.unclosed_block(found, f"the `[{s.group('path')}]` header")
            if s is None or self.stack:
                if self.stack:
                    # `[` at the start of a member inside an object: not a header.
                    self.fail(
                        "TSK101",
                        "a `[section]` header is only allowed at the top level",
                        pos,
                        pos + 1,
                        hint="write the nested object as `name = { ... }`",
                    )
                self.fail("TSK101", "malformed `[section]` header", pos, pos + 1, hint="write `[name]` or `[a.b]`")
            key = self.key(s.group("path"), s.start("path"))
            self.tokens.append(Tok("SECTION", key, pos, s.end()))
            return s.end()
        # `- item` outside a list opened by `key:`.
        line_end = self.text.find("\n", pos)
        line_end = len(self.text) if line_end == -1 else line_end
        self.problems.append(
            Diagnostic(
                "TSK110",
                "a `- item` line must be in a list opened by `key:` on a line above it",
                self.span(pos, line_end),
                hint="open the list with its key (`items:`, then indented `- a` lines), "
                'or write an array: `items = ["a", "b"]`',
            )
        )
        return line_end

    def skip_to_value(self, pos: int) -> int:
        """`key =` then a newline: skip to the value (keeping comments), or fail if a new member follows.

        Returns where the value starts. The lines skipped are consumed here, once: scanning ahead
        from every blank line instead made `key =` followed by n blank lines cost n^2.
        """
        text = self.text
        comments = self.comments
        source = self.source
        while True:
            m = TOKEN_RE.match(text, pos)
            if m is None:
                break
            kind = m.lastgroup
            if kind == "comment":
                comments.append(nodes.Comment(m.group(), Span(source, pos, m.end())))
            elif kind != "ws" and kind != "nl":
                break
            pos = m.end()
        k = MEMBER_RE.match(text, pos)
        if pos >= len(text) or text[pos] == "}" or (k is not None and k.group("sep")):
            tok = self.tokens[-1]
            sep = text[tok.start : tok.end].rstrip()[-1]
            self.fail(
                "TSK100",
                f"expected a value after `{sep}`",
                tok.end - 1,
                tok.end,
                hint=VALUE_EXAMPLES,
            )
        return pos

    def closing_token(self, char: str, at: int) -> Tok:
        """Recovery: the token that closes a frame left open (a block, bracket or `${`)."""
        if char in INDENT_FRAMES:
            self.indents.pop()
            return Tok("DEDENT", None, at, at)
        if char == "`":
            return Tok("TEMPLATE_TAIL", "", at, at)
        return Tok(CLOSER_TYPE[char], CLOSER_OF[char], at, at)

    # --- indentation blocks ----------------------------------------------------------------------

    def may_open_block(self, end: int) -> bool:
        """After `key:`: nothing else on the line, so the lines below may be a block (decided later)."""
        text = self.text
        end = _past_inline_comments(text, end)
        return end >= len(text) or text[end] in "\r\n#" or text.startswith("//", end)

    def block_kind(self, key: nodes.Key, end: int) -> tuple[str, str, str] | None:
        """`key:` alone on its line over deeper member or `- item` lines: ("i" or "l", its line's
        indentation, its members' indentation). None when no block opens (a value follows instead)."""
        text = self.text
        n = len(text)
        i = _past_inline_comments(text, end)
        if i < n and text[i] not in "\r\n#" and not text.startswith("//", i):
            return None
        line_start = text.rfind("\n", 0, key.span.start) + 1
        parent = _leading(text, line_start)
        j = text.find("\n", i)
        while j != -1:
            j += 1
            k = j
            while k < n and text[k] in " \t":
                k += 1
            if k >= n:
                return None
            first = _past_inline_comments(text, k)  # `/* ... */` before the line's content
            if first >= n or text[first] in "\r\n" or text[first] == "#" or text.startswith("//", first):
                j = text.find("\n", first)  # a blank or comment line: the block, if any, starts later
                continue
            indent = text[j:k]
            k = first
            if indent == parent or parent.startswith(indent):
                return None  # not deeper: the member goes on without a value (an error, as for `=`)
            if not indent.startswith(parent):
                self.mixed_indentation(j, k, parent, "the line above it that opens a block")
            m = MEMBER_RE.match(text, k)
            if m is None:
                return None  # a value on the next line, as after `=`
            if m.group("dash") is not None:
                return ("l", parent, indent)
            if m.group("key") is not None or m.group("var") is not None:
                return ("i", parent, indent)
            return None
        return None

    def dedents(self, pos: int) -> int | None:
        """At the first token of a line inside an indentation block: how many blocks the line ends.

        None when ``pos`` is no line's first content (a blank or comment line, or a member after `;`).
        A line indented as the block's members is one of them; one indented no deeper than the line
        that opened the block ends it (and is checked against the enclosing block the same way); any
        other indentation is TSK113, as is a line that mixes tabs and spaces where its block does not.
        """
        text = self.text
        ch = text[pos]
        if ch in "\r\n#}])<" or text.startswith(("//", "/*"), pos):
            return None  # closers end blocks themselves; `<` alone closes an angle block
        line_start = text.rfind("\n", 0, pos) + 1
        if self.tokens and self.tokens[-1].end > line_start:
            return None  # not the line's first token
        indent = _leading(text, line_start)
        closes = 0
        for index in range(len(self.stack) - 1, -1, -1):
            char, where = self.stack[index]
            if char not in INDENT_FRAMES:
                break
            parent, members = self.indents[index - len(self.stack)]
            if indent == members:
                break
            if indent.startswith(members):
                self.indentation_error(
                    "unexpected indentation: this line is indented deeper than the block's members",
                    line_start,
                    pos,
                    where,
                    "indent it as the members above it, or open a block with `key:` on the line above",
                )
            if parent.startswith(indent):
                closes += 1  # no deeper than the line that opened the block: the block has ended
                continue
            if not indent.startswith(parent) or not members.startswith(indent):
                self.mixed_indentation(line_start, pos, members, "the members of its block")
            self.indentation_error(
                "inconsistent indentation: this line is shallower than the block's members but deeper "
                "than the line that opened the block",
                line_start,
                pos,
                where,
                "indent it as the block's members to stay in the block, or as the line that opened it to end it",
            )
        return closes

    def list_item(self, pos: int) -> int:
        """A line of a `- item` list: the `- ` marker (a DASH token); returns where the item's value starts."""
        text = self.text
        if text.startswith("-", pos) and (pos + 1 >= len(text) or text[pos + 1] in " \t\r\n"):
            self.tokens.append(Tok("DASH", "-", pos, pos + 1))
            return pos + 1
        _, where = self.stack[-1]
        line, _ = self.source.position(where)
        line_end = text.find("\n", pos)
        self.fail(
            "TSK110",
            f"expected a `- item` line in the list opened on line {line}",
            pos,
            len(text) if line_end == -1 else line_end,
            hint="each line of an indented list is `- value`; end the list with a line indented as its key",
        )

    def indentation_error(self, message: str, line_start: int, pos: int, where: int, hint: str) -> NoReturn:
        line, _ = self.source.position(where)
        self.fail(
            "TSK113",
            message,
            line_start,
            pos,
            hint=hint,
            related=(Related(self.span(where, where), f"the block opened on line {line}"),),
        )

    def mixed_indentation(self, line_start: int, pos: int, expected: str, what: str) -> NoReturn:
        found = self.text[line_start:pos]
        self.fail(
            "TSK113",
            f"indentation mixes tabs and spaces: this line is indented with {_describe_indent(found)}, "
            f"{what} with {_describe_indent(expected)}",
            line_start,
            pos,
            hint="indent every line of a block the same way: all spaces or all tabs",
        )

    # --- foreign code and templates --------------------------------------------------------------

    def foreign_call(self, name: str, name_span: Span, open_at: int) -> int:
        """`name(...)` for a name that is no directive: the call, its code kept verbatim (foreign.py)."""
        text = self.text
        found = foreign.scan(text, open_at + 1)
        if isinstance(found, foreign.Unclosed):
            if found.what == "call":
                line, col = self.source.position(open_at)
                self.fail(
                    "TSK103",
                    f"unclosed `(` of `{name}(...)` opened at {line}:{col}",
                    open_at,
                    open_at + 1,
                    hint=f"the code inside `{name}(...)` is kept as written up to the `)` that balances this `(`",
                )
            self.fail(
                "TSK105",
                f"unterminated {found.what} in the code of `{name}(...)`",
                found.at,
                found.at + 1,
                hint="the code is another language's: its strings, comments and heredocs must be closed "
                "for the call's `)` to be found",
            )
        source = self.source
        node = nodes.Foreign(
            name,
            text[open_at + 1 : found],
            name_span,
            Span(source, open_at + 1, found),
            Span(source, name_span.start, found + 1),
        )
        self.tokens.append(Tok("FOREIGN", node, name_span.start, found + 1))
        return found + 1

    def template_text(self, pos: int, head: bool) -> int:
        """The text of a backtick template from ``pos`` up to its next `${` (a TEMPLATE_HEAD or
        TEMPLATE_MIDDLE token) or its closing backtick (a STRING, for a template without `${`, or a
        TEMPLATE_TAIL). Returns the offset after the `${` or the backtick."""
        text = self.text
        m = TEMPLATE_TEXT_RE.match(text, pos)
        end = m.end() if m is not None else pos
        if end >= len(text):
            self.fail("TSK105", "unterminated template string", pos - 1, pos, hint="close it with a backtick")
        value = decode_template_text(text[pos:end], self.source, pos)
        start = pos - 1
        if text[end] == "`":
            if head:
                node = nodes.String(value, Span(self.source, start, end + 1))
                self.tokens.append(Tok("STRING", node, start, end + 1))
            else:
                self.tokens.append(Tok("TEMPLATE_TAIL", value, start, end + 1))
            return end + 1
        self.tokens.append(Tok("TEMPLATE_HEAD" if head else "TEMPLATE_MIDDLE", value, start, end + 2))
        return end + 2

    def key(self, key_text: str, pos: int) -> nodes.Key:
        source = self.source
        if key_text[0] not in "\"'" and "." not in key_text:
            span = Span(source, pos, pos + len(key_text))
            return nodes.Key((key_text,), (), span)
        parts: list[str] = []
        spans: list[Span] = []
        i = 0
        while i < len(key_text):
            m = KEYPART_RE.match(key_text, i)
            if m is None:  # pragma: no cover - the key pattern guarantees a match
                break
            part = m.group("part")
            start = pos + m.start("part")
            if part[0] in "\"'":
                decoded = decode_string(
                    part, source, start, "dstring" if part[0] == '"' else "sstring", interpolate=False
                )
                assert isinstance(decoded, nodes.String), "without interpolation a string is plain"
                parts.append(decoded.value)
            else:
                parts.append(part)
            spans.append(Span(source, start, start + len(part)))
            i = m.end()
        span = Span(source, pos, pos + len(key_text))
        if len(spans) == 1 and spans[0] == span:  # Key.part_spans: empty when the part is the whole key
            return nodes.Key(tuple(parts), (), span)
        return nodes.Key(tuple(parts), tuple(spans), span)

    def number(self, text: str, start: int, end: int) -> int | float:
        clean = text.replace("_", "")
        sign = -1 if clean.startswith("-") else 1
        body = clean.lstrip("+-")
        if body[:2] in ("0x", "0o", "0b"):
            value = int(body, 0)  # no digit limit for these bases, so the value itself is checked
            if len(body) > 32 and value >= _INT_CEILING:
                self.too_many_digits(text, start, end)
            return sign * value
        if any(c in body for c in ".eE"):
            number = float(clean)
            if number in (float("inf"), float("-inf")):
                self.fail(
                    "TSK106",
                    f"number `{_shorten(text)}` is too large",
                    start,
                    end,
                    hint="floats go up to about 1.8e308; write a larger value as a string",
                )
            return number
        if len(body) > MAX_INT_DIGITS:
            self.too_many_digits(text, start, end)
        return int(clean)

    def integer(self, digits: str, start: int) -> int:
        """One bound of a range (`8000-9000`): plain decimal digits."""
        if len(digits) > MAX_INT_DIGITS:
            self.too_many_digits(digits, start, start + len(digits))
        return int(digits)

    def too_many_digits(self, text: str, start: int, end: int) -> NoReturn:
        self.fail(
            "TSK106",
            f"number `{_shorten(text)}` is too long: integers have at most {MAX_INT_DIGITS:,} decimal digits",
            start,
            end,
            hint="write a value this large as a string",
        )

    def too_deep(self, start: int, end: int) -> NoReturn:
        self.fail(
            "TSK112",
            f"nested more than {MAX_DEPTH} levels deep",
            start,
            end,
            hint=(
                "brackets, dotted-key parts and operators each count a level (docs/syntax.md, Limits): "
                "flatten the data, or compute a long expression in steps (`$part = a + b`)"
            ),
        )

    def lone_surrogate(self, pos: int) -> NoReturn:
        self.fail(
            "TSK001",
            f"lone surrogate U+{ord(self.text[pos]):04X}: the text is not valid Unicode",
            pos,
            pos + 1,
            hint="the text was decoded wrongly, or holds half of a UTF-16 pair; write the character itself",
        )

    def close(self, op: str, pos: int) -> None:
        stack = self.stack
        want = CLOSERS[op]
        if not stack:
            self.fail("TSK102", f"unexpected `{op}`: nothing is open here", pos, pos + 1, hint="remove it")
        char, where = stack[-1]
        if char != want:
            line, col = self.source.position(where)
            expected = {"(": ")", "[": "]", "{": "}", ">": "<"}[char]
            self.fail(
                "TSK102",
                f"expected `{expected}` to close `{char}` opened at {line}:{col}, found `{op}`",
                pos,
                pos + 1,
                related=(Related(self.span(where, where + 1), f"`{char}` opened here"),),
            )
        stack.pop()

    def unexpected_character(self, pos: int) -> NoReturn:
        text = self.text
        ch = text[pos]
        if ch == '"' or ch == "'":
            self.fail(
                "TSK105",
                "unterminated string",
                pos,
                pos + 1,
                hint='close it with """' if text.startswith('"""', pos) else f"close the string with {ch}",
            )
        if text.startswith("/*", pos):
            self.fail("TSK105", "unterminated comment `/*`", pos, pos + 2, hint="close it with `*/`")
        if ch == "=":
            self.fail(
                "TSK107",
                "unexpected `=`: a key must come first",
                pos,
                pos + 1,
                hint="write `name = value`; keys are letters, digits, `_` and `-`, or a quoted string",
            )
        if ch == "@":
            self.fail("TSK107", "`@` must be followed by a directive name, e.g. `@env(NAME)`", pos, pos + 1)
        if ch == "$":
            self.fail("TSK107", "`$` must be followed by a variable name, e.g. `$port`", pos, pos + 1)
        if ch == "\r":
            self.fail(
                "TSK107",
                "a carriage return without a line feed: lines end in LF or CRLF",
                pos,
                pos + 1,
                hint="save the file with LF (or CRLF) line endings",
            )
        if ch.isdigit() or ch == ".":
            m = re.compile(r"[\w.+-]+").match(text, pos)
            end = m.end() if m else pos + 1
            self.fail("TSK106", f"malformed number `{text[pos:end]}`", pos, end)
        if ch == "-":
            self.fail(
                "TSK107",
                "unexpected `-`",
                pos,
                pos + 1,
                hint="TuskLang has no subtraction; a range is written without spaces: `8000-9000`",
            )
        shown = repr(ch) if not ch.isprintable() or ch.isspace() else f"`{ch}`"
        self.fail("TSK107", f"unexpected character {shown}", pos, pos + 1)


def _shorten(text: str) -> str:
    """A literal fit for a message: a 5,000-digit number is not shown whole."""
    return text if len(text) <= 24 else f"{text[:10]}...{text[-10:]}"


def _bounds(span: Span) -> tuple[int, int]:
    return span.start, span.end


def _past_inline_comments(text: str, pos: int) -> int:
    """``pos`` moved past spaces, tabs and `/* ... */` comments that close on the same line."""
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t":
            pos += 1
        if not text.startswith("/*", pos):
            return pos
        line_end = text.find("\n", pos)
        close = text.find("*/", pos + 2, n if line_end == -1 else line_end)
        if close == -1:
            return pos
        pos = close + 2


def _leading(text: str, line_start: int) -> str:
    """The indentation (spaces and tabs) of the line starting at ``line_start``."""
    end = line_start
    n = len(text)
    while end < n and text[end] in " \t":
        end += 1
    return text[line_start:end]


def _describe_indent(indent: str) -> str:
    tabs, spaces = indent.count("\t"), indent.count(" ")
    parts = [f"{tabs} tab{'s' if tabs != 1 else ''}"] if tabs else []
    if spaces or not tabs:
        parts.append(f"{spaces} space{'s' if spaces != 1 else ''}")
    return " and ".join(parts)
