"""Data to canonical TuskLang text: `key = value`, one member per line, 4-space indentation.

The output parses back to the same data (`loads(dumps(x)) == x`), except the text of an inert
expression that no text with its names can keep its meaning at its place in the output (``_Writer``):
it reads back computing the same, written otherwise. Objects nested in arrays are
written inline (`{ a = 1, b = 2 }`), since an array holds values, not members. So data `loads`
would refuse is refused here, as TSK130: nesting deeper than ``limits.MAX_DEPTH`` (which also stops a
list that contains itself), integers longer than ``limits.MAX_INT_DIGITS`` digits, NaN and
infinities, and lone surrogates (no file can hold one).
"""

from __future__ import annotations

import math
import re
from types import MappingProxyType
from typing import Any

from ..diagnostics import Diagnostic, TuskError
from ..limits import MAX_DEPTH, MAX_INT_DIGITS
from ..values import DirectiveCall, Expression, ForeignCall, Identifier, MemberChain, Name
from .foreign import is_balanced, scan
from .lexer import DIRECTIVE_FUNCTIONS, KEYWORDS
from .strings import quote

_BARE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_KEYWORDS = {"true", "false", "null"}
INDENT = "    "
_INT_CEILING = 10**MAX_INT_DIGITS
_CEILING_BITS = _INT_CEILING.bit_length() - 1  # below this many bits a value cannot reach the ceiling
_SURROGATE = re.compile("[\ud800-\udfff]")
# The longest value written in place of a name in an expression; a longer one goes in a variable.
_INLINE = 40


def dumps(data: dict[str, Any]) -> str:
    if not isinstance(data, dict):
        _fail(f"the top level must be a dict (an object), not {type(data).__name__}")
    lines: list[str] = []
    _Writer().members(data, 0, lines, ())
    text = "\n".join(lines) + ("\n" if lines else "")
    # One scan of the result instead of one per string: a lone surrogate can only come from a str.
    surrogate = _SURROGATE.search(text)
    if surrogate is not None:
        _fail(f"a string holds a lone surrogate (U+{ord(surrogate.group()):04X}), which no file can encode")
    return text


class _Frame:
    """An object being written: what a bare name (a key written so far) or a `$name` means in it.

    ``path``: its data path; None for an object written inline (in an array or an argument).
    ``count``: how many of its keys are written (set before a value that may hold an expression).
    """

    __slots__ = ("count", "data", "path", "positions", "variables")

    def __init__(self, data: dict[str, Any], path: tuple[str, ...] | None) -> None:
        self.data = data
        self.path = path
        self.count = 0
        self.positions: dict[str, int] | None = None
        self.variables: dict[str, Any] = _NO_VARIABLES

    def written(self, key: str) -> bool:
        """Whether ``key`` is a key of this object written before the value being written."""
        if key not in self.data:
            return False
        if self.positions is None:  # only for a name of an expression: most objects never need it
            self.positions = {k: i for i, k in enumerate(self.data)}
        return self.positions[key] < self.count

    def define(self, variable: str, value: Any) -> None:
        if self.variables is _NO_VARIABLES:
            self.variables = {}
        self.variables[variable] = value


# Read-only: a frame's table until it defines a variable (few do).
_NO_VARIABLES: Any = MappingProxyType({})


