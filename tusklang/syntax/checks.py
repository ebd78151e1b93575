"""Checks on a parsed document that the grammar cannot express: duplicate and conflicting keys.

Every problem is collected, so one run reports all of them. The rules (also in docs/syntax.md):
a key may be assigned once per object; dotted keys and `[section]` headers create objects
implicitly and may extend them, but an object written out with `{ ... }` is complete and a later
dotted key may not add to it; a `[section]` header may appear once.
"""

from __future__ import annotations

from typing import Any

from ..diagnostics import Diagnostic, Related, Span
from . import nodes


class _Slot:
    """What a key at one level holds: a value, or an object (written out or implicit)."""

    __slots__ = ("children", "explicit", "is_object", "span")

    def __init__(self, span: Span, is_object: bool, explicit: bool) -> None:
        self.span = span
        self.is_object = is_object
        self.explicit = explicit
        self.children: dict[str, _Slot] = {}


def check_document(document: nodes.Document) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    root = _Slot(document.span, True, False)
    _check_members(document.members, root, problems)
    top_keys = _lone_names(document.members, set(), problems)
    for section in document.sections:
        _lone_names(section.members, set(top_keys), problems)
    headers: dict[tuple[str, ...], Span] = {}
    for section in document.sections:
        first = headers.get(section.key.parts)
        if first is not None:
            problems.append(
                Diagnostic(
                    "TSK120",
                    f"section `[{section.key.dotted}]` is declared twice",
                    section.key.span,
                    related=(Related(first, "first declared here"),),
                    hint="merge the two sections into one",
                )
            )
            continue
        headers[section.key.parts] = section.key.span
        slot = _walk(root, section.key, problems, implicit_leaf=True)
        if slot is not None:
            _check_members(section.members, slot, problems)
    return problems


def _lone_names(members: tuple[Any, ...], known: set[str], problems: list[Diagnostic]) -> set[str]:
    """A statement that is a name alone (`response`) must name an earlier key: otherwise the line is
    most likely a member missing its separator (a half-typed `port`), and is reported as one."""
    for member in members:
        if type(member) is nodes.Member:
            known.add(member.key.parts[0])
        elif type(member) is nodes.Statement and type(member.value) is nodes.Ref:
            name = member.value.name
            if name not in known and member.value.span.end - member.value.span.start == len(name):
                problems.append(
                    Diagnostic(
                        "TSK100",
                        f"expected `=` or `:` after the key `{name}`",
                        member.value.span,
                        hint=f"write `{name} = value`; a name alone on its line is a statement only when it "
                        "names an earlier key",
                    )
                )
    return known


def _check_members(
    members: tuple[nodes.Member | nodes.VarDef | nodes.Statement, ...], scope: _Slot, problems: list[Diagnostic]
) -> None:
    if not scope.children and _simple_and_unique(members):
        # Fast path for the usual object: plain keys, each once. Only nested values need a look.
        value: Any  # not the node union: narrowing `type(value) is not ...` over it took mypy minutes
        for member in members:
            value = member.value
            kind = type(value)
            if isinstance(value, nodes.Object):
                _check_members(value.members, _Slot(member.key.span, True, True), problems)  # type: ignore[union-attr]
            elif kind is not nodes.String and kind is not nodes.Number and kind is not nodes.Bool:
                _check_value(value, problems)
        return
    variables: dict[str, Span] = {}
    for member in members:
        if type(member) is nodes.Statement:
            _check_value(member.value, problems)
            continue
        if isinstance(member, nodes.VarDef):
            first = variables.get(member.name)
            if first is not None:
                problems.append(
                    Diagnostic(
                        "TSK121",
                        f"variable `${member.name}` is defined twice in the same object",
                        member.name_span,
                        related=(Related(first, "first defined here"),),
                        hint="rename one of them, or remove the duplicate",
                    )
                )
            else:
                variables[member.name] = member.name_span
            _check_value(member.value, problems)
            continue
        key = member.key
        parent = scope
        if len(key.parts) > 1:
            walked = _walk(scope, nodes.Key(key.parts[:-1], key.spans[:-1], key.span), problems, implicit_leaf=True)
            if walked is None:
                _check_value(member.value, problems)
                continue
            parent = walked
        name = key.parts[-1]
        value = member.value
        is_object = isinstance(value, nodes.Object)
        existing = parent.children.get(name)
        if existing is not None:
            problems.append(_duplicate(key, existing.span))
            _check_value(member.value, problems)
            continue
        slot = _Slot(key.span, is_object, True)
        parent.children[name] = slot
        if isinstance(value, nodes.Object):
            _check_members(value.members, slot, problems)
        else:
            _check_value(value, problems)


