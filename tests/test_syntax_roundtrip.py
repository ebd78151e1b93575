"""Generated documents in the forms of issue 15 (docs/syntax.md): `;` endings, indentation blocks and
`- item` lists, arithmetic with precedence, bare names of earlier keys, member chains on directives,
foreign code, items separated by line breaks, `key [words]`, backtick templates, dotted directive calls.
A bare name reads an earlier key of its object or of the objects around it (in a section: of the keys
before the first section).

Each generated document comes with the data docs/syntax.md says it means, so the tests hold:
- `loads` gives that data;
- `loads(dumps(x)) == x`, each expression's names reading the same values (and `dumps` is canonical);
- `tusk fmt` is idempotent, keeps the data and every comment, and copies foreign code byte for byte.
"""

from __future__ import annotations

import math
import re
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import tusklang
from tusklang.format import format_text
from tusklang.syntax import nodes
from tusklang.syntax.lexer import DIRECTIVE_FUNCTIONS
from tusklang.values import DirectiveCall, Expression, ForeignCall, Link, MemberChain

from .test_dumps_expressions import meaning

# Words that are not plain names: keywords, the words refused as booleans, directive functions.
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", *DIRECTIVE_FUNCTIONS}
_names = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(lambda s: s not in _RESERVED)
_words = st.from_regex(r"[a-z][a-z_]{0,6}", fullmatch=True).filter(lambda s: s not in _RESERVED)
_plain_text = st.text(st.sampled_from("abcxyz ./-_:é🚀()"), max_size=8)
_comments = st.sampled_from(["# note", "// why", "/* block */", "# (unbalanced", "# émoji 🚀"])

# Foreign code whose parentheses, strings, comments and heredocs must not confuse the balance.
_FOREIGN_PIECES = [
    "time()",
    "rand(1, 100)",
    'strtoupper("a ) b")',
    "')' . \"(\"",
    "/* ) */ 1",
    "// ) to the line end\n2",
    "# ( hash comment\n3",
    "function($n) { return $n * 2; }(20)",
    "`(backtick`",
    '"escaped \\" ) quote"',
]
_HEREDOCS = [
    "<<<'HTML'\n<p>(an open paren</p>\n  <i>)) two closing</i>\nHTML\n",
    '<<<"TXT"\n${x} ) \nTXT\n',
    "<<<EOT\n    body ( )\n    EOT\n",
]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- values ---------------------------------------------------------------------------------------
# A value is (text, data). ``scope`` maps the keys a bare name can read there to their data: the earlier
# keys of the object being written, then those of the objects around it (in a section: the keys before
# the first section), the nearest first.


def _numbers_in(scope: dict[str, Any]) -> list[str]:
    return [k for k, v in scope.items() if type(v) is int]


def _strings_in(scope: dict[str, Any]) -> list[str]:
    return [k for k, v in scope.items() if type(v) is str]


def _divide(a: int | float, b: int | float) -> int | float:
    if type(a) is int and type(b) is int and a % b == 0:
        return a // b
    return a / b


def _remainder(a: int | float, b: int | float) -> int | float:
    if type(a) is int and type(b) is int:
        rest = abs(a) % abs(b)
        return -rest if a < 0 else rest
    return math.fmod(a, b)


_OPS = {
    "+": (3, lambda a, b: a + b),
    "-": (3, lambda a, b: a - b),
    "*": (4, lambda a, b: a * b),
    "/": (4, _divide),
    "%": (4, _remainder),
}


@st.composite
def _arithmetic(draw: st.DrawFn, scope: dict[str, Any], depth: int = 0) -> tuple[str, int | float, int]:
    """(text, value, precedence level of its top operator; 9 for an atom)."""
    numbers = _numbers_in(scope)
    if depth >= 3 or draw(st.integers(0, 2)) == 0:
        by_name: bool = draw(st.booleans())
        if numbers and by_name:
            name = draw(st.sampled_from(numbers))
            return name, scope[name], 9
        value = draw(st.integers(-50, 50))
        return str(value), value, 9
    op = draw(st.sampled_from(sorted(_OPS)))
    level, apply = _OPS[op]
    left, left_value, left_level = draw(_arithmetic(scope, depth + 1))
    right, right_value, right_level = draw(_arithmetic(scope, depth + 1))
    if op in "/%" and right_value == 0:
        right, right_value, right_level = "7", 7, 9
    if left_level < level:
        left = f"({left})"
    if right_level <= level:
        right = f"({right})"
    return f"{left} {op} {right}", apply(left_value, right_value), level