class _Writer:
    """One `dumps`: the objects open around the value being written, so that an inert expression is
    written where its names mean what they meant where `loads` read it (``Expression.names``).

    A bare name means the nearest earlier key of that name, and the data comes out in another layout
    than the file's (no sections, dotted keys or variables; a reference copied a value to another
    object), so an expression's text may read other keys at its place in the output. Then, in this
    order: a reference to where the same value was written before (`b = a.e`, which reads back the
    same expressions); a variable's definition (`$v = ...`) before the member; a name that cannot keep
    its meaning written as its value, in place if short (`php(t) + 1`), else through a new variable
    (`$c + 1`). The first two keep the text, so the expression reads back equal; the last keeps what
    it computes, written otherwise.
    """

    def __init__(self) -> None:
        self.frames: list[_Frame] = []
        # id of the first expression in a member's value -> (that value, kept alive, and the member's path)
        self.placed: dict[int, tuple[Any, tuple[str, ...]]] = {}
        # the object of the member being written, and the variable definitions to write before it
        self.block: _Frame | None = None
        self.definitions: list[str] = []
        # While a member is written: the first expression in it, and whether one was written otherwise
        # than with its own text where its names mean the same (rewritten, a variable defined, or what
        # its names mean unknown).
        self.first: Expression | None = None
        self.changed = False

    def members(self, data: dict[str, Any], depth: int, lines: list[str], path: tuple[str, ...]) -> None:
        """The members of an object at ``depth`` (the top level is 0, i.e. nesting level 1)."""
        if depth >= MAX_DEPTH:
            _too_deep()
        pad = INDENT * depth
        frame = _Frame(data, path)
        self.frames.append(frame)
        for index, (key, value) in enumerate(data.items()):
            name = format_key(key)
            kind = type(value)
            if kind is str or kind is int or kind is bool or kind is float or value is None:
                lines.append(f"{pad}{name} = {_scalar(value)}")  # most members: nothing to decide
                continue
            frame.count = index
            if isinstance(value, dict) and not _is_range(value):
                if not value:
                    if depth + 1 >= MAX_DEPTH:
                        _too_deep()
                    lines.append(f"{pad}{name} = {{}}")
                else:
                    lines.append(f"{pad}{name} = {{")
                    self.members(value, depth + 1, lines, (*path, key))
                    lines.append(f"{pad}}}")
            else:
                definitions, text = self.member(frame, value, depth + 1, key)
                lines.extend(pad + line for line in definitions)
                lines.append(f"{pad}{name} = {text}")
        self.frames.pop()

    def member(self, block: _Frame, value: Any, depth: int, key: str) -> tuple[list[str], str]:
        """A member's value as text, and the variable definitions to write before it."""
        self.block = block
        definitions: list[str] = []
        self.definitions = definitions
        self.first = None
        self.changed = False
        defined = len(block.variables)
        text = self.value(value, depth)
        first = self.first
        if first is None:  # no expression in it: nothing more to decide
            return definitions, text
        if self.changed:
            # A copy of a value written before (`b = a.e`): the reference reads back the same expressions.
            earlier = self.placed.get(id(first))
            reference = None if earlier is None or not _same(earlier[0], value) else self.reference(earlier[1])
            if reference is not None:
                for variable in list(block.variables)[defined:]:
                    del block.variables[variable]
                return [], reference
        path = block.path
        assert path is not None
        self.placed.setdefault(id(first), (value, (*path, key)))
        return definitions, text

    def value(self, value: Any, depth: int) -> str:
        """``value`` as TuskLang; ``depth`` is the nesting level of the object holding it (0: the top)."""
        if value is None or isinstance(value, str | int | float):
            return _scalar(value)
        if isinstance(value, Expression):
            return self.expression(value, depth)
        if isinstance(value, list | tuple | dict | DirectiveCall | MemberChain) and depth >= MAX_DEPTH:
            _too_deep()
        if isinstance(value, list | tuple):
            items = []
            for item in value:
                if type(item) is str:  # the common item, without a call
                    items.append(quote(item))
                else:
                    items.append(self.value(item, depth + 1))
            return "[" + ", ".join(items) + "]"
        if isinstance(value, dict):
            if not value:
                return "{}"
            # An object in an array or an argument: a scope for the names of expressions in it, that no
            # reference reaches (a path through an array is no chain of names).
            frame = _Frame(value, None)
            self.frames.append(frame)
            parts = []
            for index, (k, v) in enumerate(value.items()):
                frame.count = index
                parts.append(f"{format_key(k)} = {self.value(v, depth + 1)}")
            self.frames.pop()
            return "{ " + ", ".join(parts) + " }"
        if isinstance(value, DirectiveCall):
            if value.args is None:
                return f"@{value.name}"
            return f"@{value.name}(" + ", ".join(self.value(a, depth + 1) for a in value.args) + ")"
        if isinstance(value, MemberChain):
            return _chain(value, depth, self)
        return _scalar(value)

    # --- inert expressions -----------------------------------------------------------------------

    def expression(self, expression: Expression, depth: int) -> str:
        if self.first is None:
            self.first = expression
        names = expression.names
        if names is None:
            self.changed = True  # what its names mean is not known: a reference is safer where there is one
            return _whole(expression.text)
        text = expression.text
        taken = {name.name for name in names if name.variable}
        for name in reversed(names):
            if self.means_same(name):
                continue
            self.changed = True
            if not name.resolved:
                continue  # nothing defined it where it was read: no value to write; a reference may do
            written = None
            if not name.variable and (isinstance(name.value, str | int | float | ForeignCall) or name.value is None):
                written = self.value(name.value, depth)
                if len(written) > _INLINE:
                    written = None  # once, in a variable, rather than at each use
                elif written.startswith("-"):
                    written = f"({written})"  # `2 - -1`, not `2 --1`; `(-1).x`
            if written is None:
                variable = self.variable(name, taken, depth)
                if variable is None:
                    if name.in_string:
                        _fail(f"`{text}` reads `${name.name}` in a string, and no variable can be defined here")
                    written = f"({self.value(name.value, depth)})"
                elif name.in_string:
                    written = "${" + variable + "}"
                else:
                    written = "$" + variable
            text = text[: name.start] + written + text[name.end :]
        return _whole(text)

    def means_same(self, name: Name) -> bool:
        """Whether ``name`` means here what it meant where the expression was read."""
        for frame in reversed(self.frames):
            if name.variable:
                if name.name in frame.variables:
                    return name.resolved and _same(frame.variables[name.name], name.value)
            elif frame.written(name.name):
                return name.resolved and _same(frame.data[name.name], name.value)
        return not name.resolved

    def reference(self, target: tuple[str, ...]) -> str | None:
        """`a.e`: a reference from here to the member at ``target``, if one reaches it."""
        for index in range(len(self.frames) - 1, -1, -1):
            frame = self.frames[index]
            path = frame.path
            if path is None or len(path) >= len(target) or target[: len(path)] != path:
                continue
            chain = target[len(path) :]
            root = chain[0]
            if not _NAME.match(root) or root in _KEYWORDS or root in DIRECTIVE_FUNCTIONS or not frame.written(root):
                return None
            if any(inner.written(root) for inner in self.frames[index + 1 :]):
                return None  # another key of that name is nearer
            if not all(_BARE_KEY.match(link) for link in chain[1:]):
                return None
            return ".".join(chain)
        return None

    def variable(self, name: Name, taken: set[str], depth: int) -> str | None:
        """A variable of the member's object holding ``name``'s value, defined before the member if new.

        A variable keeps its name where its object defines no other `$name` (the text stays as it was);
        else, and for a key, a name no open object defines and the expression does not read. None when
        no member is being written (``format_value``).
        """
        block = self.block
        if block is None:
            return None
        for variable, value in block.variables.items():
            if value is name.value:
                return variable
        base = name.name if name.variable else name.name.replace("-", "_")
        candidate, number = base, 1
        while candidate in block.variables or (
            not (name.variable and candidate == base)
            and (candidate in taken or any(candidate in frame.variables for frame in self.frames))
        ):
            number += 1
            candidate = f"{base}_{number}"
        frames = self.frames
        # Written before the member, where the member's object is the innermost.
        self.frames = frames[: frames.index(block) + 1]
        try:
            text = self.value(name.value, depth)
        finally:
            self.frames = frames
        block.define(candidate, name.value)
        self.definitions.append(f"${candidate} = {text}")
        return candidate


