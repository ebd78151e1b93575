"""Source text to AST: our lexer's tokens through Lark's LALR(1) tables for grammar/tusk.lark.

Lark compiles the grammar to LALR(1) tables once; the tables are kept as plain data in the user's cache
directory (keyed by the grammar's hash), so a later process loads them without importing Lark at all
(start-up of `tusk check`, issue 19). We feed tokens to Lark's parser state directly
and give it one callback per grammar rule, so a reduction builds its AST node in a single call
(no parse tree, no wrapper chain); positions come from the tokens, which carry offsets.
"""

from __future__ import annotations

import functools
import marshal
import os
import sys
import threading
import zlib
from collections.abc import Callable
from typing import Any

from .._gc import gc_paused
from ..cache import cache_folder
from ..diagnostics import SPAN_SHIFT, Diagnostic, Related, Span, TuskError, span_class
from ..source import SourceFile
from . import nodes
from .checks import check_document
from .lexer import VALUE_EXAMPLES, Tok, tokenize
from .precedence import fold_operators
from .recovery import first_wins, is_syntax_error, recover


def grammar_paths() -> list[str]:
    """Where the grammar may be, in order: shipped in the wheel, or grammar/ beside the package in a checkout."""
    package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    return [os.path.join(package, "_grammar", "tusk.lark"), os.path.join(package, "..", "grammar", "tusk.lark")]


def grammar_text() -> str:
    """The grammar shipped in the wheel, or grammar/ beside the package in a checkout."""
    # Plain files first: importlib.resources and pathlib cost more to import than the whole read (start-up).
    for candidate in grammar_paths():
        try:
            with open(candidate, encoding="utf-8") as file:
                return file.read()
        except FileNotFoundError:
            continue
    from importlib import resources  # an install that is not plain files (a zip)

    return resources.files("tusklang").joinpath("_grammar/tusk.lark").read_text(encoding="utf-8")


# The LALR tables as plain data (marshal-able): (start state, end state, rule shapes with their
# sizes, {state: {symbol: (is_shift, next state or rule index)}}).
_LalrData = tuple[int, int, list[tuple[tuple[str, tuple[str, ...]], int]], dict[int, dict[str, tuple[bool, int]]]]
_CACHE_FORMAT = b"tusklang-lalr-1"


def _lark_tables(grammar: str) -> _LalrData:
    """Compile the grammar with Lark (about 0.1 s, plus 30 ms importing Lark) and keep only plain data."""
    from lark import Lark
    from lark.lexer import Lexer
    from lark.parsers.lalr_analysis import Shift

    class _NoLexer(Lexer):
        """Lark insists on a lexer; ours runs outside Lark, so this one is never used."""

        def __init__(self, conf: Any) -> None:
            pass

        def lex(self, lexer_state: Any, parser_state: Any) -> Any:  # pragma: no cover
            raise NotImplementedError

    lark = Lark(grammar, parser="lalr", lexer=_NoLexer, keep_all_tokens=True, strict=True)
    table = lark.parser.parser.parser.parse_table
    index = {rule: i for i, rule in enumerate(lark.rules)}
    rules = [((str(r.origin.name), tuple(str(sym.name) for sym in r.expansion)), len(r.expansion)) for r in lark.rules]
    states = {
        int(state): {
            str(symbol): (action is Shift, arg if action is Shift else index[arg])
            for symbol, (action, arg) in actions.items()
        }
        for state, actions in table.states.items()
    }
    return table.start_states["start"], table.end_states["start"], rules, states


def _cache_path(grammar: str) -> str | None:
    folder = cache_folder()
    if not folder:
        return None
    name = f"lalr-{zlib.crc32(grammar.encode()):08x}-py{sys.version_info[0]}{sys.version_info[1]}.marshal"
    return os.path.join(folder, name)