@st.composite
def _scalar(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["int", "string", "bool", "null", "float"]))
    if kind == "int":
        value = draw(st.integers(-(10**6), 10**6))
        return str(value), value
    if kind == "float":
        return "2.5", 2.5
    if kind == "bool":
        value = draw(st.booleans())
        return ("true" if value else "false"), value
    if kind == "null":
        return "null", None
    text = draw(_plain_text)
    return _quote(text), text


@st.composite
def _template(draw: st.DrawFn, scope: dict[str, Any]) -> tuple[str, str]:
    pieces = draw(st.lists(st.sampled_from(["text", "ref", "sum", "escape"]), min_size=1, max_size=4))
    source, value = ["`"], []
    for piece in pieces:
        numbers, strings = _numbers_in(scope), _strings_in(scope)
        if piece == "ref" and (numbers or strings):
            name = draw(st.sampled_from(numbers + strings))
            source.append("${" + name + "}")
            value.append(str(scope[name]))
        elif piece == "sum":
            number = draw(st.integers(0, 99))
            source.append("${" + f"{number} + 1" + "}")
            value.append(str(number + 1))
        elif piece == "escape":
            source.append("\\` \\${x}")
            value.append("` ${x}")
        else:
            text = draw(st.text(st.sampled_from("abc /-:.é"), max_size=6))
            source.append(text)
            value.append(text)
    source.append("`")
    return "".join(source), "".join(value)


@st.composite
def _foreign(draw: st.DrawFn) -> tuple[str, ForeignCall]:
    pieces = draw(st.lists(st.sampled_from(_FOREIGN_PIECES), min_size=1, max_size=3))
    code = " . ".join(pieces)
    if draw(st.booleans()):
        code = (code + " . " if draw(st.booleans()) else "") + draw(st.sampled_from(_HEREDOCS))
    elif "\n" in pieces[-1] and draw(st.booleans()):
        code += "\n"  # a comment to the line end needs the `)` on the next line
    return f"php({code})", ForeignCall("php", code)


@st.composite
def _runtime(draw: st.DrawFn) -> tuple[str, Any]:
    """Member chains on directives, runtime-only directives, dotted directive calls."""
    kind = draw(st.sampled_from(["chain", "member", "dotted", "header"]))
    if kind == "chain":
        table = draw(_words)
        number = draw(st.integers(0, 9))
        links = [Link("where", ("active", True)), Link("limit", (number,))]
        links = [*links[: draw(st.integers(0, 2))], draw(st.sampled_from([Link("count", ()), Link("length")]))]
        text = f'@query("{table}")' + "".join(
            f".{link.name}" + ("" if link.args is None else "(" + ", ".join(_arg(a) for a in link.args) + ")")
            for link in links
        )
        if all(link.args is None for link in links):
            # A member of a value the resolver computes waits for it, as any expression does; only a
            # method call makes the chain runtime-only (docs/syntax.md, Member access).
            return text, Expression(text)
        return text, MemberChain(DirectiveCall("query", (table,)), tuple(links))
    if kind == "member":
        query = draw(st.sampled_from(["{ users { id } }", "{ tags(first: 2) { name } }"]))
        return f'@graphql("{query}").length', MemberChain(DirectiveCall("graphql", (query,)), (Link("length"),))
    if kind == "dotted":
        key = draw(st.sampled_from(["database.host", "mail.sender"]))
        return f'@config.tsk.get("{key}")', DirectiveCall("config.tsk.get", (key,))
    header = draw(st.sampled_from(["x-request-id", "user-agent", "accept"]))
    return f"@request.headers.{header}", DirectiveCall(f"request.headers.{header}", None)


def _arg(value: Any) -> str:
    if value is True:
        return "true"
    if isinstance(value, str):
        return _quote(value)
    return str(value)


@st.composite
def _array_item(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["scalar", "word", "object"]))
    if kind == "word":
        word = draw(_words)
        return word, word
    if kind == "object":
        number = draw(st.integers(0, 9))
        return f"{{ id: {number} }}", {"id": number}
    return draw(_scalar())