def _whole(text: str) -> str:
    # An expression's text is a whole value; one that spans lines is kept in parentheses, inside which
    # a line break is only whitespace. Text already in one pair of them keeps it (else every
    # loads/dumps round added a pair).
    if "\n" not in text or (text.startswith("(") and scan(text, 1) == len(text) - 1):
        return text
    return f"({text})"


def _same(left: Any, right: Any) -> bool:
    """Whether two values mean the same: equal, booleans apart from numbers, expressions by their names too."""
    if left is right:
        return True
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, Expression):
        if left != right:
            return False
        if left.names is None or right.names is None:
            return left.names is right.names
        return len(left.names) == len(right.names) and all(
            a.name == b.name and a.variable == b.variable and a.resolved == b.resolved and _same(a.value, b.value)
            for a, b in zip(left.names, right.names, strict=True)
        )
    return bool(left == right)


def _too_deep() -> None:
    _fail(f"the data is nested more than {MAX_DEPTH} levels deep (or contains itself)")


def format_key(key: Any) -> str:
    if not isinstance(key, str):
        _fail(f"keys must be strings, not {type(key).__name__} ({key!r})")
    if _BARE_KEY.match(key) and key not in _KEYWORDS:
        return key
    return quote(key)


def _is_range(value: dict[str, Any]) -> bool:
    # {"min": a, "max": b} is written as an object, never as `a-b`, so it reads back the same
    # whatever the numbers; ranges are only a way to write, not a type of their own.
    return False


