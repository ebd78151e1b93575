"""AST to data: variables, `${}` interpolation, expressions, and directives through a hook.

One walker serves `loads` (the hook leaves directives inert, expressions that need them become
``Expression`` values, with what each of their names reads there for `dumps`: ``_names_of``) and
`resolve` (the hook runs them). Every problem is collected with its
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

Keys (docs/syntax.md, "Bare names"): a bare name in a value is a reference to an earlier key, found
by the same scoping as variables (the object it is in, then the enclosing ones; in a `[section]`, then
the keys written before the first section). It gives a copy of that key's value. An array item that is
a name alone is that word as text.

Runtime-only values (tusklang.values): `php(...)`, method chains, runtime-only directives and any
expression reading one stay inert here, whatever the hook runs; ``runtime_only_problems`` is what
`tusk compile` and `resolve` report for those that reach the data (TSK229). A statement (a value
alone on its line) is evaluated for its diagnostics with nothing run, and is not data.

Depth: evaluation uses at most three Python frames per level of the syntax tree, and none per link of
a left-associative chain (`1 + 1 + ... + 1`), a run of `!`, a `? :` chain or a member chain: those are
loops. The parser bounds nesting (tusklang.limits.MAX_DEPTH), so evaluation cannot exhaust the stack.

Size: the parser bounds what a file writes, but variables, directives and `+` could build more: a
value nested deeper than MAX_DEPTH by using a deep variable (or @file, @query value) deep inside
another (TSK211), or one that multiplies (`$b = [$a, $a]`, `$c = [$b, $b]`, ...: 2^n values from n
lines; `$s = $s0 + $s0` doubling text) (TSK212). Each variable's depth and size are measured once,
when it is defined; every use, `+` and interpolation spends from one budget per run
(MAX_EXPANSION), so the data stays walkable and in proportion to the file.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from .derived_spans import SEPARATORS, items_are_derivable
from .diagnostics import SPAN_MASK as _SPAN_MASK
from .diagnostics import SPAN_SHIFT as _SPAN_SHIFT
from .diagnostics import Diagnostic, Related, Span
from .limits import MAX_DEPTH
from .suggest import MAX_CANDIDATES, did_you_mean
from .syntax import nodes
from .values import (
    INERT,
    DirectiveCall,
    Expression,
    ForeignCall,
    Identifier,
    Link,
    MemberChain,
    Name,
    is_runtime_only,
    with_names,
)

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


# `@config.tsk.get("k")`, `@cache.tsk.set("k", v)`: the TuskLang SDKs read (or write) another file,
# found at run time from the working folder. `@file("config.tsk", "k")` is the compile-time include.
_CROSS_FILE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\.tsk\.(?:get|set)")
# Bare names that look like booleans in other formats (YAML 1.1) but are not TuskLang's.
_NOT_BOOLEANS = frozenset({"yes", "no", "on", "off", "True", "False", "TRUE", "FALSE", "Yes", "No", "On", "Off"})


class _Inert(Exception):
    """Raised inside an expression that depends on a directive that was not run (or runtime-only)."""

    def __init__(self, runtime: bool = False) -> None:
        super().__init__()
        self.runtime = runtime


@functools.cache
def is_runtime_directive(name: str) -> bool:
    """Whether only the running application can compute `@name` (docs/directives.md, "Runtime-only")."""
    # Imported here: `import tusklang` (which loads this module for `loads`) need not load the directives.
    from .directives import REGISTRY, RUNTIME_ONLY

    head = name.partition(".")[0]
    return head in RUNTIME_ONLY or (head not in REGISTRY and _CROSS_FILE.fullmatch(name) is not None)


def inert_directive(node: nodes.Directive, args: list[Any]) -> DirectiveCall:
    """The call, not run: what `loads` keeps, and what every hook keeps for a runtime-only directive."""
    return DirectiveCall(
        node.name,
        None if node.args is None else tuple(args),
        node.span.location(),
        is_runtime_directive(node.name),
        node.span,
    )


def _inert_hook(node: nodes.Directive, args: list[Any], interp: Interpreter) -> Any:
    return inert_directive(node, args)


# Values whose span stays the one recorded at their member's path, so that a bare key before it can be
# derived from it (a directive's may be replaced by an included file's: @file grafts its spans).
_SPANNED_HERE = frozenset({nodes.String, nodes.Number, nodes.Bool, nodes.Object, nodes.Array})


class Interpreter:
    def __init__(
        self,
        document: nodes.Document,
        hook: DirectiveHook | None = None,
        record_spans: bool = False,
        secret_directives: Collection[str] = (),
    ):
        self.document = document
        self.text = document.source.text  # where a key is checked to be derivable (_members)
        self.hook = hook or _inert_hook
        self.diagnostics: list[Diagnostic] = []
        self.record_spans = record_spans
        # path -> span of the value (and of the key, for objects' members), for later stages; what the
        # text around a recorded span tells is left out (literal arrays' items, bare keys: derived_spans).
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
        # A section sees the keys written before the first section, never another section's.
        scope.data = dict(data)
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
        members: tuple[nodes.Member | nodes.VarDef | nodes.Statement, ...],
        data: dict[str, Any],
        scope: _Scope,
        path: tuple[str | int, ...],
        depth: int,
    ) -> None:
        """Fill ``data`` (nested ``depth`` deep in the document) with ``members``."""
        record = self.record_spans
        spans, key_spans = self.spans, self.key_spans
        text = self.text
        spanned_here, separators = _SPANNED_HERE, SEPARATORS
        pending: dict[str, Span] | None = None
        for m in members:
            if type(m) is nodes.VarDef:
                if pending is None:
                    pending = {}
                pending[m.name] = m.name_span
        if pending is not None:
            scope.pending = pending
        scope.data = data
        scope.path = path
        scope.members = members
        member: Any  # not narrowed: mypy spent minutes on isinstance over the node unions
        value: Any
        for member in members:
            kind = type(member)
            if kind is nodes.Statement:
                self._statement(member, scope)
                continue
            if kind is nodes.VarDef:
                self._variable(member, scope, path, pending)
                continue
            key = member.key
            target = data
            parts = key.parts
            if len(parts) > 1:
                for index in range(len(parts) - 1):
                    part = parts[index]
                    nxt = target.get(part)
                    if not isinstance(nxt, dict):
                        nxt = {}
                        target[part] = nxt
                    target = nxt
                    if record:
                        sub = (*path, *parts[: index + 1])
                        key_spans.setdefault(sub, key.spans[index])
                        spans.setdefault(sub, member.span)
            value = member.value
            vkind = type(value)
            if record:
                member_path = path + parts
                name = parts[-1]
                kspan = key.part_spans[-1] if key.part_spans else key.span  # Key.last_span, without a call
                kend = kspan & _SPAN_MASK
                # a bare key, a plain separator: derive_key finds it before the value (derived_spans)
                if (
                    vkind in spanned_here
                    and kend - (kspan >> _SPAN_SHIFT) == len(name)
                    and text[kend : value.span >> _SPAN_SHIFT] in separators
                ):
                    if name in target:  # an earlier definition's key must not stand for this one's
                        key_spans.pop(member_path, None)
                else:
                    key_spans[member_path] = kspan
            else:
                member_path = path
            if vkind is nodes.String or vkind is nodes.Number or vkind is nodes.Bool:
                # the common member, `name = literal`: what ``value`` does for it, without the call
                if record:
                    spans[member_path] = value.span
                target[parts[-1]] = value.value
                continue
            self._depth = depth + len(parts) - 1
            failures = self._failures
            target[parts[-1]] = self.value(value, scope, member_path)
            if self._failures != failures:
                if scope.failed_keys is _NO_NAMES:
                    scope.failed_keys = set()
                scope.failed_keys.add(parts[0])  # a reference to it fails quietly, as a variable's use
        if pending is not None:
            scope.pending = _NOTHING

    def _variable(
        self, member: nodes.VarDef, scope: _Scope, path: tuple[str | int, ...], pending: dict[str, Span] | None
    ) -> None:
        values, spans, taints, shape, failed = scope.define()
        where = (*path, f"${member.name}")
        outer, self.taint = self.taint, {}
        self._depth = 0  # a variable's value is measured on its own, and again where it is used
        failures = self._failures
        try:
            found = values[member.name] = self.value(member.value, scope, where)
        finally:
            captured, self.taint = self.taint, outer
        if self._failures != failures:
            # some part failed (and said why): its uses fail quietly, with no echo of that error
            failed.add(member.name)
        shape[member.name] = self._measure(found)
        if captured:
            # kept relative to the variable: every use re-roots it at the using place
            cut = len(where)
            taints[member.name] = {sub[cut:]: origins for sub, origins in captured.items()}
        spans[member.name] = member.name_span
        if pending is not None:
            pending.pop(member.name, None)

    def _statement(self, member: nodes.Statement, scope: _Scope) -> None:
        """A value alone on its line: checked (names, variables, arguments) with nothing run; not data."""
        saved = (self.hook, self.record_spans, self.taint, self.path, self._depth)
        self.hook, self.record_spans, self.taint = _inert_hook, False, {}
        self._depth = 0
        try:
            self.value(member.value, scope, ())
        finally:
            self.hook, self.record_spans, self.taint, self.path, self._depth = saved

    # --- values ------------------------------------------------------------------------------

    def value(self, node: Any, scope: _Scope, path: tuple[str | int, ...]) -> Any:
        """The data for ``node``; problems are recorded and give None."""
        if self.record_spans:
            self.spans[path] = node.span
        kind = type(node)
        if kind is nodes.String or kind is nodes.Number or kind is nodes.Bool or kind is nodes.Word:
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
                # a bracketed array's literal items: no span recorded, the array's (above) gives them
                derivable = items_are_derivable(node.span)
                for i, item in enumerate(node.items):
                    ikind = type(item)
                    if ikind is nodes.String or ikind is nodes.Number or ikind is nodes.Bool:
                        if not derivable:
                            self.spans[(*path, i)] = item.span
                        append(item.value)
                        continue
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
        if kind is nodes.Ref:
            # The whole value is a key's: its taint keeps its structure under this path, as a variable's.
            try:
                found, key_taint = self._key(node, scope)
            except _Failed:
                self._failures += 1
                return None
            for sub, spans in key_taint.items():
                self._mark((*path, *sub), spans)
            return found
        outer_read, outer_structured = self._read, self._structured
        read: set[Span] = set()
        structured: TaintMap = {}
        self._read, self._structured = read, structured
        try:
            result = self._expression(node, scope)
        except _Inert as inert:
            runtime = inert.runtime or self._mentions_runtime(node, scope)
            result = with_names(
                Expression(node.span.text, node.span.location(), runtime, node.span), _names_of(node, scope)
            )
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
        if not isinstance(value, _NESTING):
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
        if kind is nodes.Word:
            return node.value
        if kind is nodes.Ref:
            found, key_taint = self._key(node, scope)
            for spans in key_taint.values():
                self._read |= spans
            return found
        if kind is nodes.Foreign:
            return ForeignCall(node.name, node.code, node.span.location(), node.span)
        if kind is nodes.Chain:
            return self._chain(node, scope)
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
                if type(part) is nodes.VarRef:
                    found, taint = self._lookup(part.name, part.span, scope)
                    if taint:
                        self._read_all(taint)
                else:  # `${expression}` of a backtick template
                    found = self._expression(part, scope)
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
            if isinstance(result, _NESTING):
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

    # --- keys, chains, arithmetic ---------------------------------------------------------------

    def _key(self, node: nodes.Ref, scope: _Scope) -> tuple[Any, TaintMap]:
        """The value of the earlier key ``node`` names (a copy: the data never shares a container) and
        its taint (paths relative to the value); TSK202 when no earlier key of the scopes has the name."""
        name = node.name
        s = _defining(scope, name)
        if s is None:
            self._unknown_name(node, scope)
            raise AssertionError  # pragma: no cover
        if name in s.failed_keys:
            raise _Failed
        assert s.data is not None
        value = s.data[name]
        where = (*s.path, name)
        taint: TaintMap = {}
        if self.taint:
            cut = len(where)
            for sub, spans in self.taint.items():
                if sub[:cut] == where:
                    taint[sub[cut:]] = spans
        if isinstance(value, dict | list):
            depth, size = self._measure(value)
            if self._depth + depth > MAX_DEPTH:
                self._too_deep(f"`{name}`", self._depth + depth, node.span)
            self._spend(size, node.span)
            value = _copy_data(value)
        return value, taint

    def _unknown_name(self, node: nodes.Ref, scope: _Scope) -> None:
        name = node.name
        related: tuple[Related, ...] = ()
        s: _Scope | None = scope
        while s is not None and not related:
            for member in s.members:
                if type(member) is nodes.Member and member.key.parts[0] == name and member.span.start > node.span.start:
                    related = (Related(member.key.spans[0], "defined here, after its use"),)
                    break
            s = s.parent
        if name in _NOT_BOOLEANS:
            hint = "TuskLang's booleans are `true` and `false`; quote the word for text: `\"" + name + '"`'
        elif related:
            hint = "a key can be used after the line that defines it: move the definition up"
        elif "-" in name and _visible(scope, name.partition("-")[0]):
            hint = f"a name may contain `-`; to subtract, put spaces around it: `{name.replace('-', ' - ')}`"
        else:
            close = None
            if self._suggestion_budget > 0:
                allowed = min(MAX_CANDIDATES, self._suggestion_budget)
                self._suggestion_budget -= allowed
                close = did_you_mean(name, scope.visible_keys(), max_candidates=allowed)
            if close:
                hint = f"did you mean `{close}`?"
            else:
                hint = f'a bare name refers to an earlier key of this section; for text, quote it: `"{name}"`'
        self.error(
            "TSK202",
            f"unknown name `{name}`: no key of that name is defined before it in this section",
            node.span,
            hint=hint,
            related=related,
        )

    def _chain(self, node: nodes.Chain, scope: _Scope) -> Any:
        """`target.name...`: a key of a known object is read here; anything else stays inert.

        A method call (`.count()`), or any link on a runtime-only value, is runtime-only: the chain
        becomes a ``MemberChain`` (its arguments evaluated, nothing run). A link on a value not known
        yet (a directive `loads` did not run) makes the chain an expression the resolver evaluates.
        """
        target = self._expression(node.target, scope)
        links = node.links
        for index, link in enumerate(links):
            if link.args is not None or is_runtime_only(target):
                rest = tuple(self._link(item, scope) for item in links[index:])
                if isinstance(target, MemberChain):
                    return MemberChain(target.target, target.links + rest, node.span.location(), node.span)
                return MemberChain(target, rest, node.span.location(), node.span)
            if isinstance(target, INERT):
                raise _Inert(False)
            if isinstance(target, dict):
                if link.name in target:
                    target = target[link.name]
                    continue
                close = did_you_mean(link.name, list(target)[:MAX_CANDIDATES])
                read_from = Span(node.span.source, node.span.start, link.span.start).text
                self.error(
                    "TSK203",
                    f"no key `{link.name}` in `{read_from}`",
                    link.name_span,
                    hint=f"did you mean `{close}`?"
                    if close
                    else "keys: " + ", ".join(f"`{k}`" for k in list(target)[:10]),
                )
            self.error(
                "TSK203",
                f"`.{link.name}` reads a key of an object, and this is {_describe(target)}",
                link.name_span,
                hint="only objects have members at compile time",
            )
        return target

    def _link(self, link: nodes.Link, scope: _Scope) -> Link:
        if link.args is None:
            return Link(link.name)
        args: list[Any] = []
        depth = self._depth
        try:
            # `arg` typed Any: narrowing the union of argument node types here took mypy minutes.
            arg: Any
            for arg in link.args:
                self._depth = 0  # an argument is not placed in the data
                if isinstance(arg, nodes.Bare):
                    args.append(Identifier(arg.name))
                else:
                    args.append(self.value(arg, scope, ()))
        finally:
            self._depth = depth
        return Link(link.name, tuple(args))

    def _mentions_runtime(self, node: Any, scope: _Scope) -> bool:
        """Whether an expression left inert reads a runtime-only value (so only the application can
        compute it): its other parts are looked at although an earlier one stopped the evaluation."""
        stack = [node]
        while stack:
            item = stack.pop()
            kind = type(item)
            if kind is nodes.Foreign or (kind is nodes.Chain and any(link.args is not None for link in item.links)):
                return True
            if kind is nodes.Directive and is_runtime_directive(item.name):
                return True
            if kind is nodes.VarRef:
                s: _Scope | None = scope
                while s is not None:
                    if item.name in s.values:
                        if is_runtime_only(s.values[item.name]):
                            return True
                        break
                    s = s.parent
            elif kind is nodes.Ref:
                s = scope
                while s is not None:
                    if s.data is not None and item.name in s.data:
                        if is_runtime_only(s.data[item.name]):
                            return True
                        break
                    s = s.parent
            elif kind is nodes.Binary:
                stack += (item.left, item.right)
            elif kind is nodes.Unary:
                stack.append(item.operand)
            elif kind is nodes.Ternary:
                stack += (item.condition, item.then, item.otherwise)
            elif kind is nodes.Chain:
                stack.append(item.target)
            elif kind is nodes.Template:
                stack += [part for part in item.parts if not isinstance(part, str)]
            elif kind is nodes.Array:
                stack += item.items
        return False

    def _arithmetic(self, node: nodes.Binary, left: Any, right: Any) -> Any:
        op = node.op
        if not (_is_number(left) and _is_number(right)):
            for side in (node.left, node.right):
                if type(side) is nodes.Range:
                    low, high = side.low, side.high
                    self._type_error(
                        side.span,
                        f"`{side.span.text}` is a range ({{min, max}}), not a number",
                        hint=f"to subtract, put spaces around the `-`: `{low} - {high}`",
                    )
            verb = {"-": "subtract", "*": "multiply", "/": "divide", "%": "take the remainder of"}[op]
            self._type_error(
                node.op_span,
                f"cannot {verb} {_describe(left)} and {_describe(right)}",
                hint=f"`{op}` takes two numbers (`+` also joins strings and arrays)",
            )
        try:
            if op == "-":
                result = left - right
            elif op == "*":
                result = left * right
            elif right == 0:
                self._type_error(node.op_span, "division by zero" if op == "/" else "remainder of a division by zero")
                raise AssertionError  # pragma: no cover
            elif op == "/":
                # An exact division of integers stays an integer (`10 / 2` is 5, as in JSON's numbers).
                if type(left) is int and type(right) is int and left % right == 0:
                    result = left // right
                else:
                    result = left / right
            elif type(left) is int and type(right) is int:
                # The remainder takes the sign of the dividend (`-7 % 3` is -1), as in C, Java, JS and PHP.
                result = abs(left) % abs(right)
                if left < 0:
                    result = -result
            else:
                result = math.fmod(left, right)
        except OverflowError:
            result = math.inf
        if (isinstance(result, float) and not math.isfinite(result)) or (
            type(result) is int and not -_INT_BOUND < result < _INT_BOUND
        ):
            self._type_error(
                node.op_span,
                "the result is too large for a number",
                hint=f"numbers are finite 64-bit floats, or integers of at most {INT_DIGITS_COMPUTED:,} digits",
            )
        return result

    def _read_all(self, taint: Mapping[DataPath, set[Span]]) -> None:
        for spans in taint.values():
            self._read |= spans

    def _operand(self, node: Any, scope: _Scope) -> Any:
        value = self._expression(node, scope)
        if isinstance(value, INERT):
            raise _Inert(is_runtime_only(value))
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
            if isinstance(right, INERT):
                raise _Inert(is_runtime_only(right))
            if not isinstance(right, bool):
                self._type_error(node.right.span, f"`{op}` needs true or false on both sides, got {_describe(right)}")
            return right
        right = self._expression(node.right, scope)
        if isinstance(right, INERT):
            raise _Inert(is_runtime_only(right))
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
        if op == "-" or op == "*" or op == "/" or op == "%":
            return self._arithmetic(node, left, right)
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
        hint = f"did you mean `${close}`?" if close else "define it first: `$" + name + " = ...`"
        if close is None:
            # `$features.debug` where `features` is a key (the SDKs' peanu files write so): say how a key
            # is read, as a bare name (docs/syntax.md, Bare names).
            s = scope
            while s is not None and (s.data is None or name not in s.data):
                s = s.parent
            if s is not None:
                hint = f"`{name}` is a key written above, not a variable: read it as `{name}`, without `$`"
        self.error("TSK200", f"unknown variable `${name}`", span, hint=hint)
        raise AssertionError  # pragma: no cover

    def _as_text(self, value: Any, span: Span) -> str:
        if isinstance(value, INERT):
            raise _Inert(is_runtime_only(value))
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


# Read-only, so a write to a scope's table that ``define`` did not make fails loudly.
_NOTHING: Any = MappingProxyType({})
_NO_NAMES: Any = frozenset()
# a scope's own values, name spans, taint, shapes and failed names (_Scope.define)
_Variables = tuple[dict[str, Any], dict[str, Span], dict[str, TaintMap], dict[str, tuple[int, int]], set[str]]


class _Scope:
    __slots__ = (
        "data",
        "failed",
        "failed_keys",
        "members",
        "parent",
        "path",
        "pending",
        "shape",
        "spans",
        "taint",
        "values",
    )

    def __init__(self, parent: _Scope | None) -> None:
        self.parent = parent
        # The object being filled (the keys written so far, for bare-name references), its data path
        # and its members (to say a name is defined later); the root's data is the part before sections.
        self.data: dict[str, Any] | None = None
        self.path: tuple[str | int, ...] = ()
        self.members: tuple[Any, ...] = ()
        # One scope per object of the file, and almost none defines a variable: the tables below are
        # shared empty ones (read-only) until ``define`` or a failed key gives the scope its own.
        self.failed_keys: set[str] = _NO_NAMES
        self.values: dict[str, Any] = _NOTHING
        self.spans: dict[str, Span] = _NOTHING
        self.pending: dict[str, Span] = _NOTHING
        self.taint: dict[str, TaintMap] = _NOTHING
        # name -> (nesting depth, size) of the value, measured once (Interpreter._measure)
        self.shape: dict[str, tuple[int, int]] = _NOTHING
        # names whose definition reported an error
        self.failed: set[str] = _NO_NAMES

    def define(self) -> _Variables:
        """The scope's own variable tables, made on its first variable."""
        if self.values is _NOTHING:
            self.values, self.spans, self.taint, self.shape, self.failed = {}, {}, {}, {}, set()
        return self.values, self.spans, self.taint, self.shape, self.failed

    def visible_names(self) -> Iterator[str]:
        """Defined names, innermost scope first and the latest definition first, one at a time."""
        s: _Scope | None = self
        while s is not None:
            yield from reversed(s.values)
            s = s.parent

    def visible_keys(self) -> Iterator[str]:
        """Keys a bare name may refer to, innermost scope first, one at a time."""
        s: _Scope | None = self
        while s is not None:
            if s.data is not None:
                yield from reversed(s.data)
            s = s.parent


