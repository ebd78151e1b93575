"""`load_project`: the one way a tool reads a TuskLang project.

`tusk compile`, `tusk check`, `tusk parse --resolve`, `tusk dashboard`, `tusk rollout` and the language
server all read files through here, with one Settings, so they see the same data, the same source
map and the same problems at the same places. ``execute`` says whether directives run (compile) or
only what is safe statically runs (`tusk check`, the editor: see tusklang/directives/__init__.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from ..diagnostics import Diagnostic, Related, Span, TuskError
from ..directives import ResolveContext
from ..source import SourceFile
from ..suggest import did_you_mean
from ..syntax.nodes import Document
from ..syntax.parser import parse, parse_tolerant
from .errors import InputError, read_input
from .resolving import INCLUDED_HERE, context_for, include_chains, run_document, with_include_chain
from .settings import Settings
from .sourcemap import Locator, Path

# The top-level blocks of a flag project (with POLICY_BLOCK, the fields of
# tusklang.schema.project.ProjectConfig; a test keeps them equal). A file that defines none of them is
# general TuskLang configuration.
FLAG_BLOCKS = frozenset(
    {
        "feature_flags",
        "ab_testing_config",
        "feature_analytics_config",
        "feature_flags_data",
        "real_time_feature_dashboard",
        "management_config",
        "performance_config",
        "security_config",
    }
)
# A delivery policy at the top level: a project block when its file is named (`tusk check policy.tsk`,
# `tusk compile`), but a file that holds only a policy does not join the flags of a directory it is
# found in: a team keeps one policy file per release (`tusk rollout start --config`), and two of them
# in one project would be the same block defined twice.
POLICY_BLOCK = "progressive_delivery"


_BLOCK_NAMES = sorted(FLAG_BLOCKS | {POLICY_BLOCK})
_HASH_SLICE = 1 << 20  # characters encoded at a time for a file's hash
_KEYS_EXAMINED = 64  # top-level keys looked at for a misspelt block (bounded work on huge plain files)

# "Many files, one project": objects whose members may come from several files, each member from one
# file. Two files may both write `feature_flags = { flags = { ... } }`; the same flag (segment,
# environment, experiment) in both, or any other key in both (`feature_flags.storage`), is TSK318 naming
# both places.
MERGED: frozenset[Path] = frozenset(
    {
        (),
        ("feature_flags",),
        ("feature_flags", "flags"),
        ("feature_flags", "targeting"),
        ("feature_flags", "targeting", "user_segments"),
        ("feature_flags", "targeting", "environments"),
        ("ab_testing_config",),
        ("ab_testing_config", "experiments"),
    }
)
_MEMBER_NAMES: dict[Path, str] = {
    ("feature_flags", "flags"): "flag",
    ("feature_flags", "targeting", "user_segments"): "segment",
    ("feature_flags", "targeting", "environments"): "environment",
    ("ab_testing_config", "experiments"): "experiment",
}


@dataclass(frozen=True)
class ProjectFile:
    """A file the project read: one asked for, or one brought in by @file."""

    path: str  # the name its spans carry: as given, or (included) relative to the working folder
    display: str  # relative to the project root: provenance and snapshot origins
    text: str
    # The parsed document. A file asked for that has syntax errors has, in a static load, the document
    # the parser could recover (for an editor's outline; ``parsed`` is false and nothing is interpreted
    # from it), else None.
    document: Document | None
    # The @file calls that brought it in, innermost first; () for a file asked for.
    included_from: tuple[Related, ...] = ()
    source: SourceFile | None = None
    parsed: bool = True  # false when the text has syntax errors

    @property
    def sha256(self) -> str:
        import hashlib  # here: hashlib loads OpenSSL, which `tusk check` never needs (issue 19)

        # A slice at a time: the whole text encoded at once is a copy as big as the file, at the load's
        # peak (+23 MB on a 47 MB file, where the compile's peak is).
        digest = hashlib.sha256()
        text = self.text
        for start in range(0, len(text), _HASH_SLICE):
            digest.update(text[start : start + _HASH_SLICE].encode("utf-8"))
        return digest.hexdigest()


@dataclass
class FileData:
    """One asked-for file's data (directives run or left unknown) and its source map."""

    file: ProjectFile
    data: dict[str, Any] | None  # None when the file did not parse
    spans: dict[Path, Span] = field(default_factory=dict)
    key_spans: dict[Path, Span] = field(default_factory=dict)
    # data path -> spans of the @env calls its value depends on (tusklang/compiler/secrets.py)
    taint: dict[Path, set[Span]] = field(default_factory=dict)
    queries: list[dict[str, Any]] = field(default_factory=list)
    # false for a file found in a directory given instead of files: it joins the project's flags only
    # when it defines a flag block (a plain configuration file beside them is checked, not compiled)
    listed: bool = True

    @property
    def is_flag_file(self) -> bool:
        """Whether the file defines a flag block, or something close to one's name (`feature_flag`): a
        misspelt block must be reported (did you mean), not make the file general configuration."""
        if self.data is None:
            return False
        if not FLAG_BLOCKS.isdisjoint(self.data):
            return True
        return any(
            did_you_mean(key, _BLOCK_NAMES) for key in list(self.data)[:_KEYS_EXAMINED] if key != POLICY_BLOCK
        )

    @property
    def is_project_file(self) -> bool:
        """Whether the file's data is analysed as a flag project's: a flag file, or a named policy file."""
        return self.is_flag_file or (self.listed and self.data is not None and POLICY_BLOCK in self.data)


