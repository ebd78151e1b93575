"""AST to data: variables, `${}` interpolation, expressions, and directives through a hook.

One walker serves `loads` (the hook leaves directives inert, expressions that need them become
``Expression`` values) and `resolve` (the hook runs them). Every problem is collected with its
span, so one run reports all of them.

Variable scoping (docs/syntax.md): `$name = value` is visible to the members after it in the same
object and in every object nested there; an inner definition shadows an outer one. Using a
variable before the line that defines it is an error: files are read top to bottom, as every
TuskLang SDK reads them, and hoisting would make `$a = $b`, `$b = $a` legal nonsense.

Secrets (docs/directives.md, "@env and secrets"): the interpreter records which data paths depend on
a secret directive (``secret_directives``, i.e. `@env`), as ``taint``: path -> the spans of the
directive calls. A value keeps its structure through a variable or a whole-value `@file`
(`a = $obj` taints `a.password`, not all of `a`); any other expression (interpolation, `+`,
comparisons, `? :`, `!`) taints its whole result with everything it read. The compiler decides what
may reach a snapshot (tusklang/compiler/secrets.py).

Depth: evaluation uses at most three Python frames per level of the syntax tree, and none per link of
a left-associative chain (`1 + 1 + ... + 1`), a run of `!` or a `? :` chain: those are loops. The
parser bounds nesting (tusklang.limits.MAX_DEPTH), so evaluation cannot exhaust the stack.

Size: the parser bounds what a file writes, but variables, directives and `+` could build more: a
value nested deeper than MAX_DEPTH by using a deep variable (or @file, @query value) deep inside
another (TSK211), or one that multiplies (`$b = [$a, $a]`, `$c = [$b, $b]`, ...: 2^n values from n
lines; `$s = $s0 + $s0` doubling text) (TSK212). Each variable's depth and size are measured once,
when it is defined; every use, `+` and interpolation spends from one budget per run
(MAX_EXPANSION), so the data stays walkable and in proportion to the file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any

from .diagnostics import Diagnostic, Related, Span
from .limits import MAX_DEPTH
from .suggest import MAX_CANDIDATES, did_you_mean
from .syntax import nodes
from .values import DirectiveCall, Expression, Identifier

DirectiveHook = Callable[[nodes.Directive, list[Any], "Interpreter"], Any]
DataPath = tuple[str | int, ...]
# data path (relative to a value) -> spans of the secret directive calls it depends on
TaintMap = dict[DataPath, set[Span]]
# Names examined for "did you mean" over one run (about 40 lookups of MAX_CANDIDATES names each).
SUGGESTION_BUDGET = 20_000
# A computed integer may pass the literals' MAX_INT_DIGITS (a sum of two such literals still converts),
# but not CPython's limit for converting an int to text: every later stage has to print it.
INT_DIGITS_COMPUTED = 4_300
_INT_BOUND = 10**INT_DIGITS_COMPUTED
# Values and characters one run may build from variables, `+` and interpolation (a value counts 1,
# a string its length): far above any real file, which writes its data out rather than multiplying it.
MAX_EXPANSION = 10_000_000

_MISSING = object()


class _Inert(Exception):
    """Raised inside an expression that depends on a directive that was not run."""


def _inert_hook(node: nodes.Directive, args: list[Any], interp: Interpreter) -> Any:
    return DirectiveCall(node.name, None if node.args is None else tuple(args), node.span.location())


class Interpreter:
    def __init__(
        self,
        document: nodes.Document,
        hook: DirectiveHook | None = None,
        record_spans: bool = False,
        secret_directives: Collection[str] = (),
    ):
        self.document = document
        self.hook = hook or _inert_hook
        self.diagnostics: list[Diagnostic] = []
        self.record_spans = record_spans
        # path -> span of the value (and of the key, for objects' members), for later stages.
        self.spans: dict[tuple[str | int, ...], Span] = {}
        self.key_spans: dict[tuple[str | int, ...], Span] = {}
        # The path of the member whose value is being computed (directives record where they ran).
        self.path: tuple[str | int, ...] = ()
        # Directives whose value is a secret (`env`), and the data paths that depend on one.
        self.secret_directives = frozenset(secret_directives)
        self.taint: TaintMap = {}
        # While an expression is evaluated: the secret spans it has read (collapsed), and the
        # structured taint of a directive's value (relative paths, e.g. an @file's secrets).
        self._read: set[Span] = set()
        self._structured: TaintMap = {}
        self._suggestion_budget = SUGGESTION_BUDGET
        # Nesting depth of the container the value being computed goes into (the document is 1).
        self._depth = 0
        self._expansion = MAX_EXPANSION
        # values abandoned after a problem was recorded (a variable holding one fails quietly)
        self._failures = 0
        # id -> (depth, size) of variables' values, measured once; _kept keeps them alive (ids stay theirs)
        self._measured: dict[int, tuple[int, int]] = {}
        self._kept: list[Any] = []

    # --- documents and objects ---------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        doc = self.document
        scope = _Scope(None)
        data: dict[str, Any] = {}
        self._members(doc.members, data, scope, (), 1)
        for section in doc.sections:
            target = data
            path: tuple[str | int, ...] = ()
            for index, part in enumerate(section.key.parts):
                path = (*path, part)
                nxt = target.get(part)
                if not isinstance(nxt, dict):
                    nxt = {}
                    target[part] = nxt
                    if self.record_spans:
                        self.key_spans.setdefault(path, section.key.spans[index])
                        self.spans.setdefault(path, section.span)
                target = nxt
            self._members(section.members, target, _Scope(scope), path, 1 + len(section.key.parts))
        return data

    def _members(
        self,
        members: tuple[nodes.Member | nodes.VarDef, ...],
        data: dict[str, Any],
        scope: _Scope,
        path: tuple[str | int, ...],
        depth: int,
    ) -> None:
        """Fill ``data`` (nested ``depth`` deep in the document) with ``members``."""
        record = self.record_spans
        pending = {m.name: m.name_span for m in members if isinstance(m, nodes.VarDef)}
        scope.pending = pending
        for member in members:
            if isinstance(member, nodes.VarDef):
                where = (*path, f"${member.name}")
                outer, self.taint = self.taint, {}
                self._depth = 0  # a variable's value is measured on its own, and again where it is used
                failures = self._failures
                try:
                    found = scope.values[member.name] = self.value(member.value, scope, where)
                finally:
                    captured, self.taint = self.taint, outer
                if self._failures != failures:
                    # some part failed (and said why): its uses fail quietly, with no echo of that error
                    scope.failed.add(member.name)
                scope.shape[member.name] = self._measure(found)
                if captured:
                    # kept relative to the variable: every use re-roots it at the using place
                    cut = len(where)
                    scope.taint[member.name] = {sub[cut:]: spans for sub, spans in captured.items()}
                scope.spans[member.name] = member.name_span
                pending.pop(member.name, None)
                continue
            key = member.key
            target = data
            parts = key.parts
            for index in range(len(parts) - 1):
                part = parts[index]
                nxt = target.get(part)
                if not isinstance(nxt, dict):
                    nxt = {}
                    target[part] = nxt
                target = nxt
                if record:
                    sub = (*path, *parts[: index + 1])
                    self.key_spans.setdefault(sub, key.spans[index])
                    self.spans.setdefault(sub, member.span)
            member_path = (*path, *parts) if record else path
            if record:
                self.key_spans[member_path] = key.spans[-1]
            self._depth = depth + len(parts) - 1
            target[parts[-1]] = self.value(member.value, scope, member_path)
        scope.pending = {}

    # --- values ------------------------------------------------------------------------------

    def value(self, node: Any, scope: _Scope, path: tuple[str | int, ...]) -> Any:
        """The data for ``node``; problems are recorded and give None."""
        if self.record_spans:
            self.spans[path] = node.span
        kind = type(node)
        if kind is nodes.String or kind is nodes.Number or kind is nodes.Bool:
            return node.value
        if path:
            self.path = path
        if kind is nodes.Object:
            data: dict[str, Any] = {}
            depth = self._depth
            self._members(node.members, data, _Scope(scope), path, depth + 1)
            self._depth = depth
            return data
        if kind is nodes.Array:
            # Loops, not comprehensions: a comprehension is one more Python frame per nesting level.
            items: list[Any] = []
            append = items.append
            depth = self._depth
            if self.record_spans:
                for i, item in enumerate(node.items):
                    self._depth = depth + 1
                    append(self.value(item, scope, (*path, i)))
            else:
                for item in node.items:
                    self._depth = depth + 1
                    append(self.value(item, scope, path))
            self._depth = depth
            return items
        if kind is nodes.Null:
            return None
        if kind is nodes.Range:
            return {"min": node.low, "max": node.high}
        if kind is nodes.VarRef:
            # The whole value is a variable: its taint keeps its structure under this path.
            try:
                found, taint = self._lookup(node.name, node.span, scope)
            except _Failed:
                self._failures += 1
                return None
            if not self._fits(node.name, node.span, scope):
                self._failures += 1
                return None
            if taint:
                for sub, spans in taint.items():
                    self._mark((*path, *sub), spans)
            return found
        outer_read, outer_structured = self._read, self._structured
        read: set[Span] = set()
        structured: TaintMap = {}
        self._read, self._structured = read, structured
        try:
            result = self._expression(node, scope)
        except _Inert:
            result = Expression(node.span.text, node.span.location())
        except _Failed:
            self._failures += 1
            result = None
        finally:
            self._read, self._structured = outer_read, outer_structured
        if structured:
            if kind is nodes.Directive:
                for sub, spans in structured.items():
                    self._mark((*path, *sub), spans)
            else:
                for spans in structured.values():
                    read |= spans
        if read:
            self._mark(path, read)
        return result

    # --- secrets -----------------------------------------------------------------------------

    def _mark(self, path: DataPath, spans: Iterable[Span]) -> None:
        existing = self.taint.get(path)
        if existing is None:
            self.taint[path] = set(spans)
        else:
            existing.update(spans)

    def add_taint(self, taint: Mapping[DataPath, Iterable[Span]]) -> None:
        """For a directive whose value holds secrets (an @file): paths relative to that value."""
        for sub, spans in taint.items():
            existing = self._structured.get(sub)
            if existing is None:
                self._structured[sub] = set(spans)
            else:
                existing.update(spans)

    def graft_spans(self, spans: Mapping[DataPath, Span], key_spans: Mapping[DataPath, Span]) -> None:
        """For a directive whose value came from another file (@file): where each part of it is written.

        Paths are relative to the value; they land under the member being computed, so the source map
        reaches into the included file.
        """
        if not self.record_spans:
            return
        base = self.path
        for sub, span in spans.items():
            self.spans[base + sub] = span
        for sub, span in key_spans.items():
            self.key_spans[base + sub] = span

    # --- size --------------------------------------------------------------------------------

    def _measure(self, value: Any) -> tuple[int, int]:
        """A variable's value's (depth, size), walking only what earlier variables did not cover."""
        if not isinstance(value, dict | list | DirectiveCall):
            return 0, len(value) if isinstance(value, str) else 1
        depth, size = _measure(value, self._measured)
        self._measured[id(value)] = (depth, size)
        self._kept.append(value)
        return depth, size

    def _fits(self, name: str, span: Span, scope: _Scope) -> bool:
        """Whether `$name`'s value may go where it is used: not too deep, within the run's budget."""
        s: _Scope | None = scope
        while s is not None and name not in s.shape:
            s = s.parent
        if s is None:
            return True
        depth, size = s.shape[name]
        try:
            if depth and self._depth + depth > MAX_DEPTH:
                self._too_deep(f"`${name}`", self._depth + depth, span)
            self._spend(size, span)
        except _Failed:
            return False
        return True

    def _too_deep(self, what: str, depth: int, span: Span) -> None:
        self.error(
            "TSK211",
            f"{what} would nest the data {depth} levels deep here; the limit is {MAX_DEPTH}",
            span,
            hint="a variable's or directive's value counts the levels around the place it is used "
            "(docs/syntax.md, Limits): flatten the data",
        )

    def _spend(self, amount: int, span: Span) -> None:
        self._expansion -= amount
        if self._expansion < 0:
            if self._expansion + amount < 0:
                raise _Failed  # said once, at the place the budget ran out
            self.error(
                "TSK212",
                f"variables, `+` and interpolation build more than {MAX_EXPANSION:,} values and characters "
                "in this file",
                span,
                hint="a value used many times, each holding many values, multiplies (`$b = [$a, $a]`); "
                "write the data out, or generate the file",
            )

    def _expression(self, node: Any, scope: _Scope) -> Any:
        """Evaluate; raise _Inert if a directive was left unrun, _Failed after recording a problem."""
        kind = type(node)
        if kind is nodes.String or kind is nodes.Number or kind is nodes.Bool or kind is nodes.Null:
            return node.value
        if kind is nodes.Range:
            return {"min": node.low, "max": node.high}
        if kind is nodes.VarRef:
            found, taint = self._lookup(node.name, node.span, scope)
            if taint:
                self._read_all(taint)
            if not self._fits(node.name, node.span, scope):
                raise _Failed
            return found
        if kind is nodes.Template:
            out = []
            for part in node.parts:
                if isinstance(part, str):
                    out.append(part)
                    continue
                found, taint = self._lookup(part.name, part.span, scope)
                if taint:
                    self._read_all(taint)
                out.append(self._as_text(found, part.span))
            text = "".join(out)
            self._spend(len(text), node.span)
            return text
        if kind is nodes.Directive:
            where = self.path
            args: list[Any] = []
            # An argument's secrets do not flow into the result (`@query(sql, @env(TENANT))` gives
            # rows, not the tenant); only a secret directive's own value is a secret.
            outer, self.taint = self.taint, {}
            depth = self._depth
            try:
                for arg in node.args or ():
                    if isinstance(arg, nodes.Bare):
                        args.append(Identifier(arg.name))
                    else:
                        self._depth = 0  # an argument is not placed in the data
                        args.append(self.value(arg, scope, ()))
            finally:
                self.taint = outer
                self._depth = depth
            self.path = where
            result = self.hook(node, args, self)
            if node.name in self.secret_directives:
                self._read.add(node.span)
            if isinstance(result, dict | list | DirectiveCall):
                # @file, @query: data from elsewhere, nested where it is used; an inert call holds its
                # arguments, which may be calls holding theirs ($v2 = @f($v1), ...)
                nested = _measure(result, {})[0]
                if depth + nested > MAX_DEPTH:
                    self._too_deep(f"the value of @{node.name}", depth + nested, node.span)
            return result
        if kind is nodes.Object or kind is nodes.Array:
            # A literal inside an expression (`c ? { ... } : [...]`): its secrets are the expression's.
            outer, self.taint = self.taint, {}
            try:
                return self.value(node, scope, ())
            finally:
                inner, self.taint = self.taint, outer
                self.add_taint(inner)
        if kind is nodes.Unary:
            # `!!!...x` in a loop: a long run of `!` costs no stack.
            chain = []
            while type(node) is nodes.Unary:
                chain.append(node)
                node = node.operand
            value = self._operand(node, scope)
            for unary in reversed(chain):
                if not isinstance(value, bool):
                    self._type_error(unary.span, f"`!` needs true or false, got {_describe(value)}")
                value = not value
            return value
        if kind is nodes.Ternary:
            # `a ? b : c ? d : e` in a loop: each chosen branch that is itself a `? :` is walked on.
            while type(node) is nodes.Ternary:
                condition = self._operand(node.condition, scope)
                if not isinstance(condition, bool):
                    self._type_error(
                        node.condition.span,
                        f"the condition of `? :` must be true or false, got {_describe(condition)}",
                    )
                node = node.then if condition else node.otherwise
            return self._operand(node, scope)
        if kind is nodes.Binary:
            return self._binary(node, scope)
        raise AssertionError(f"unknown node {kind.__name__}")  # pragma: no cover

    def _read_all(self, taint: Mapping[DataPath, set[Span]]) -> None:
        for spans in taint.values():
            self._read |= spans

    def _operand(self, node: Any, scope: _Scope) -> Any:
        value = self._expression(node, scope)
        if isinstance(value, DirectiveCall | Expression):
            raise _Inert
        return value

    def _binary(self, node: nodes.Binary, scope: _Scope) -> Any:
        # Operators are left-associative, so a chain `a + b + c + ...` is a left spine: fold it in a
        # loop (a 1,000-term chain costs no stack). Only a right operand recurses.
        spine: list[nodes.Binary] = []
        leftmost: Any = node
        while type(leftmost) is nodes.Binary:
            spine.append(leftmost)
            leftmost = leftmost.left
        left = self._operand(leftmost, scope)
        for link in reversed(spine):
            left = self._apply(link, left, scope)
        return left

    def _apply(self, node: nodes.Binary, left: Any, scope: _Scope) -> Any:
        op = node.op
        if op in ("&&", "||"):
            if not isinstance(left, bool):
                self._type_error(node.left.span, f"`{op}` needs true or false on both sides, got {_describe(left)}")
            if (op == "&&" and not left) or (op == "||" and left):
                return left
            right = self._expression(node.right, scope)  # not via _operand: one frame less per level
            if isinstance(right, DirectiveCall | Expression):
                raise _Inert
            if not isinstance(right, bool):
                self._type_error(node.right.span, f"`{op}` needs true or false on both sides, got {_describe(right)}")
            return right
        right = self._expression(node.right, scope)
        if isinstance(right, DirectiveCall | Expression):
            raise _Inert
        if op == "+":
            if _is_number(left) and _is_number(right):
                try:
                    total = left + right
                except OverflowError:  # a 4,000-digit integer plus a float
                    total = math.inf
                if (isinstance(total, float) and not math.isfinite(total)) or (
                    type(total) is int and not -_INT_BOUND < total < _INT_BOUND
                ):
                    self._type_error(
                        node.op_span,
                        "the sum is too large for a number",
                        hint=f"numbers are finite 64-bit floats, or integers of at most {INT_DIGITS_COMPUTED:,} digits",
                    )
                return total
            if isinstance(left, str) and isinstance(right, str):
                self._spend(len(left) + len(right), node.op_span)  # before building it
                return left + right
            if isinstance(left, list) and isinstance(right, list):
                self._spend(len(left) + len(right), node.op_span)
                return left + right
            self._type_error(
                node.op_span,
                f"cannot add {_describe(left)} and {_describe(right)}",
                hint="`+` adds two numbers or joins two strings (or two arrays); "
                'use interpolation to mix them: "port ${port}"',
            )
        if op == "==":
            return _equal(left, right)
        if op == "!=":
            return not _equal(left, right)
        if (_is_number(left) and _is_number(right)) or (isinstance(left, str) and isinstance(right, str)):
            if op == "<":
                return left < right
            if op == "<=":
                return left <= right
            if op == ">":
                return left > right
            return left >= right
        self._type_error(
            node.op_span,
            f"cannot compare {_describe(left)} with {_describe(right)} using `{op}`",
            hint="`<`, `<=`, `>`, `>=` compare two numbers or two strings",
        )
        raise AssertionError  # pragma: no cover

    # --- variables and errors ----------------------------------------------------------------

    def _lookup(self, name: str, span: Span, scope: _Scope) -> tuple[Any, TaintMap | None]:
        """A variable's value and its taint (paths relative to the value), innermost scope first."""
        s: _Scope | None = scope
        while s is not None:
            value = s.values.get(name, _MISSING)
            if value is not _MISSING:
                if name in s.failed:
                    raise _Failed
                return value, s.taint.get(name)
            if name in s.pending:
                self.error(
                    "TSK201",
                    f"variable `${name}` is used before it is defined",
                    span,
                    related=(Related(s.pending[name], "defined here, later in the file"),),
                    hint="move the definition above its first use",
                )
            s = s.parent
        # Bounded work (tusklang.suggest): names are offered lazily, nearest first, never listed, and
        # one run examines at most SUGGESTION_BUDGET names in all, so a file with thousands of unknown
        # variables costs linear time (the first few dozen still get a suggestion).
        close = None
        if self._suggestion_budget > 0:
            allowed = min(MAX_CANDIDATES, self._suggestion_budget)
            self._suggestion_budget -= allowed
            close = did_you_mean(name, scope.visible_names(), max_candidates=allowed)
        self.error(
            "TSK200",
            f"unknown variable `${name}`",
            span,
            hint=f"did you mean `${close}`?" if close else "define it first: `$" + name + " = ...`",
        )
        raise AssertionError  # pragma: no cover

    def _as_text(self, value: Any, span: Span) -> str:
        if isinstance(value, DirectiveCall | Expression):
            raise _Inert
        if isinstance(value, bool):
            return "true" if value else "false"
        if value is None:
            return "null"
        if isinstance(value, int | float | str):
            return str(value)
        self._type_error(span, f"cannot interpolate {_describe(value)} into a string")
        raise AssertionError  # pragma: no cover

    def _type_error(self, span: Span, message: str, hint: str | None = None, related: tuple[Related, ...] = ()) -> None:
        self.error("TSK210", message, span, hint=hint, related=related)

    def error(
        self, code: str, message: str, span: Span, hint: str | None = None, related: tuple[Related, ...] = ()
    ) -> None:
        """Record an error and abandon the value being computed."""
        self.diagnostics.append(Diagnostic(code, message, span, hint=hint, related=related))
        raise _Failed

    def report(self, diagnostic: Diagnostic, *more: Diagnostic) -> None:
        """Record problems (a directive's); any error abandons the value being computed."""
        self.diagnostics.append(diagnostic)
        self.diagnostics.extend(more)
        if diagnostic.is_error or any(d.is_error for d in more):
            raise _Failed