_NESTING = (dict, list, DirectiveCall, MemberChain)


def _children(node: Any) -> Any:
    if isinstance(node, dict):
        return node.values()
    if isinstance(node, DirectiveCall):
        return node.args or ()
    if isinstance(node, MemberChain):
        return (node.target, *(arg for link in node.links for arg in link.args or ()))
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
        # An inert call is written as {"$directive": ..., "args": [...]}: two levels around its arguments;
        # a chain as {"$chain": target, "links": [{"args": [...]}]}: four around its links' arguments.
        own = 2 if isinstance(node, DirectiveCall) else 4 if isinstance(node, MemberChain) else 1
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


def _names_of(node: Any, scope: _Scope) -> tuple[Name, ...] | None:
    """What each name in an inert expression means here (``Expression.names``), in text order.

    Looked up as evaluation would, without running or reporting anything: the evaluation stopped at
    the first inert part, so a later name may be one nothing defines (``resolved`` false). None when
    the text holds an object literal: its keys are a scope of their own, not followed here.
    """
    base = node.span.start
    found: list[Name] = []
    # (node, inside a double-quoted string): there a variable is `${name}`, where no value can go
    stack: list[tuple[Any, bool]] = [(node, False)]
    while stack:
        item, in_string = stack.pop()
        kind = type(item)
        if kind is nodes.Ref or kind is nodes.VarRef:
            variable = kind is nodes.VarRef
            s: _Scope | None = scope
            value: Any = _MISSING
            if variable:
                while s is not None:
                    if item.name in s.values:
                        if item.name not in s.failed:  # a failed one reads as nothing, as its uses fail
                            value = s.values[item.name]
                        break
                    if item.name in s.pending:
                        break
                    s = s.parent
            else:
                s = _defining(scope, item.name)
                if s is not None and s.data is not None and item.name not in s.failed_keys:
                    value = s.data[item.name]
            resolved = value is not _MISSING
            span = item.span
            found.append(
                Name(
                    span.start - base,
                    span.end - base,
                    item.name,
                    variable,
                    value if resolved else None,
                    resolved,
                    in_string,
                )
            )
        elif kind is nodes.Object:
            return None
        elif kind is nodes.Binary:
            stack += ((item.left, False), (item.right, False))
        elif kind is nodes.Unary:
            stack.append((item.operand, False))
        elif kind is nodes.Ternary:
            stack += ((item.condition, False), (item.then, False), (item.otherwise, False))
        elif kind is nodes.Chain:
            stack.append((item.target, False))
            for link in item.links:
                stack += ((arg, False) for arg in link.args or () if type(arg) is not nodes.Bare)
        elif kind is nodes.Directive:
            stack += ((arg, False) for arg in item.args or () if type(arg) is not nodes.Bare)
        elif kind is nodes.Template:
            quoted = not item.span.text.startswith("`")
            stack += ((part, quoted) for part in item.parts if not isinstance(part, str))
        elif kind is nodes.Array:
            stack += ((part, False) for part in item.items)
    found.sort(key=lambda n: n.start)
    return tuple(found)