def _lalr_data() -> _LalrData:
    """The grammar's tables: from the cache when it holds this grammar's, else from Lark (then cached).

    The cache is best effort: any problem reading or writing it (no home, read-only, a corrupt or
    foreign file) means compiling with Lark as before. The file starts with the whole grammar text, so
    tables are only ever used for the very grammar they were compiled from; marshal holds plain data
    only (loading it runs nothing). Set TUSK_NO_CACHE to neither read nor write it.
    """
    grammar = grammar_text()
    path = _cache_path(grammar)
    header = _CACHE_FORMAT + b"\n" + grammar.encode() + b"\0"
    if path is not None:
        try:
            with open(path, "rb") as file:
                raw = file.read()
            if raw.startswith(header):
                data = marshal.loads(raw[len(header) :])
                if type(data) is tuple and len(data) == 4:
                    return data  # type: ignore[no-any-return]
        except (OSError, ValueError, EOFError, TypeError):
            pass
    data = _lark_tables(grammar)
    if path is not None:
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            partial = f"{path}.{os.getpid()}.tmp"
            with open(partial, "wb") as file:
                file.write(header + marshal.dumps(data))
            os.replace(partial, path)  # two processes writing at once: each rename is whole
        except OSError:
            pass
    return data


_SHIFT = True  # a shift action in _Tables.states (a reduce action is its (size, callback, origin) tuple)


class _Tables:
    """Lark's LALR tables for grammar/tusk.lark, keyed by plain strings, with our callbacks."""

    def __init__(self) -> None:
        self.start_state, self.end_state, rule_shapes, table = _lalr_data()
        self.shift = _SHIFT
        # Plain str keys make each lookup a C compare (Lark's Token keys have a Python-level __eq__). Each
        # reduce action carries (size, callback, origin), so the loop never looks a rule up.
        rules: list[tuple[int, Callable[[list[Any]], Any] | None, str]] = []
        for shape, size in rule_shapes:
            callback: Callable[[list[Any]], Any] | None = _callback(shape)
            if callback is _identity or (shape[0] == "value" and len(shape[1]) == 1):
                callback = None  # pass the single child through without a call
            rules.append((size, callback, shape[0]))
        self.states: dict[int, dict[str, tuple[Any, Any]]] = {
            state: {
                symbol: (_SHIFT, arg) if is_shift else (False, rules[arg])
                for symbol, (is_shift, arg) in actions.items()
            }
            for state, actions in table.items()
        }


@functools.cache
def _tables() -> _Tables:
    return _Tables()


def parse(text: str, path: str | None = None) -> nodes.Document:
    """Parse TuskLang text into a Document; raise TuskError with every diagnostic found.

    After a syntax error the parse goes on past the broken line to report the next ones too
    (``recovery.py``); a document with syntax errors is never returned.
    """
    source = SourceFile(text, path)
    try:
        document, problems = _parse_source(source)
    except TuskError as exc:
        first = exc.diagnostics[0] if len(exc.diagnostics) == 1 else None
        if first is None or not is_syntax_error(first):
            raise
        raise TuskError(recover(source, first, _parse_source, want_document=False)[0]) from None
    if problems:
        raise TuskError(problems)
    return document


def parse_tolerant(text: str, path: str | None = None) -> tuple[nodes.Document | None, list[Diagnostic]]:
    """Every diagnostic ``parse`` would raise (same codes, same order), and the best Document recoverable.

    For editors, which hold a broken file most of the time. A duplicate key keeps the document (the
    first definition wins; the later one is left out); a broken line is blanked and the rest kept; an
    unclosed `{`/`[`/`(` is closed where the indentation says its block ended. The Document's spans
    all point into ``text``. None only when nothing could be recovered within the time budget.
    A clean file costs what ``parse`` costs; only a broken one pays for the repairs.
    """
    source = SourceFile(text, path)
    try:
        document, problems = _parse_source(source)
    except TuskError as exc:
        first = exc.diagnostics[0] if len(exc.diagnostics) == 1 else None
        if first is None or not is_syntax_error(first):
            # What parse raises as it is; the document is still worth recovering.
            return recover(source, None, _parse_source, want_document=True)[1], exc.diagnostics
        found, recovered = recover(source, first, _parse_source, want_document=True)
        return recovered, found
    if problems:
        return first_wins(document, problems), problems
    return document, []