@dataclass
class Merged:
    """Several files' data as one project: each top-level block from one file."""

    data: dict[str, Any]
    locator: Locator
    taint: dict[Path, set[Span]]
    diagnostics: list[Diagnostic]  # TSK318: a flag (segment, experiment, key) defined in two files


@dataclass
class Project:
    settings: Settings
    root: FsPath
    execute: bool
    # Every file read: the ones asked for, in order, then each included one once (outer first).
    files: list[ProjectFile]
    sources: list[FileData]  # one per file asked for, in order
    # Syntax, semantics and directive problems, file by file in the order given (included files' at
    # their own lines, with the include chain as related spans), each reported once.
    diagnostics: list[Diagnostic]
    # each included file's source -> the @file calls that brought it in, innermost first
    chains: dict[SourceFile, tuple[Span, ...]] = field(default_factory=dict)

    @property
    def is_flag_project(self) -> bool:
        return any(source.is_project_file for source in self.sources)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)

    @property
    def flag_sources(self) -> list[FileData]:
        """The files whose data is the project's flags: every file named, and the flag files of a directory."""
        return [source for source in self.sources if source.listed or source.is_flag_file]

    def merge(self, sources: Sequence[FileData] | None = None) -> Merged:
        """The data of ``sources`` (default: ``flag_sources``) as one project, with its source map."""
        return _merge(self.flag_sources if sources is None else sources, self.files)

    def with_include_chain(self, diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
        """Diagnostics found later (schema, lint) inside an included file, with its include chain."""
        return with_include_chain(diagnostics, self.chains)


def load_project(
    paths: Sequence[str | os.PathLike[str]],
    settings: Settings,
    *,
    execute: bool,
    overlays: Mapping[str, str] | None = None,
) -> Project:
    """Read, parse and interpret ``paths`` as one project.

    A path may be a directory: it stands for the `.tsk` files below it (sorted, hidden entries
    skipped), except those another file of the project brings in with `@file` (they are read as part
    of it). Problems in the files are diagnostics on the Project, never exceptions; a file asked for
    that cannot be read (and has no overlay) is an InputError, and so is a directory without a `.tsk`
    file. ``overlays`` maps file paths (any spelling of them) to text used instead of the file's: an
    editor's unsaved buffers, for the files asked for and for included ones alike.
    """
    listed = expand_paths([os.fspath(p) for p in paths])
    names = [name for name, _ in listed]
    texts = {_key(k): v for k, v in (overlays or {}).items()}
    first = os.fspath(paths[0]) if paths else "."
    default_root = FsPath(first) if os.path.isdir(first) else FsPath(first).parent
    root = (settings.root or default_root).resolve()
    given = {_key(name): name for name in names}
    absolute = any(os.path.isabs(name) for name in names)
    ctx = context_for(settings, base_dir=root, root=root, execute=execute, names=given, absolute=absolute)
    ctx.overlays = texts
    own_connection = ctx.database is None
    loaded: list[tuple[FileData, list[Diagnostic]]] = []
    try:
        for name, named in listed:
            text = texts.get(_key(name))
            if text is None:
                text = read_input(name)
            source, found = _load_one(name, text, root, ctx)
            source.listed = named
            loaded.append((source, found))
    finally:
        if own_connection:
            ctx.close()
    # A file of a directory that another file includes is part of that file, reported there (with the
    # include chain), not a project file of its own.
    brought_in = {_key(str(inc.path)) for inc in ctx.included}
    files: list[ProjectFile] = []
    sources: list[FileData] = []
    diagnostics: list[Diagnostic] = []
    for source, found in loaded:
        if not source.listed and _key(source.file.path) in brought_in:
            continue
        files.append(source.file)
        sources.append(source)
        diagnostics.extend(found)
    seen = {_key(f.path) for f in files}
    for included in ctx.included:
        if _key(str(included.path)) in seen:
            continue
        seen.add(_key(str(included.path)))
        files.append(
            ProjectFile(
                included.name,
                _relative(included.path, root),
                included.text,
                included.document,
                tuple(Related(call, INCLUDED_HERE) for call in included.calls),
                included.source,
            )
        )
    chains = include_chains(ctx.included)
    # The include hook's closure holds the context, a cycle: with the collector paused (as a compile
    # runs) the context, and the AST of every included file it records, outlived the load.
    ctx.include = None
    diagnostics = _once(with_include_chain(diagnostics, chains))
    return Project(settings, root, execute, files, sources, diagnostics, chains)


def expand_paths(paths: Sequence[str]) -> list[tuple[str, bool]]:
    """Each path with whether it was named: a directory becomes its `.tsk` files (recursively, sorted by
    path, hidden files and folders skipped), each once. Raises InputError for a directory without any."""
    out: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for path in paths:
        if path != "-" and os.path.isdir(path):
            found = sorted(
                (p for p in FsPath(path).rglob("*.tsk") if p.is_file() and not _hidden(p.relative_to(path))),
                key=lambda p: p.relative_to(path).as_posix(),
            )
            if not found:
                raise InputError(f"{path}: a directory without .tsk files")
            entries = [(str(p), False) for p in found]
        else:
            entries = [(path, True)]
        for name, named in entries:
            if _key(name) not in seen:
                seen.add(_key(name))
                out.append((name, named))
    return out


def _hidden(relative: FsPath) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _load_one(name: str, text: str, root: FsPath, ctx: ResolveContext) -> tuple[FileData, list[Diagnostic]]:
    display = _relative(FsPath(name), root)
    if ctx.execute:
        try:
            document, problems = parse(text, name), []
        except TuskError as exc:
            document, problems = None, exc.diagnostics
    else:
        document, problems = parse_tolerant(text, name)  # the same problems, and what can be recovered
    if problems:
        first = problems[0].span
        source = document.source if document is not None else first.source if first else None
        file = ProjectFile(name, display, text, document, (), source, parsed=False)
        return FileData(file, None), problems
    assert document is not None
    file = ProjectFile(name, display, text, document, (), document.source)
    ctx.base_dir = FsPath(name).resolve().parent
    before = len(ctx.queries)
    interpreter, data = run_document(document, ctx)
    queries = ctx.queries[before:]
    return (
        FileData(file, data, interpreter.spans, interpreter.key_spans, interpreter.taint, queries),
        interpreter.diagnostics,
    )


def _merge(sources: Sequence[FileData], files: Sequence[ProjectFile]) -> Merged:
    data: dict[str, Any] = {}
    spans: dict[Path, Span] = {}
    key_spans: dict[Path, Span] = {}
    taint: dict[Path, set[Span]] = {}
    diagnostics: list[Diagnostic] = []
    for source in sources:
        rejected: list[Path] = []
        _merge_into(data, source.data or {}, (), source, Locator(spans, key_spans), rejected, diagnostics)
        if not rejected and len(sources) == 1 and () not in source.spans and () not in source.key_spans:
            # One file: its tables are the project's, shared rather than copied (nothing writes to a
            # source map once built); a copy of an entry per value was 85 MB at 50,000 flags.
            spans, key_spans = source.spans, source.key_spans
        elif not rejected:
            # The usual case: take the span tables whole, not entry by entry; an object several files
            # add to keeps the position of its first definition, its key with it (a key the text
            # tells is not stored: then no later file's may stand for it).
            kept = {p: spans[p] for p in MERGED if p in spans}
            kept_keys = {p: key_spans.get(p) for p in kept}
            spans.update(source.spans)
            key_spans.update(source.key_spans)
            spans.update(kept)
            for p, key in kept_keys.items():
                if key is None:
                    key_spans.pop(p, None)
                else:
                    key_spans[p] = key
        else:
            # keys first: an object's key follows its value's position, taken from the first file
            for table, own in ((key_spans, source.key_spans), (spans, source.spans)):
                for path, span in own.items():
                    if (path in MERGED and path in spans) or _under(path, rejected):
                        continue
                    table[path] = span
        for path, origins in source.taint.items():
            if path and not _under(path, rejected):
                taint[path] = taint.get(path, set()) | origins
    spans.pop((), None)  # the whole document is no block's position
    key_spans.pop((), None)
    display = {f.path: f.display for f in files}
    return Merged(data, Locator(spans, key_spans, display), taint, diagnostics)


def _merge_into(
    target: dict[str, Any],
    incoming: dict[str, Any],
    path: Path,
    source: FileData,
    merged: Locator,
    rejected: list[Path],
    diagnostics: list[Diagnostic],
) -> None:
    for key, value in incoming.items():
        sub = (*path, key)
        if key not in target:
            target[key] = _owned(value, sub)
        elif sub in MERGED and isinstance(target[key], dict) and isinstance(value, dict):
            _merge_into(target[key], value, sub, source, merged, rejected, diagnostics)
        else:
            rejected.append(sub)
            first = merged.written_key(sub)
            what = _MEMBER_NAMES.get(path)
            name = f"{what} `{key}`" if what else f"`{'.'.join(map(str, sub))}`"
            diagnostics.append(
                Diagnostic(
                    "TSK318",
                    f"{name} is defined in two files",
                    Locator(source.spans, source.key_spans).written_key(sub) or source.spans.get(sub),
                    hint=(
                        f"a project's files may each add {what}s, but each {what} is defined in one file"
                        if what
                        else "files may each add flags, segments, environments and experiments; "
                        "any other key is written in one file"
                    ),
                    related=(Related(first, "first defined here"),) if first else (),
                )
            )


def policy_defined_twice(data: Mapping[str, Any], locator: Locator) -> Diagnostic | None:
    """TSK318 when a project holds `progressive_delivery` both at the top level and under feature_flags:
    `tusk rollout` would read the top-level one only, so check, compile and rollout refuse both."""
    flags = data.get("feature_flags")
    if POLICY_BLOCK not in data or not isinstance(flags, Mapping) or POLICY_BLOCK not in flags:
        return None
    nested = locator.value(("feature_flags", POLICY_BLOCK))
    return Diagnostic(
        "TSK318",
        f"`{POLICY_BLOCK}` is defined twice: at the top level and under feature_flags",
        locator.value((POLICY_BLOCK,)),
        hint="keep one of them (`tusk rollout` would read the top-level one only)",
        related=(Related(nested, "the one under feature_flags"),) if nested else (),
    )


def _owned(value: Any, path: Path) -> Any:
    """``value`` with the objects other files may add to copied: a file's own data is never changed."""
    if path in MERGED and isinstance(value, dict):
        return {k: _owned(v, (*path, k)) for k, v in value.items()}
    return value


def _under(path: Path, prefixes: Sequence[Path]) -> bool:
    return any(path[: len(prefix)] == prefix for prefix in prefixes)


def _once(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Each problem once: a file included twice (or also asked for) reports its problems once."""
    seen: set[tuple[str, str, str, int]] = set()
    out = []
    for d in diagnostics:
        identity = (d.code, d.message, d.span.file if d.span else "", d.span.start if d.span else -1)
        if identity not in seen:
            seen.add(identity)
            out.append(d)
    return out


def _key(path: str | os.PathLike[str]) -> str:
    return str(FsPath(path).resolve())


def _relative(path: FsPath, root: FsPath) -> str:
    try:
        return FsPath(os.path.relpath(path.resolve(), root)).as_posix()
    except ValueError:
        return path.as_posix()