# --- members --------------------------------------------------------------------------------------
# A member is (lines, data): lines without the indentation of the object it is in. A line may hold
# line breaks of its own (a heredoc's), whose lines keep their text: they are inside `(...)`, where
# indentation is not checked.


@st.composite
def _members(
    draw: st.DrawFn, depth: int, scope: dict[str, Any] | None = None, outer: dict[str, Any] | None = None
) -> tuple[list[str], dict[str, Any]]:
    """Members of one object; ``outer``: what a bare name reads in the objects around it."""
    scope = {} if scope is None else scope
    outer = {} if outer is None else outer
    lines: list[str] = []
    names = draw(st.lists(_names, min_size=1, max_size=5, unique=True))
    for name in names:
        if name in scope:
            continue
        if draw(st.integers(0, 3)) == 0:
            lines.append(draw(_comments))
        member_lines, value = draw(_member(name, depth, {**outer, **scope}))
        lines.extend(member_lines)
        scope[name] = value
        if depth == 0 and draw(st.integers(0, 5)) == 0:
            # A value alone on its line (top level or a section) is a statement: checked, not data.
            lines.append(draw(st.sampled_from([f"@log({name})", "php(echo $out)", f"{name} == 1 ? 1 : 2"])))
    return lines, scope


_LEAF_KINDS = [
    "scalar",
    "arithmetic",
    "reference",
    "member",
    "concat",
    "template",
    "foreign",
    "runtime",
    "runtime_expression",
    "words",
]
_BLOCK_KINDS = ["indent", "dash", "braces", "newline_array"]


@st.composite
def _member(draw: st.DrawFn, name: str, depth: int, scope: dict[str, Any]) -> tuple[list[str], Any]:
    kinds = _LEAF_KINDS + (_BLOCK_KINDS if depth < 2 else ["dash", "newline_array"])
    kind = draw(st.sampled_from(kinds))
    separator = draw(st.sampled_from([": ", " = "]))
    if kind == "indent":
        unit = draw(st.sampled_from(["  ", "    ", "\t"]))
        body, data = draw(_members(depth + 1, None, scope))
        return [f"{name}:" + _trailing(draw)] + [unit + line for line in body], data
    if kind == "dash":
        unit = draw(st.sampled_from(["  ", "    "]))
        items = draw(st.lists(_array_item(), min_size=1, max_size=4))
        return [f"{name}:"] + [f"{unit}- {text}" + _trailing(draw) for text, _ in items], [v for _, v in items]
    if kind == "braces":
        body, data = draw(_members(depth + 1, None, scope))
        # Members of a brace block may be indented any way: the braces alone say where it ends.
        pad = draw(st.sampled_from(["", " ", "      "]))
        return [f"{name} {{"] + ["  " + pad + line for line in body] + ["}"], data
    if kind == "newline_array":
        items = draw(st.lists(_array_item(), min_size=1, max_size=4))
        comma = draw(st.sampled_from(["", ","]))
        inner = [f"    {text}{comma if i < len(items) - 1 else ''}" for i, (text, _) in enumerate(items)]
        if draw(st.booleans()):
            return [f"{name}{separator}[", *inner, "]"], [v for _, v in items]
        first, *rest = items
        lines = [f"{name}{separator}[{first[0]}"] + [f"    {text}" for text, _ in rest]
        lines[-1] += "]"
        return lines, [v for _, v in items]
    if kind == "words":
        items = draw(st.lists(_array_item().filter(lambda i: not isinstance(i[1], dict)), min_size=1, max_size=4))
        return [f"{name} [" + ", ".join(t for t, _ in items) + "]" + _end(draw)], [v for _, v in items]
    text, value = draw(_leaf(kind, scope))
    return [f"{name}{separator}{text}" + _end(draw)], value