def _parse_source(
    source: SourceFile, text: str | None = None, tolerant: bool = False
) -> tuple[nodes.Document, list[Diagnostic]]:
    """The Document of ``source`` and the problems ``check_document`` found in it; a syntax error raises.

    ``text``/``tolerant``: recovery's repaired text and bracket repairs (see ``lexer.tokenize``).
    """
    with gc_paused():  # hundreds of thousands of small acyclic tuples: see tusklang._gc
        tokens, comments = tokenize(source, text, tolerant)
        end = len(source.text)
        tokens.append(Tok("$END", "", end, end))
        _CURRENT.source = source
        _CURRENT.span_type = span_class(source)
        error = _run_lalr(tokens, _tables())
    if error is not None:
        tokens.pop()
        _CURRENT.result = None
        raise TuskError([_syntax_error(error[0], error[1], source, tokens)])
    members, sections = _CURRENT.result
    _CURRENT.result = None  # the module must not keep the last document alive
    document = nodes.Document(members, sections, tuple(comments), source)
    return document, check_document(document)


def _run_lalr(tokens: list[Tok], tables: _Tables) -> tuple[Tok, set[str]] | None:
    """Lark's LALR(1) algorithm (lark/parsers/lalr_parser_state.py) over Lark's tables.

    The loop is Lark's own feed_token, kept in one frame for the whole file instead of one call
    per token, and with single-child pass-through rules (a plain value inside `value`) reduced
    without a call. Returns (token, expected terminals) on a syntax error.
    """
    states = tables.states
    shift = tables.shift
    end_state = tables.end_state
    state_stack = [tables.start_state]
    value_stack: list[Any] = []
    for tok in tokens:
        ttype = tok.type
        while True:
            try:
                action, arg = states[state_stack[-1]][ttype]
            except KeyError:
                expected = {s for s in states[state_stack[-1]] if s.isupper()}
                return tok, expected
            if action is shift:
                state_stack.append(arg)
                value_stack.append(tok)
                break
            size, callback, origin = arg
            if size == 1:
                value = value_stack[-1] if callback is None else callback(value_stack[-1:])
                state_stack.pop()
                value_stack.pop()
            elif size:
                children = value_stack[-size:]
                del state_stack[-size:]
                del value_stack[-size:]
                value = callback(children)  # type: ignore[misc]  # only one-child rules pass through (None)
            else:
                value = callback([])  # type: ignore[misc]
            _, goto = states[state_stack[-1]][origin]
            state_stack.append(goto)
            value_stack.append(value)
            if goto == end_state and ttype == "$END":
                _CURRENT.result = value
                return None
    raise AssertionError("the LALR loop ended without accepting")  # pragma: no cover


class _Current(threading.local):
    """The source being parsed, read by the callbacks: one per thread, so that two threads (a language
    server's index and linter, say) may parse at once without taking each other's spans."""

    source: SourceFile
    span_type: Callable[[int], Span]
    result: Any


_CURRENT = _Current()


_new = tuple.__new__


def _sp(start: int, end: int) -> Span:
    return _CURRENT.span_type(start << SPAN_SHIFT | end)


def _start(node: Any) -> int:
    return node.start if isinstance(node, Tok) else node.span.start


def _end(node: Any) -> int:
    return node.end if isinstance(node, Tok) else node.span.end


def _callback(shape: tuple[str, tuple[str, ...]]) -> Callable[[list[Any]], Any]:
    origin, expansion = shape
    if origin.startswith("__") and ("_star_" in origin or "_plus_" in origin):
        # A SIMPLE token's member is a list of Members (a run of `name = literal` lines): taken whole.
        if len(expansion) == 1:
            return lambda c: c[0] if type(c[0]) is list else [c[0]]

        def extend(c: list[Any]) -> list[Any]:
            item = c[1]
            if type(item) is list:
                c[0].extend(item)
            else:
                c[0].append(item)
            return c[0]

        return extend
    if origin == "operand" and expansion[0] == "LBRACE":
        return _object
    if origin == "operand" and expansion[0] == "INDENT":
        return _indent_block
    if (origin == "operand" or origin == "_chain_head") and expansion[0] == "DIRECTIVE_CALL":
        return _directive_call
    handler = _HANDLERS.get(shape) or _HANDLERS.get((origin, None))
    if handler is None:  # pragma: no cover - a grammar edit without a handler
        raise RuntimeError(f"no AST builder for rule {origin}: {' '.join(expansion)}")
    return handler


