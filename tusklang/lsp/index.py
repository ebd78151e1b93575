"""What one file defines and references: flags, segments, environments, gates, experiments, variables.

Names live where the seed's config shape puts them. A definition is an object member at
``...targeting.user_segments.<name>`` (segment), ``...targeting.environments.<name>`` (environment),
``...gates.<name>`` (gate), ``...flags.<name>`` (flag), ``...experiments.<name>`` (experiment) or
``$name = ...`` (variable); a reference is a string in an array at ``targeting.user_segments``,
``targeting.environments`` or ``...gates`` / ``required_gates``, a ``$name``, or an ``@file(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..diagnostics import Span, TuskError
from ..source import SourceFile
from ..syntax import nodes
from ..syntax import parser as _parser

Path = tuple[str, ...]

_DEFINITION_PARENTS: dict[Path, str] = {
    ("targeting", "user_segments"): "segment",
    ("targeting", "environments"): "environment",
    ("feature_gates", "gates"): "gate",
}
_LAST_PARENT: dict[str, str] = {"flags": "flag", "experiments": "experiment"}
_REFERENCE_ARRAYS: dict[Path, str] = {
    ("targeting", "user_segments"): "segment",
    ("targeting", "environments"): "environment",
}
_GATE_ARRAYS = frozenset({"gates", "required_gates", "feature_gates"})
REFERABLE = frozenset({"segment", "environment", "gate", "variable", "file"})
_PLAIN = frozenset({nodes.String, nodes.Number, nodes.Bool, nodes.Null, nodes.Range})


class Symbol(NamedTuple):  # tuples, not frozen dataclasses: a 20,000-line file has some 100,000 of these
    kind: str
    name: str
    path: Path
    name_span: Span
    span: Span


class Reference(NamedTuple):
    kind: str
    name: str
    span: Span  # the name itself (inside the quotes, after the `$`)


class KeyPart(NamedTuple):
    path: Path  # full path up to and including this part
    span: Span
    member: Any


@dataclass
class FileIndex:
    source: SourceFile
    document: nodes.Document | None
    definitions: list[Symbol] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    keys: list[KeyPart] = field(default_factory=list)
    directives: list[nodes.Directive] = field(default_factory=list)
    objects: list[tuple[Path, nodes.Object | nodes.Section | nodes.Document]] = field(default_factory=list)
    outline: Any = None  # outline.Outline, filled on the server's index thread on first request

    def definitions_of(self, kind: str) -> list[Symbol]:
        return [d for d in self.definitions if d.kind == kind]

    def reference_at(self, offset: int) -> Reference | None:
        for ref in self.references:
            if ref.span.start <= offset <= ref.span.end:
                return ref
        return None

    def definition_at(self, offset: int) -> Symbol | None:
        for symbol in self.definitions:
            if symbol.name_span.start <= offset <= symbol.name_span.end:
                return symbol
        return None

    def key_at(self, offset: int) -> KeyPart | None:
        for part in self.keys:
            if part.span.start <= offset <= part.span.end:
                return part
        return None

    def directive_at(self, offset: int) -> nodes.Directive | None:
        best = None
        for directive in self.directives:
            if directive.span.start <= offset <= directive.span.end:
                if best is None or directive.span.start >= best.span.start:
                    best = directive
        return best


def recovered_document(text: str, path: str | None = None) -> nodes.Document | None:
    """The document, or as much of it as the parser recovers when the text has errors (as while typing)."""
    tolerant = getattr(_parser, "parse_tolerant", None)
    if tolerant is not None:
        document, _ = tolerant(text, path)
        return document
    try:
        return _parser.parse(text, path)
    except TuskError:
        return None


def build_index(text: str, path: str | None = None) -> FileIndex:
    """The index of ``text``: of its recovered document when it has errors; empty when nothing is recovered."""
    document = recovered_document(text, path)
    if document is None:
        return FileIndex(SourceFile(text, path), None)
    index = FileIndex(document.source, document)
    walker = _Walker(index)
    index.objects.append(((), document))
    walker.members(document.members, ())
    for section in document.sections:
        prefix = tuple(section.key.parts)
        index.objects.append((prefix, section))
        for i, span in enumerate(section.key.spans):
            index.keys.append(KeyPart(prefix[: i + 1], span, section))
        walker.members(section.members, prefix)
    return index


class _Walker:
    def __init__(self, index: FileIndex) -> None:
        self.index = index

    def members(self, members: Any, prefix: Path) -> None:
        keys = self.index.keys
        definitions = self.index.definitions
        for member in members:
            if type(member) is nodes.VarDef:
                definitions.append(
                    Symbol("variable", member.name, prefix, _after_dollar(member.name_span), member.span)
                )
                self.value(member.value, prefix)
                continue
            parts = member.key.parts
            path = prefix + parts
            if len(parts) == 1:
                keys.append(KeyPart(path, member.key.spans[0], member))
            else:
                for i, span in enumerate(member.key.spans):
                    keys.append(KeyPart(prefix + parts[: i + 1], span, member))
            value = member.value
            kind = type(value)
            if kind is nodes.Object:
                defines = _DEFINITION_PARENTS.get(path[-3:-1]) or _LAST_PARENT.get(path[-2] if len(path) > 1 else "")
                if defines:
                    name_span = member.key.spans[-1]
                    definitions.append(Symbol(defines, path[-1], path, _unquoted(name_span), member.span))
            elif kind is nodes.Array:
                refers = _REFERENCE_ARRAYS.get(path[-2:]) or ("gate" if path[-1] in _GATE_ARRAYS else None)
                if refers:
                    for item in value.items:
                        if type(item) is nodes.String:
                            self.index.references.append(Reference(refers, item.value, _unquoted(item.span)))
            elif kind in _PLAIN:
                continue  # nothing inside to index
            self.value(value, path)

    def value(self, node: Any, path: Path) -> None:
        kind = type(node)
        if kind is nodes.Object:
            self.index.objects.append((path, node))
            self.members(node.members, path)
        elif kind is nodes.Array:
            for item in node.items:
                self.value(item, path)
        elif kind is nodes.VarRef:
            self.index.references.append(Reference("variable", node.name, _after_dollar(node.span)))
        elif kind is nodes.Template:
            for part in node.parts:
                if isinstance(part, nodes.VarRef):
                    self.index.references.append(Reference("variable", part.name, _template_name(part)))
        elif kind is nodes.Directive:
            self.index.directives.append(node)
            args = node.args or ()
            if node.name == "file" and args and isinstance(args[0], nodes.String):
                self.index.references.append(Reference("file", args[0].value, _unquoted(args[0].span)))
            for arg in args:
                if not isinstance(arg, nodes.Bare):
                    self.value(arg, path)
        elif kind is nodes.Binary:
            self.value(node.left, path)
            self.value(node.right, path)
        elif kind is nodes.Unary:
            self.value(node.operand, path)
        elif kind is nodes.Ternary:
            self.value(node.condition, path)
            self.value(node.then, path)
            self.value(node.otherwise, path)


def _unquoted(span: Span) -> Span:
    text = span.text
    if len(text) >= 2 and text[0] in "\"'" and text[-1] == text[0] and not text.startswith(text[0] * 3):
        return Span(span.source, span.start + 1, span.end - 1)
    return span


def _after_dollar(span: Span) -> Span:
    text = span.text
    return Span(span.source, span.start + 1, span.end) if text.startswith("$") else span


def _template_name(ref: nodes.VarRef) -> Span:
    """`${name}` inside a string: the span of `name`."""
    text = ref.span.text
    start = ref.span.start + (text.find(ref.name) if ref.name in text else 0)
    return Span(ref.span.source, start, start + len(ref.name))