@st.composite
def _leaf(draw: st.DrawFn, kind: str, scope: dict[str, Any]) -> tuple[str, Any]:
    if kind == "arithmetic":
        text, value, _ = draw(_arithmetic(scope))
        return text, value
    if kind == "reference" and scope:
        name = draw(st.sampled_from(sorted(scope)))
        return name, scope[name]
    objects = [k for k, v in scope.items() if type(v) is dict and v and all(_is_name(n) for n in v)]
    if kind == "member" and objects:
        name = draw(st.sampled_from(objects))
        key = draw(st.sampled_from(sorted(scope[name])))
        return f"{name}.{key}", scope[name][key]
    inert = [k for k, v in scope.items() if isinstance(v, ForeignCall | MemberChain)]
    if kind == "runtime_expression" and inert:
        # An expression reading a runtime-only value is one too, kept as its text.
        text = f"{draw(st.sampled_from(inert))} + 1"
        return text, Expression(text)
    if kind == "concat" and _strings_in(scope):
        name = draw(st.sampled_from(_strings_in(scope)))
        suffix = draw(_plain_text)
        return f"{name} + {_quote(suffix)}", scope[name] + suffix
    if kind == "template":
        return draw(_template(scope))
    if kind == "foreign":
        return draw(_foreign())
    if kind == "runtime":
        return draw(_runtime())
    return draw(_scalar())


def _is_name(text: str) -> bool:
    return re.fullmatch(r"[a-z][a-z0-9_]*", text) is not None and text not in _RESERVED


def _end(draw: st.DrawFn) -> str:
    """A member's end: nothing, `;`, a trailing comment, or both."""
    end = draw(st.sampled_from(["", ";"]))
    return end + _trailing(draw)


def _trailing(draw: st.DrawFn) -> str:
    return "  " + draw(_comments) if draw(st.integers(0, 3)) == 0 else ""


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    top_lines, data = draw(_members(0))
    lines = list(top_lines)
    before_sections = dict(data)
    for section in draw(st.lists(_names.filter(lambda n: n not in data), max_size=2, unique=True)):
        body, section_data = draw(_members(0, {}, before_sections))
        lines.append("")
        lines.append(f"[{section}]")
        lines.extend(body)
        data[section] = section_data
    return "\n".join(lines) + "\n", data


# --- the properties -------------------------------------------------------------------------------


def comparable(value: Any) -> Any:
    """Data with an inert expression's layout (spaces, redundant parentheses) taken out."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, Expression):
        return ("expression", re.sub(r"[\s()]", "", value.text))
    return value


# No explain phase: on Python 3.11 it traces every line, and a failure's report then outlasts the test
# timeout (seen in CI: a timeout in place of the failing example).
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)


@SETTINGS
@given(documents())
def test_loads_gives_the_documented_data(document: tuple[str, dict[str, Any]]) -> None:
    source, expected = document
    assert tusklang.loads(source) == expected


@SETTINGS
@given(documents())
def test_loads_of_dumps_gives_back_the_data(document: tuple[str, dict[str, Any]]) -> None:
    source, _ = document
    data = tusklang.loads(source)
    text = tusklang.dumps(data)
    again = tusklang.loads(text)
    assert again == data
    # An expression's names read the same values where `dumps` wrote it (its equality is its text alone).
    assert meaning(again) == meaning(data)
    assert tusklang.dumps(again) == text


def _foreign_texts(text: str) -> list[str]:
    """The source text of every foreign call in ``text``, in order."""
    found: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, nodes.Foreign):
            found.append(str(node.span.text))
        elif isinstance(node, tuple | list):  # NamedTuple nodes and their child tuples
            for child in node:
                visit(child)

    visit(tusklang.parse(text))
    return found


@SETTINGS
@given(documents())
def test_fmt_is_idempotent_keeping_data_comments_and_foreign_code(document: tuple[str, dict[str, Any]]) -> None:
    source, _ = document
    once = format_text(source)
    assert format_text(once) == once
    assert comparable(tusklang.loads(once)) == comparable(tusklang.loads(source))
    assert [c.text for c in tusklang.parse(once).comments] == [c.text for c in tusklang.parse(source).comments]
    foreign = _foreign_texts(source)
    assert _foreign_texts(once) == foreign
    assert all(text in once for text in foreign)


def test_an_inert_expression_copied_by_reference_keeps_its_names() -> None:
    # Found by the property above: `b` copies `a.a.e`, whose `c` at `a.b` would be the top level's `c: 0`.
    # More shapes of it in tests/test_dumps_expressions.py.
    source = "c: 0\n[a]\na {\n  c: php(time())\n  e: c + 1\n}\nb: a.e\n"
    data = tusklang.loads(source)
    again = tusklang.loads(tusklang.dumps(data))
    assert again == data
    assert meaning(again) == meaning(data)
