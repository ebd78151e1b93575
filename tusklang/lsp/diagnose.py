"""The one function that says what is wrong with a document: `diagnose(job)`.

It reports exactly what `tusk check` reports for the same files (syntax, semantics, schema and lint, in
the same order, with the same codes), on the editor's unsaved texts, for the document and every file it
includes, grouped by file and already in LSP terms. It runs in the lint worker process (worker.py), so
the result is plain picklable data.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types

from .._gc import gc_paused
from ..compiler.check import check_loaded
from ..compiler.pipeline import compile_project
from ..diagnostics import Diagnostic, TuskError
from ..project import InputError, Project, load_project
from ..source import SourceFile
from .config import Policy, ServerConfig, build_settings
from .convert import to_lsp

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LintJob:
    paths: tuple[str, ...]  # the project's files, the edited document first
    overlays: Mapping[str, str]  # path -> unsaved text, for every open document
    config: ServerConfig = field(default_factory=ServerConfig)
    execute: bool = False  # resolve on save: run the directives, as `tusk compile` would
    versions: Mapping[str, int | None] = field(default_factory=dict)  # of the overlays (the server's bookkeeping)


@dataclass
class LintResult:
    by_path: dict[str, list[types.Diagnostic]]  # only files with something to say
    files: tuple[str, ...] = ()  # every file the project read: the document and what it includes
    problems: list[str] = field(default_factory=list)  # settings trouble, shown to the user once


def diagnose(job: LintJob) -> LintResult:
    root = job.paths[0]
    problems: list[str] = []
    policy = Policy(job.config.error, job.config.ignore)
    if policy.problem:
        problems.append(policy.problem)
    files: tuple[str, ...] = tuple(job.paths)
    try:
        found, files = project_diagnostics(job)
        found = policy.apply(found)
    except InputError as exc:  # an env file or a document that cannot be read: said once, not per edit
        problems.append(str(exc))
        found = []
    by_path: dict[str, list[types.Diagnostic]] = {}
    root_source = SourceFile(job.overlays.get(root, ""), root)
    for d in found:
        path = d.span.source.path if d.span is not None and d.span.source.path else root
        source = d.span.source if d.span is not None else root_source
        by_path.setdefault(path, []).append(to_lsp(d, source, _uri(path)))
    return LintResult(by_path, files, problems)


def project_diagnostics(job: LintJob) -> tuple[list[Diagnostic], tuple[str, ...]]:
    """What `tusk check PATHS` reports on the editor's texts, and every file read (includes too).

    With ``execute`` (resolve on save): what `tusk compile PATHS` reports, directives run.
    """
    settings = build_settings(job.config)
    with gc_paused():  # as check_project does: the parser and validation build many small objects
        project = load_project(list(job.paths), settings, execute=job.execute, overlays=job.overlays)
        files = _depends_on(project)
        found = _compile_findings(project) if job.execute else check_loaded(project)
        # Freed before the collector is back on: alive then, its AST would be walked by the next collection
        # (as check_project does, and for the same reason).
        del project
    return found, files


def _compile_findings(project: Project) -> list[Diagnostic]:
    if project.has_errors or not project.is_flag_project:
        return list(project.diagnostics)
    try:
        return compile_project(project).diagnostics
    except TuskError as exc:
        return list(exc.diagnostics)


_FILE_CALL = re.compile(r"""@file\(\s*(?:"([^"\n]+)"|'([^'\n]+)')""")


def _depends_on(project: Project) -> tuple[str, ...]:
    """Every file read, and every `@file` target named, found or not: when a missing one appears, or an
    included one changes, the document must be linted again. A text scan, not a walk of the tree: it costs
    nothing next to the check, and a target it finds in a comment only causes one lint too many."""
    found = [f.path for f in project.files]
    for file in project.files:
        base = os.path.dirname(file.path)
        for match in _FILE_CALL.finditer(file.text):
            found.append(os.path.join(base, match.group(1) or match.group(2)))
    return tuple(dict.fromkeys(found))


def _uri(path: str) -> str:
    """A file's URI (an included file's path is relative to the working folder), else the name as it is."""
    if ":" in path and not Path(path).is_absolute():
        return path  # untitled:Untitled-1 and the like
    return Path(path).absolute().as_uri()


def warm_up() -> None:
    """Import and build what the first real job would (parser tables, schema models, lint rules)."""
    text = "feature_flags = {\n    flags = {\n        f = {\n            enabled = true\n        }\n    }\n}\n"
    try:
        diagnose(LintJob(("<warm-up>",), {"<warm-up>": text}))
    except Exception:  # a warm-up failure shows up again, logged, on the first real job
        log.debug("warm-up failed", exc_info=True)