def _defining(scope: _Scope, name: str) -> _Scope | None:
    """The innermost scope with an earlier key ``name``: where a bare name reads it (None: nowhere)."""
    s: _Scope | None = scope
    while s is not None:
        if s.data is not None and name in s.data:
            return s
        s = s.parent
    return None


def _visible(scope: _Scope, name: str) -> bool:
    """Whether a bare name would find ``name`` as an earlier key."""
    return _defining(scope, name) is not None


def _copy_data(value: Any) -> Any:
    """The containers of ``value`` copied (its leaves shared: they are immutable). Depth <= MAX_DEPTH."""
    if isinstance(value, dict):
        return {key: _copy_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_data(item) for item in value]
    return value


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


def runtime_only_problems(
    data: Any, spans: Mapping[DataPath, Span] | None = None, path: DataPath = ()
) -> list[tuple[DataPath, Any]]:
    """Every runtime-only value in ``data`` with its path (TSK229 is reported for each where it must
    be computed: tusklang/compiler/unknown.py, tusklang/resolver.py). Iterative: any depth."""
    found: list[tuple[DataPath, Any]] = []
    stack: list[tuple[DataPath, Any]] = [(path, data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(((*where, key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*where, index), item) for index, item in reversed(list(enumerate(value))))
        elif is_runtime_only(value):
            found.append((where, value))
    return found


def runtime_only_diagnostic(value: Any, where: str, place: Span | None) -> Diagnostic:
    """TSK229 for one runtime-only value: at the construct itself, with the place that uses it."""
    if isinstance(value, DirectiveCall):
        what = f"`@{value.name}`"
    elif isinstance(value, ForeignCall):
        what = f"`{value.name}(...)`"
    elif isinstance(value, MemberChain):
        what = "a member chain"
    else:
        what = "an expression reading a runtime-only value"
    span = value.span or place
    related = (Related(place, f"`{where}` depends on it"),) if place is not None and place != span else ()
    return Diagnostic(
        "TSK229",
        f"runtime-only: {what} cannot be resolved at compile time (`{where}` depends on it)",
        span,
        hint="only the application computes it at run time; compute the value in the file with "
        "@env, @file, @query or @date, or keep it out of what is compiled",
        related=related,
    )
