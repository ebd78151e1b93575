"""tusklang: feature flags as code. Parse, resolve, validate and compile TuskLang.

The public API, in the style of tomllib/json::

    doc = tusklang.parse(text, path="flags.tsk")   # AST with positions; never runs anything
    data = tusklang.loads(text)                     # plain data; directives left inert
    text = tusklang.dumps(data)                     # canonical TuskLang
    data = tusklang.resolve(doc, env=..., database=...)  # runs @env, @query, @file, ...

Every problem a user can cause raises ``TuskError`` carrying ``Diagnostic`` objects.
"""

from __future__ import annotations

from ._version import __version__ as __version__

TYPE_CHECKING = False  # typing itself is not imported: `import tusklang` stays this file (start-up)
if TYPE_CHECKING:
    from typing import IO, Any

    from .compiler import compile_files as compile
    from .diagnostics import Diagnostic, Severity, Span, TuskError
    from .evaluate import Client
    from .resolver import resolve
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
    from ._gc import gc_paused
    from .diagnostics import TuskError
    from .interpret import Interpreter
    from .syntax.parser import parse

    document = parse(text, path)
    interpreter = Interpreter(document)
    with gc_paused():  # as in parse: many small acyclic objects, no cycles to collect
        data = interpreter.run()
    if any(d.is_error for d in interpreter.diagnostics):
        raise TuskError(interpreter.diagnostics)
    return data


def load(fp: IO[bytes] | IO[str], path: str | None = None) -> dict[str, Any]:
    """``loads`` for an open file (binary or text)."""
    from .diagnostics import Diagnostic, TuskError

    raw = fp.read()
    name = path if path is not None else getattr(fp, "name", None)
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise TuskError([Diagnostic("TSK001", f"not UTF-8 text (invalid byte at offset {exc.start})")]) from None
    return loads(raw, name if isinstance(name, str) else None)


# Each public name, from the module that defines it. Imported on first use (module __getattr__, PEP 562):
# `import tusklang` costs only this file, so `tusk --help` and a service that only evaluates snapshots do
# not pay for the parser, the interpreter or the compiler (tests/test_startup.py).
_LAZY: dict[str, tuple[str, str]] = {
    "Diagnostic": ("diagnostics", "Diagnostic"),
    "Severity": ("diagnostics", "Severity"),
    "Span": ("diagnostics", "Span"),
    "TuskError": ("diagnostics", "TuskError"),
    "Document": ("syntax.nodes", "Document"),
    "parse": ("syntax.parser", "parse"),
    "dumps": ("syntax.writer", "dumps"),
    "DirectiveCall": ("values", "DirectiveCall"),
    "Expression": ("values", "Expression"),
    "Identifier": ("values", "Identifier"),
    "Interpreter": ("interpret", "Interpreter"),
    "resolve": ("resolver", "resolve"),
    "compile": ("compiler", "compile_files"),
    "Client": ("evaluate", "Client"),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'tusklang' has no attribute {name!r}") from None
    from importlib import import_module

    value = getattr(import_module(f".{module_name}", __name__), attribute)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
