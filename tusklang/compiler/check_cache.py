"""`tusk check`'s schema and lint findings, kept on disk for input already checked (as ruff keeps its lint
results), so checking unchanged input again loads no schema and no pydantic (issue 19).

The key is everything those findings depend on: the tusklang code that makes them and the pydantic it
validates with (sizes and modification times of their files), the Python version, every file of the
project (path, display name and text) and each flag file's resolved data, with the paths that came from
`@env` (so the values `@env` read count), the strict-secrets setting and the lint options. Findings that
depend on the clock (the lint age rules: `management_config.flag_lifecycle`) are cached only under a
fixed clock (`--now`, SOURCE_DATE_EPOCH), which is then part of the key. A value is a list of plain
tuples in `marshal` (loading it runs nothing); its spans name the project's files by index, so cached
findings carry the very SourceFile objects of this run. The syntax and semantic diagnostics are never
cached: the project is read and interpreted every time, and they come from that. Not in the key: the
system's time-zone database that `time_zone` names are checked against (an update that adds or drops
a zone is seen once the entry is gone: TUSK_NO_CACHE=1, or remove the folder).

Best effort, as the grammar's table cache next to it (tusklang/syntax/parser.py): any problem reading or
writing means checking as if nothing were cached. `$XDG_CACHE_HOME/tusklang/check/` (`~/.cache/...`;
`%LOCALAPPDATA%` on Windows), at most ``MAX_ENTRIES`` files; `TUSK_NO_CACHE=1` turns it off.
"""

from __future__ import annotations

import marshal
import os
import sys
from collections.abc import Sequence
from dataclasses import fields, is_dataclass
from typing import Any

from ..cache import cache_folder
from ..diagnostics import Diagnostic, Related, Severity, Span
from ..project import FileData, Project
from ..source import SourceFile
from .options import LintOptions

try:  # hashlib's own blake2b, without importing hashlib (which loads OpenSSL: ~3% of a cached check)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover (a Python built without it)
    from hashlib import blake2b

_FORMAT = b"tusklang-check-cache/2\n"
MAX_ENTRIES = 256
_code_fingerprint: bytes | None = None


def _directory() -> str | None:
    folder = cache_folder()
    return os.path.join(folder, "check") if folder else None


# The code that runs between the loaded project and the findings: tusklang's own modules (the top level
# and these packages) and pydantic's (its messages are in the findings). Not every tusklang file: a stat
# each is most of what a cached check spends here.
_PACKAGES = ("", "compiler", "schema", "snapshot", "project", "syntax")
_PYDANTIC_FILES = (("pydantic", ("__init__.py", "version.py")), ("pydantic_core", ("__init__.py", "core_schema.py")))


def _code() -> bytes:
    """Sizes and modification times of the code the findings depend on, and the Python version."""
    global _code_fingerprint
    if _code_fingerprint is None:
        from importlib.util import find_spec

        files: list[str] = []
        top = os.path.dirname(os.path.dirname(__file__))
        for package in _PACKAGES:
            folder = os.path.join(top, package)
            files.extend(sorted(e.path for e in os.scandir(folder) if e.name.endswith(".py")))
        for name, wanted in _PYDANTIC_FILES:
            spec = find_spec(name)
            if spec is None or not spec.submodule_search_locations:
                raise OSError(f"{name} not found")
            folder = spec.submodule_search_locations[0]
            binary = [e.path for e in os.scandir(folder) if e.name.startswith("_pydantic_core.")]
            files.extend([os.path.join(folder, w) for w in wanted] + sorted(binary))
        stats = [(path, info.st_mtime_ns, info.st_size) for path in files for info in (os.stat(path),)]
        _code_fingerprint = marshal.dumps((sys.version, sys.implementation.cache_tag, stats), 2)
    return _code_fingerprint


def _sources(project: Project) -> list[SourceFile]:
    out: list[SourceFile] = []
    for file in project.files:
        source = file.source or (file.document.source if file.document is not None else None)
        if source is not None and all(source is not known for known in out):
            out.append(source)
    return out


def _uses_clock(sources: Sequence[FileData]) -> bool:
    for source in sources:
        block = (source.data or {}).get("management_config")
        if block is not None and (not isinstance(block, dict) or "flag_lifecycle" in block):
            return True
    return False