# Built from a list typed `type`: a set display of these classes made mypy join their types (minutes).
_LEAF_TYPES: list[type] = [nodes.String, nodes.Number, nodes.Bool, nodes.Null, nodes.Word, nodes.Ref, nodes.VarRef]
_LEAVES = frozenset(_LEAF_TYPES)


def _check_value(value: object, problems: list[Diagnostic]) -> None:
    """Objects nested in arrays, directive arguments and expressions get the same checks."""
    if isinstance(value, nodes.Object):
        _check_members(value.members, _Slot(value.span, True, True), problems)
    elif isinstance(value, nodes.Array):
        for item in value.items:
            if type(item) not in _LEAVES:  # most arrays hold scalars only: no call per item
                _check_value(item, problems)
    elif isinstance(value, nodes.Directive) and value.args:
        for arg in value.args:
            _check_value(arg, problems)
    elif isinstance(value, nodes.Binary):
        _check_value(value.left, problems)
        _check_value(value.right, problems)
    elif isinstance(value, nodes.Ternary):
        for part in (value.condition, value.then, value.otherwise):
            _check_value(part, problems)
    elif isinstance(value, nodes.Unary):
        _check_value(value.operand, problems)
    elif isinstance(value, nodes.Chain):
        _check_value(value.target, problems)
        for link in value.links:
            # typed Any: mypy spends minutes joining `link.args or ()` over the union of node types
            args: tuple[Any, ...] = link.args or ()
            for arg in args:
                _check_value(arg, problems)
    elif isinstance(value, nodes.Template):
        parts: tuple[Any, ...] = value.parts  # Any: see above
        for piece in parts:
            if not isinstance(piece, str):
                _check_value(piece, problems)


def _walk(scope: _Slot, key: nodes.Key, problems: list[Diagnostic], implicit_leaf: bool) -> _Slot | None:
    """Descend (creating implicit objects) along ``key``; None after reporting a conflict."""
    slot = scope
    for index, part in enumerate(key.parts):
        child = slot.children.get(part)
        span = key.spans[index]
        if child is None:
            child = _Slot(span, True, False)
            slot.children[part] = child
        elif not child.is_object:
            prefix = ".".join(key.parts[: index + 1])
            problems.append(
                Diagnostic(
                    "TSK122",
                    f"`{prefix}` already holds a value, so it cannot also hold keys",
                    span,
                    related=(Related(child.span, f"`{prefix}` is assigned here"),),
                )
            )
            return None
        elif child.explicit:
            prefix = ".".join(key.parts[: index + 1])
            problems.append(
                Diagnostic(
                    "TSK122",
                    f"`{prefix}` is written out as `{{ ... }}` elsewhere; add this key inside those braces",
                    span,
                    related=(Related(child.span, f"`{prefix}` is defined here"),),
                )
            )
            return None
        slot = child
    return slot


def _duplicate(key: nodes.Key, first: Span) -> Diagnostic:
    return Diagnostic(
        "TSK120",
        f"duplicate key `{key.dotted}`",
        key.span,
        related=(Related(first, "first defined here"),),
        hint="each key may appear once per object; remove or rename one of them",
    )


def _simple_and_unique(members: tuple[nodes.Member | nodes.VarDef | nodes.Statement, ...]) -> bool:
    names = set()
    for member in members:
        if type(member) is not nodes.Member or len(member.key.parts) != 1:
            return False
        names.add(member.key.parts[0])
    return len(names) == len(members)
