"""`tusk check`: every problem `tusk compile` would report that can be found without running anything.

One function, ``check_project``, for the CLI and the language server. It loads the project statically
(tusklang.project.load_project, ``execute=False``): `@env` reads Settings.env (a variable that is not
set is its default, or unknown), `@file` includes are followed read-only, `@query` and `@date` are
unknown. Then, when no file has an error and any file defines a flag block, the files that define one
are analysed as one project exactly as `tusk compile` analyses them (tusklang/compiler/pipeline.py),
skipping what depends on unknown values (tusklang/compiler/unknown.py). It lives here, in the compiler,
and not in tusklang.project: the schema and the lint rules are the compiler's stage.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from .._gc import gc_paused
from ..diagnostics import Diagnostic
from ..project import FileData, Project, Settings, load_project
from . import check_cache
from .options import LintOptions


def check_project(
    paths: Sequence[str | os.PathLike[str]],
    settings: Settings,
    *,
    overlays: Mapping[str, str] | None = None,
    lint_options: LintOptions | None = None,
    cache: bool = False,
) -> list[Diagnostic]:
    """What `tusk check PATHS` reports, in its order: each file's syntax and semantic problems (included
    files' at their own lines, with the include chain), then the project's schema, secrets and lint
    findings sorted by place. `--error`/`--ignore` beyond the lint rules are the caller's (cli/_severity).

    A file that defines no flag block is general TuskLang configuration: syntax and semantics only.
    ``cache``: keep the schema and lint findings on disk, and use them for the same input again
    (tusklang/compiler/check_cache.py; `tusk check` does).
    """
    with gc_paused():  # the project is freed before the collector is back on (see compiler.pipeline._compile)
        return _check(paths, settings, overlays, lint_options, cache)


def _check(
    paths: Sequence[str | os.PathLike[str]],
    settings: Settings,
    overlays: Mapping[str, str] | None,
    lint_options: LintOptions | None,
    cache: bool,
) -> list[Diagnostic]:
    return check_loaded(load_project(paths, settings, execute=False, overlays=overlays), lint_options, cache)


def check_loaded(project: Project, lint_options: LintOptions | None = None, cache: bool = False) -> list[Diagnostic]:
    """``check_project`` for a project already loaded statically (the language server keeps one)."""
    diagnostics = list(project.diagnostics)
    flag_sources = [source for source in project.sources if source.is_project_file]
    if not flag_sources or project.has_errors:
        return diagnostics
    with gc_paused():
        found = _findings(project, flag_sources, lint_options, cache)
    known = {_identity(d) for d in diagnostics}
    return diagnostics + [d for d in found if _identity(d) not in known]


def _findings(
    project: Project, sources: list[FileData], lint_options: LintOptions | None, cache: bool
) -> list[Diagnostic]:
    key = _cache_key(project, sources, lint_options) if cache else None
    if key is not None:
        cached = check_cache.load(key, project)
        if cached is not None:
            return cached
    from .pipeline import analyse  # the schema and pydantic: only when there is something to validate

    found = analyse(project, sources, lint_options).diagnostics
    if key is not None:
        check_cache.store(key, project, found)
    return found


def _cache_key(project: Project, sources: list[FileData], lint_options: LintOptions | None) -> str | None:
    try:
        return check_cache.key(project, sources, lint_options)
    except (OSError, TypeError, ValueError, RecursionError):  # a value it cannot key: check as without a cache
        return None


def _identity(d: Diagnostic) -> tuple[str, str, str, int]:
    return (d.code, d.message, d.span.file if d.span else "", d.span.start if d.span else -1)
