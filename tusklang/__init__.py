"""tusklang: feature flags as code. Parse, resolve, validate and compile TuskLang.

The public API, in the style of tomllib/json::

    doc = tusklang.parse(text, path="flags.tsk")   # AST with positions; never runs anything
    data = tusklang.loads(text)                     # plain data; directives left inert
    text = tusklang.dumps(data)                     # canonical TuskLang
    data = tusklang.resolve(doc, env=..., database=...)  # runs @env, @query, @file, ...

Every problem a user can cause raises ``TuskError`` carrying ``Diagnostic`` objects.
"""

from __future__ import annotations

from typing import IO, Any

from ._gc import gc_paused
from ._version import __version__ as __version__
from .diagnostics import Diagnostic, Severity, Span, TuskError
from .interpret import Interpreter
from .syntax.nodes import Document
from .syntax.parser import parse
from .syntax.writer import dumps
from .values import DirectiveCall, Expression, Identifier

__all__ = [
    "Client",
    "Diagnostic",
    "DirectiveCall",
    "Document",
    "Expression",
    "Identifier",
    "Severity",
    "Span",
    "TuskError",
    "compile",
    "dumps",
    "load",
    "loads",
    "parse",
    "resolve",
]


def loads(text: str, path: str | None = None) -> dict[str, Any]:
    """Parse TuskLang text into plain data. Directives stay inert ``DirectiveCall`` values."""
    document = parse(text, path)
    interpreter = Interpreter(document)
    with gc_paused():  # as in parse: many small acyclic objects, no cycles to collect
        data = interpreter.run()
    if any(d.is_error for d in interpreter.diagnostics):
        raise TuskError(interpreter.diagnostics)
    return data


def load(fp: IO[bytes] | IO[str], path: str | None = None) -> dict[str, Any]:
    """``loads`` for an open file (binary or text)."""
    raw = fp.read()
    name = path if path is not None else getattr(fp, "name", None)
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise TuskError([Diagnostic("TSK001", f"not UTF-8 text (invalid byte at offset {exc.start})")]) from None
    return loads(raw, name if isinstance(name, str) else None)


def __getattr__(name: str) -> Any:
    # Heavier parts are imported on first use so `import tusklang` stays a parser import.
    if name == "resolve":
        from .resolver import resolve

        return resolve
    if name == "compile":
        from .compiler import compile_files

        return compile_files
    if name == "Client":
        from .evaluate import Client

        return Client
    raise AttributeError(f"module 'tusklang' has no attribute {name!r}")