class _Failed(Exception):
    """A problem was recorded; the value being computed is abandoned."""


class _Scope:
    __slots__ = ("failed", "parent", "pending", "shape", "spans", "taint", "values")

    def __init__(self, parent: _Scope | None) -> None:
        self.parent = parent
        self.values: dict[str, Any] = {}
        self.spans: dict[str, Span] = {}
        self.pending: dict[str, Span] = {}
        self.taint: dict[str, TaintMap] = {}
        # name -> (nesting depth, size) of the value, measured once (Interpreter._measure)
        self.shape: dict[str, tuple[int, int]] = {}
        # names whose definition reported an error
        self.failed: set[str] = set()

    def visible_names(self) -> Iterator[str]:
        """Defined names, innermost scope first and the latest definition first, one at a time."""
        s: _Scope | None = self
        while s is not None:
            yield from reversed(s.values)
            s = s.parent


_NESTING = (dict, list, DirectiveCall)


def _children(node: Any) -> Any:
    if isinstance(node, dict):
        return node.values()
    if isinstance(node, DirectiveCall):
        return node.args or ()
    return node


def _measure(value: Any, known: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """(nesting depth, size) of a container, iteratively; ``known`` gives them for shared parts.

    A size counts each container and scalar once and each string by its length. Parts reached twice
    (a variable's value used twice) count twice, as they will be written twice.
    """
    if id(value) in known:  # `$b = $a`: the same object
        return known[id(value)]
    done: dict[int, tuple[int, int]] = {}
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, ready = stack.pop()
        key = id(node)
        if key in done or key in known:
            continue
        children = _children(node)
        if not ready:
            stack.append((node, True))
            stack.extend((c, False) for c in children if isinstance(c, _NESTING))
            continue
        # An inert call is written as {"$directive": ..., "args": [...]}: two levels around its arguments.
        own = 2 if isinstance(node, DirectiveCall) else 1
        depth, size = own, 1
        for child in children:
            if isinstance(child, _NESTING):
                child_depth, child_size = done.get(id(child)) or known[id(child)]
                depth = max(depth, child_depth + own)
                size += child_size
            else:
                size += len(child) if isinstance(child, str) else 1
        done[key] = (depth, size)
    return done[id(value)]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(left: Any, right: Any) -> bool:
    # true == 1 is false here: booleans are not numbers in TuskLang.
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    return bool(left == right)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean `{'true' if value else 'false'}`"
    if value is None:
        return "`null`"
    if isinstance(value, int | float):
        return f"the number `{value}`"
    if isinstance(value, str):
        shown = value if len(value) <= 30 else value[:27] + "..."
        return f'the string "{shown}"'
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