def key(project: Project, sources: Sequence[FileData], options: LintOptions | None) -> str | None:
    """The cache key of ``analyse(project, sources, options)``'s findings, None when they are not cached."""
    options = options or LintOptions()
    now = options.now or project.settings.now
    if now is None and _uses_clock(sources):
        return None
    parts = (
        [(f.path, f.display, f.text) for f in project.files],
        [(s.file.path, s.listed) for s in sources],
        (project.execute, project.settings.strict_secrets, sorted(options.errors), sorted(options.ignored)),
        now.isoformat() if now is not None else None,
    )
    digest = blake2b(_FORMAT, digest_size=32)
    digest.update(_code())
    digest.update(marshal.dumps(parts, 2))  # version 2: no back-references, so equal input, equal bytes
    for source in sources:
        digest.update(_canonical(source.data))
        digest.update(_canonical(source.taint))
    return digest.hexdigest()


def _canonical(value: Any) -> bytes:
    """Bytes that differ when ``value`` does: marshal's own (C, fast) for plain data, else ``_plain``'s."""
    try:
        return b"m" + marshal.dumps(value, 2)
    except ValueError:  # an inert directive value, a Span, a set: spelt out (5,000 flags: ~0.5 s)
        return b"p" + marshal.dumps(_plain(value), 2)


def _plain(value: Any) -> Any:
    """``value`` as tuples of marshal's types, every kind tagged; TypeError for a value it cannot show."""
    if isinstance(value, Span):  # before int: a Span is one
        return ("span", value.source.name, value.start, value.end)
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict):
        return ("dict", [(_plain(k), _plain(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (type(value).__name__, [_plain(item) for item in value])
    if isinstance(value, set | frozenset):  # taint: set order differs between processes
        return ("set", sorted((_plain(item) for item in value), key=repr))
    if is_dataclass(value) and not isinstance(value, type):  # the inert values: DirectiveCall, Expression...
        names = [f.name for f in fields(value)]
        return (type(value).__qualname__, [_plain(getattr(value, name)) for name in names])
    raise TypeError(f"not cached: a {type(value).__name__} in the data")


def load(cache_key: str, project: Project) -> list[Diagnostic] | None:
    folder = _directory()
    if folder is None:
        return None
    try:
        with open(os.path.join(folder, cache_key), "rb") as file:
            raw = file.read()
        if not raw.startswith(_FORMAT):
            return None
        stored_key, rows = marshal.loads(raw[len(_FORMAT) :])
        if stored_key != cache_key:
            return None
        sources = _sources(project)

        def span(row: Any) -> Any:
            return None if row is None else Span(sources[row[0]], row[1], row[2])

        return [
            Diagnostic(
                code, message, span(at), Severity(severity), hint, tuple(Related(span(r), m) for r, m in related)
            )
            for code, message, at, severity, hint, related in rows
        ]
    except (OSError, ValueError, EOFError, TypeError, IndexError):
        return None


# What an entry holds of a diagnostic: a field added to these classes would be lost, so nothing is kept.
_SHAPES = {Diagnostic: ("code", "message", "span", "severity", "hint", "related"), Related: ("span", "message")}


def store(cache_key: str, project: Project, found: Sequence[Diagnostic]) -> None:
    folder = _directory()
    if folder is None or any(tuple(f.name for f in fields(c)) != shape for c, shape in _SHAPES.items()):
        return
    if Span._fields != ("source", "start", "end"):
        return
    sources = _sources(project)

    def span(value: Span | None) -> tuple[int, int, int] | None:
        if value is None:
            return None
        index = next(i for i, known in enumerate(sources) if known is value.source)  # StopIteration: not ours
        return (index, value.start, value.end)

    try:
        rows = [
            (d.code, d.message, span(d.span), str(d.severity), d.hint, [(span(r.span), r.message) for r in d.related])
            for d in found
        ]
        os.makedirs(folder, mode=0o700, exist_ok=True)
        path = os.path.join(folder, cache_key)
        partial = f"{path}.{os.getpid()}.tmp"
        with open(partial, "wb") as file:
            file.write(_FORMAT + marshal.dumps((cache_key, rows)))
        os.replace(partial, path)  # two processes writing at once: each rename is whole
        _prune(folder)
    except (OSError, ValueError, StopIteration):
        pass


def _prune(folder: str) -> None:
    entries = list(os.scandir(folder))
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda e: e.stat().st_mtime_ns)
    for entry in entries[: len(entries) - MAX_ENTRIES]:
        try:
            os.unlink(entry.path)
        except OSError:
            pass