def _start_rule(c: list[Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    members: list[Any] = []
    sections: list[Any] = []
    for child in c:
        if child and isinstance(child[0], nodes.Section):
            sections = child
        else:
            members = child
    return tuple(members), tuple(sections)


def _section(c: list[Any]) -> nodes.Section:
    tok = c[0]
    members = tuple(c[1]) if len(c) > 1 else ()
    end = members[-1].span.end if members else tok.end
    return nodes.Section(tok.value, members, _sp(tok.start, end))


def _member_key(c: list[Any]) -> nodes.Member:
    # tuple.__new__ directly: a NamedTuple's own __new__ is a Python-level call doing just this. The
    # member runs from its key to its value's end: Member.span makes that span when asked.
    return _new(nodes.Member, (c[0].value, c[1], None))


def _member_angle(c: list[Any]) -> nodes.Member:
    tok = c[0]
    members = tuple(c[1]) if len(c) == 3 else ()
    end = c[-1].end
    obj = nodes.Object(members, _sp(tok.start, end), "angle")
    return nodes.Member(tok.value, obj, nodes.member_span(tok.value, obj, _sp(tok.start, end)))


def _vardef(c: list[Any]) -> nodes.VarDef:
    name, name_span = c[0].value
    value = c[1]
    return nodes.VarDef(name, value, name_span, _sp(c[0].start, value.span.end))


def _value(c: list[Any]) -> Any:
    if len(c) == 1:
        return c[0]
    if len(c) == 2:
        return fold_operators(c[0], c[1], _CURRENT.source)
    if len(c) == 5:
        condition = c[0]
    else:
        condition = fold_operators(c[0], c[1], _CURRENT.source)
    then, otherwise = c[-3], c[-1]
    return nodes.Ternary(condition, then, otherwise, _sp(condition.span.start, otherwise.span.end))


def _binop_first(c: list[Any]) -> list[Any]:
    return [c[0], c[1]]


def _binop_more(c: list[Any]) -> list[Any]:
    c[0].append(c[1])
    c[0].append(c[2])
    return c[0]


def _token_value(c: list[Any]) -> Any:
    return c[0].value


def _not(c: list[Any]) -> nodes.Unary:
    return nodes.Unary("!", c[1], _sp(c[0].start, c[1].span.end))


def _paren(c: list[Any]) -> Any:
    # The node keeps its type; its span grows to cover the parentheses, so every span (and an
    # inert Expression's source text) includes them.
    return c[1]._replace(span=_sp(c[0].start, c[2].end))


def _array(c: list[Any]) -> nodes.Array:
    items = tuple(_word(item) for item in c[1]) if len(c) > 2 else ()
    return nodes.Array(items, _sp(c[0].start, c[-1].end))


def _object(c: list[Any]) -> nodes.Object:
    members = tuple(c[1]) if len(c) == 3 else ()
    return _new(nodes.Object, (members, _CURRENT.span_type(c[0].start << SPAN_SHIFT | c[-1].end), "brace"))


def _directive_bare(c: list[Any]) -> nodes.Directive:
    name, name_span = c[0].value
    return nodes.Directive(name, None, name_span, _sp(c[0].start, c[0].end))


def _directive_call(c: list[Any]) -> nodes.Directive:
    name, name_span = c[0].value
    args = tuple(_bare(arg) for arg in c[1]) if len(c) > 2 else ()
    return nodes.Directive(name, args, name_span, _sp(c[0].start, c[-1].end))


def _bare(arg: Any) -> Any:
    """A directive argument that is a name alone is an identifier (`@env(REDIS_URL)`), not a reference."""
    if type(arg) is nodes.Ref and arg.span.end - arg.span.start == len(arg.name):
        return nodes.Bare(arg.name, arg.span)
    return arg


def _word(item: Any) -> Any:
    """An array item that is a name alone is that word as text (`[debug, info]`, `- logging`)."""
    if type(item) is nodes.Ref and item.span.end - item.span.start == len(item.name):
        return nodes.Word(item.name, item.span)
    return item


def _ref(c: list[Any]) -> nodes.Ref:
    tok = c[0]
    return nodes.Ref(tok.value, _sp(tok.start, tok.end))


def _statement(c: list[Any]) -> nodes.Statement:
    value = c[1]
    return nodes.Statement(value, _sp(c[0].start, value.span.end))


def _indent_block(c: list[Any]) -> nodes.Object:
    members = tuple(c[1]) if len(c) == 3 else ()
    end = members[-1].span.end if members else c[0].end
    return nodes.Object(members, _sp(c[0].start, end), "indent")


def _dash_list(c: list[Any]) -> nodes.Array:
    items = c[1]
    return nodes.Array(tuple(items), _sp(c[0].start, items[-1].span.end))


def _dash_first(c: list[Any]) -> list[Any]:
    return [_word(c[1])]


def _dash_more(c: list[Any]) -> list[Any]:
    c[0].append(_word(c[2]))
    return c[0]


def _template_first(c: list[Any]) -> list[Any]:
    return [c[0], c[1]]


def _template_more(c: list[Any]) -> list[Any]:
    c[0].append(c[1])
    c[0].append(c[2])
    return c[0]


def _template(c: list[Any]) -> nodes.Template:
    pieces, tail = c[0], c[1]
    parts: list[Any] = []
    for piece in (*pieces, tail):
        if isinstance(piece, Tok):
            if piece.value:
                parts.append(piece.value)
        else:
            parts.append(piece)
    return nodes.Template(tuple(parts), _sp(pieces[0].start, tail.end))


def _link(tok: Tok, rest: tuple[tuple[Any, ...] | None, Tok | None]) -> nodes.Link:
    name, name_span = tok.value
    args, closing = rest
    end = closing.end if closing is not None else tok.end
    return nodes.Link(name, args, name_span, _sp(tok.start, end))


def _chain_member(c: list[Any]) -> nodes.Chain:
    target = c[0]
    link = _link(c[1], (None, None))
    if type(target) is nodes.Chain:
        return nodes.Chain(target.target, (*target.links, link), _sp(target.span.start, link.span.end))
    return nodes.Chain(target, (link,), _sp(target.span.start, link.span.end))


def _chain_method(c: list[Any]) -> nodes.Chain:
    target = c[0]
    link = _link(c[1], c[2])
    if type(target) is nodes.Chain:
        return nodes.Chain(target.target, (*target.links, link), _sp(target.span.start, link.span.end))
    return nodes.Chain(target, (link,), _sp(target.span.start, link.span.end))


def _call_rest(c: list[Any]) -> tuple[tuple[Any, ...], Tok]:
    if len(c) == 1:
        return (), c[0]
    return tuple(c[0]), c[-1]


def _list_first(c: list[Any]) -> list[Any]:
    return [c[0]]


def _list_more(c: list[Any]) -> list[Any]:
    c[0].append(c[2])
    return c[0]


def _identity(c: list[Any]) -> Any:
    return c[0]


_HANDLERS: dict[tuple[str, Any], Callable[[list[Any]], Any]] = {
    ("start", None): _start_rule,
    ("section", None): _section,
    ("member", ("SIMPLE",)): _token_value,
    ("member", ("KEY", "value")): _member_key,
    ("member", ("KEY", "value", "COMMA")): _member_key,
    ("member", ("VARDEF", "value")): _vardef,
    ("member", ("VARDEF", "value", "COMMA")): _vardef,
    ("member", ("STMT", "value")): _statement,
    ("member", None): _member_angle,
    ("value", None): _value,
    ("_binop_tail", ("BINOP", "operand")): _binop_first,
    ("_binop_tail", ("_binop_tail", "BINOP", "operand")): _binop_more,
    ("operand", ("BANG", "operand")): _not,
    ("operand", ("LPAR", "value", "RPAR")): _paren,
    ("operand", ("LSQB", "RSQB")): _array,
    ("operand", ("LSQB", "_items", "RSQB")): _array,
    ("operand", ("LSQB", "_items", "COMMA", "RSQB")): _array,
    ("operand", ("LBRACE", "RBRACE")): _object,
    ("operand", ("DIRECTIVE",)): _directive_bare,
    ("operand", ("NAME",)): _ref,
    ("operand", ("chain",)): _identity,
    ("operand", ("INDENT", "DEDENT")): _indent_block,
    ("operand", ("LIST", "_dash_items", "DEDENT")): _dash_list,
    ("operand", ("_template", "TEMPLATE_TAIL")): _template,
    ("operand", None): _token_value,
    ("chain", ("_chain_head", "MEMBER")): _chain_member,
    ("chain", ("chain", "MEMBER")): _chain_member,
    ("chain", ("_chain_head", "METHOD", "_call_rest")): _chain_method,
    ("chain", ("chain", "METHOD", "_call_rest")): _chain_method,
    ("_chain_head", ("NAME",)): _ref,
    ("_chain_head", ("LPAR", "value", "RPAR")): _paren,
    ("_chain_head", None): _token_value,
    ("_call_rest", None): _call_rest,
    ("_template", ("TEMPLATE_HEAD", "value")): _template_first,
    ("_template", ("_template", "TEMPLATE_MIDDLE", "value")): _template_more,
    ("_dash_items", ("DASH", "value")): _dash_first,
    ("_dash_items", ("_dash_items", "DASH", "value")): _dash_more,
    ("_items", ("value",)): _list_first,
    ("_items", ("_items", "COMMA", "value")): _list_more,
    ("_args", ("_arg",)): _list_first,
    ("_args", ("_args", "COMMA", "_arg")): _list_more,
    ("_arg", ("value",)): _identity,
}


# --- syntax errors in plain words ------------------------------------------------------------

_DESCRIBE = {
    "KEY": "a key",
    "SIMPLE": "a key",
    "ANGLE": "a key",
    "VARDEF": "a variable definition",
    "SECTION": "a `[section]` header",
    "ANGLE_END": "`<`",
    "STRING": "a string",
    "ARRAY": "an array",
    "NUMBER": "a number",
    "RANGE": "a range",
    "TRUE": "`true`",
    "FALSE": "`false`",
    "NULL": "`null`",
    "VARIABLE": "a variable",
    "NAME": "a name",
    "DIRECTIVE": "a directive",
    "DIRECTIVE_CALL": "a directive",
    "BINOP": "an operator",
    "BANG": "`!`",
    "QUESTION": "`?`",
    "COLON": "`:`",
    "COMMA": "`,`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "STMT": "a statement",
    "FOREIGN": "a call",
    "MEMBER": "a member (`.name`)",
    "METHOD": "a method call",
    "INDENT": "an indented block",
    "LIST": "an indented list",
    "DEDENT": "the end of an indented block",
    "DASH": "a `- item`",
    "TEMPLATE_HEAD": "a template string",
    "TEMPLATE_MIDDLE": "`}`",
    "TEMPLATE_TAIL": "`}`",
    "$END": "the end of the file",
}
_VALUE_STARTS = {"STRING", "ARRAY", "NUMBER", "LSQB", "LBRACE", "DIRECTIVE_CALL", "VARIABLE", "TRUE", "NAME"}


def _found(tok: Tok) -> str:
    if tok.type == "$END":
        return "the end of the file"
    if tok.type in ("KEY", "ANGLE"):
        return f"key `{tok.value.dotted}`"
    if tok.type == "SIMPLE":
        return f"key `{tok.value[0].key.dotted}`"
    if tok.type == "NAME":
        return f"`{tok.value}`"
    if tok.type in ("BINOP",) or (tok.type in _DESCRIBE and _DESCRIBE[tok.type].startswith("`")):
        return f"`{tok.value}`" if isinstance(tok.value, str) else _DESCRIBE[tok.type]
    return _DESCRIBE.get(tok.type, tok.type)


def _innermost_open(tokens: list[Tok], index: int) -> str | None:
    """The type of the innermost bracket still open before ``tokens[index]``."""
    depth = 0
    for i in range(index - 1, -1, -1):
        t = tokens[i].type
        if t in ("RPAR", "RSQB", "RBRACE", "ANGLE_END", "DEDENT"):
            depth += 1
        elif t in ("LPAR", "LSQB", "LBRACE", "DIRECTIVE_CALL", "METHOD", "ANGLE", "INDENT", "LIST"):
            if depth == 0:
                return t
            depth -= 1
    return None


def _syntax_error(tok: Tok, expected: set[str], source: SourceFile, tokens: list[Tok]) -> Diagnostic:
    index = next((i for i, t in enumerate(tokens) if t is tok), len(tokens))
    prev = tokens[index - 1] if index > 0 else None
    start, end = tok.start, max(tok.end, tok.start + 1)
    if tok.type == "$END":
        # Point just after the last token rather than at an empty last line.
        start = end = prev.end if prev is not None else len(source.text)
    span = Span(source, start, end)
    opener = _innermost_open(tokens, index)
    found = _found(tok)
    related: tuple[Related, ...] = ()
    hint = None
    if _VALUE_STARTS <= expected and prev is not None and prev.type in ("KEY", "VARDEF"):
        sep = source.text[prev.start : prev.end].rstrip()[-1:]
        message = f"expected a value after `{sep}`, found {found}"
        hint = VALUE_EXAMPLES
        if tok.type in ("KEY", "SIMPLE", "RBRACE", "$END", "ANGLE_END"):
            span = Span(source, prev.end - 1, prev.end)
        if tok.type == "NAME":
            hint = f'a bare word is not a value; quote it: `"{tok.value}"`'
    elif _VALUE_STARTS <= expected:
        after = f" after `{source.text[prev.start : prev.end]}`" if prev is not None else ""
        message = f"expected a value{after}, found {found}"
    elif opener == "LSQB" and "RSQB" in expected:
        message = f"expected `,` or `]` in the array, found {found}"
        hint = "separate array items with `,`"
    elif opener == "DIRECTIVE_CALL" and "RPAR" in expected and "COMMA" in expected:
        message = f"expected `,` or `)` in the directive's arguments, found {found}"
    elif opener == "LPAR" and "RPAR" in expected:
        message = f"expected `)`, found {found}"
    elif tok.type == "NAME" and "KEY" in expected:
        message = f"expected `=` or `:` after the key `{tok.value}`"
        nxt = tokens[index + 1] if index + 1 < len(tokens) else None
        # The value written after the name on its line, if any (`port 80`); never the next member.
        same_line = nxt is not None and "\n" not in source.text[tok.end : nxt.start]
        if same_line and nxt is not None and nxt.type not in ("KEY", "SIMPLE", "ANGLE", "VARDEF", "SECTION", "$END"):
            shown = source.text[nxt.start : nxt.end]
        else:
            shown = "value"
        hint = f"write `{tok.value} = {shown}`"
    elif "COLON" in expected and expected <= {"COLON", "BINOP", "QUESTION"}:
        message = f"expected `:` in the conditional `? :`, found {found}"
    elif "RBRACE" in expected or "KEY" in expected:
        if tok.type in _VALUE_STARTS or tok.type in ("NAME", "NUMBER", "STRING", "FALSE", "NULL", "RANGE"):
            message = f"expected a key, found {found}"
            hint = "a member is written `key = value`"
            if tok.type in ("DIRECTIVE_CALL", "DIRECTIVE", "FOREIGN") and "RBRACE" in expected:
                hint += "; a value alone on its line (a statement) stands only at the top level or in a section"
        else:
            message = f"unexpected {found}; expected a member (`key = value`)"
    else:
        names = sorted({_DESCRIBE.get(e, e) for e in expected})
        message = f"unexpected {found}; expected " + (
            ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
        )
    return Diagnostic("TSK100", message, span, hint=hint, related=related)
