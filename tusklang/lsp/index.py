"""What one file defines and references: flags, segments, environments, gates, experiments, variables.

Names live where the seed's config shape puts them. A definition is an object member at
``...targeting.user_segments.<name>`` (segment), ``...targeting.environments.<name>`` (environment),
``...gates.<name>`` (gate), ``...flags.<name>`` (flag), ``...experiments.<name>`` (experiment) or
``$name = ...`` (variable); a reference is a string in an array at ``targeting.user_segments``,
``targeting.environments`` or ``...gates`` / ``required_gates``, a ``$name``, or an ``@file(...)``.

For hover, a bare name in a value (`health: base_path + "/health"`) is kept with the earlier key it
reads (found as the interpreter finds it: in its object, then the enclosing ones), and the values that
are neither keys nor directives get a note: foreign code (`php(...)`), the links of a member chain
(`.where(...)`, `.length`), words as array items (docs/syntax.md).
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
    key_refs: list[tuple[Span, KeyPart | None]] = field(default_factory=list)  # a bare name, the key it reads
    notes: list[tuple[Span, str]] = field(default_factory=list)  # hover text of foreign code, links, words
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

    def key_ref_at(self, offset: int) -> tuple[Span, KeyPart | None] | None:
        for found in self.key_refs:
            if found[0].start <= offset <= found[0].end:
                return found
        return None

    def note_at(self, offset: int) -> tuple[Span, str] | None:
        best = None
        for found in self.notes:  # the innermost: a link's note inside foreign code's, say
            if found[0].start <= offset <= found[0].end and (best is None or found[0].start >= best[0].start):
                best = found
        return best

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
        self.scope: Path = ()  # the path of the object whose members are being walked
        self.known: dict[Path, KeyPart] = {}  # keys walked so far: what a bare name can read

    def members(self, members: Any, prefix: Path) -> None:
        outer, self.scope = self.scope, prefix
        try:
            self._members(members, prefix)
        finally:
            self.scope = outer

    def _members(self, members: Any, prefix: Path) -> None:
        keys = self.index.keys
        definitions = self.index.definitions
        known = self.known
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
                known.setdefault(path, keys[-1])
            else:
                for i, span in enumerate(member.key.spans):
                    keys.append(KeyPart(prefix + parts[: i + 1], span, member))
                    known.setdefault(keys[-1].path, keys[-1])
            value = member.value
            kind = type(value)
            if kind is nodes.Object:
                defines = _DEFINITION_PARENTS.get(path[-3:-1]) or _LAST_PARENT.get(path[-2] if len(path) > 1 else "")
                if defines:
                    name_span = member.key.last_span
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
                elif not isinstance(part, str):  # a backtick template's `${expression}`
                    self.value(part, path)
        elif kind is nodes.Ref:
            self.index.key_refs.append((node.span, self._key_read(node.name)))
        elif kind is nodes.Word:
            self.index.notes.append((node.span, _WORD_NOTE.format(word=node.value)))
        elif kind is nodes.Foreign:
            self.index.notes.append((node.span, _FOREIGN_NOTE.format(name=node.name)))
        elif kind is nodes.Chain:
            self.value(node.target, path)
            for link in node.links:
                what = "method call" if link.args is not None else "member"
                written = f".{link.name}" + ("" if link.args is None else "(...)" if link.args else "()")
                self.index.notes.append((link.name_span, _LINK_NOTE.format(what=what, written=written)))
                for arg in link.args or ():
                    if not isinstance(arg, nodes.Bare):
                        self.value(arg, path)
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

    def _key_read(self, name: str) -> KeyPart | None:
        """The earlier key a bare name reads: in its object, then in the enclosing ones."""
        scope = self.scope
        for depth in range(len(scope), -1, -1):
            found = self.known.get((*scope[:depth], name))
            if found is not None:
                return found
        return None


_WORD_NOTE = "**text** `{word}`: a word alone as an item is that word as text."
_FOREIGN_NOTE = (
    "**foreign code** `{name}(...)`: another language's code, kept verbatim and never read as TuskLang. "
    "Runtime-only: only the application runs it; `tusk check` reports it where a compiled value depends on it."
)
_LINK_NOTE = (
    "**{what}** `{written}` on the value before it. Runtime-only when the value is (a method call always is): "
    "only the application computes it."
)


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