def format_value(value: Any, depth: int = 0) -> str:
    """``value`` as TuskLang; ``depth`` is the nesting level of the object holding it (0: the top)."""
    return _Writer().value(value, depth)


def _scalar(value: Any) -> str:
    """A value that holds no other: a literal, an identifier argument, foreign code."""
    if type(value) is str:
        return quote(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if value.bit_length() > _CEILING_BITS and abs(value) >= _INT_CEILING:  # cheap test first
            _fail(
                f"an integer with more than {MAX_INT_DIGITS:,} digits cannot be written (TuskLang refuses to read it)"
            )
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            _fail(f"{value} cannot be written in TuskLang")
        text = repr(value)
        return text if any(c in text for c in ".e") else text + ".0"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Identifier):
        return value.name
    if isinstance(value, ForeignCall):
        if not _NAME.match(value.name) or value.name in DIRECTIVE_FUNCTIONS or value.name in KEYWORDS:
            _fail(
                f"`{value.name}(...)` cannot be written as foreign code: its name must be a name that is no directive"
            )
        if not is_balanced(value.code):
            _fail(f"the code of `{value.name}(...)` does not balance its parentheses, so it cannot be written back")
        return f"{value.name}({value.code})"
    _fail(f"cannot write a {type(value).__name__} value in TuskLang: {value!r}")
    raise AssertionError  # pragma: no cover


def _chain(chain: MemberChain, depth: int, writer: _Writer) -> str:
    target = chain.target
    if (isinstance(target, DirectiveCall) and target.args is not None) or isinstance(target, ForeignCall):
        text = writer.value(target, depth)
    else:  # a bare directive would take the links into its name (`@request.method`): parenthesize
        text = f"({writer.value(target, depth)})"
    for index, link in enumerate(chain.links):
        if not _BARE_KEY.match(link.name):
            _fail(f"`.{link.name}` cannot be written: a member's name is letters, digits, `_` and `-`")
        text += f".{link.name}"
        if link.args is not None:
            # Each link counts a level, as the parser counts it (docs/syntax.md, Limits).
            text += "(" + ", ".join(writer.value(a, depth + index + 1) for a in link.args) + ")"
    return text


def _fail(message: str) -> None:
    raise TuskError([Diagnostic("TSK130", message)])
