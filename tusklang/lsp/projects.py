"""Which project each open document is checked in, the lint results, and what is published where.

A lint key names a project: a document's URI (the document and what it includes, as `tusk check DOC`
checks it), or "project:N" for the N-th of `tusk.projects` (files checked together, as `tusk check A B`
does). Resolve-on-save results live under the project's key plus `ON_SAVE`, until the next edit.

Diagnostics about an included file are published on that file's URI; when several projects say something
about one file, the union is published, but for an open document only what was found in its newest text.
When an open or on-disk file changes, every project that reads it (or names it in `@file`) is linted again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lsprotocol import types

from .config import ServerConfig, project_files
from .diagnose import LintJob, LintResult
from .documents import Documents, path_of
from .worker import Linter
from .workspace import normalise

log = logging.getLogger(__name__)

ON_SAVE = "#resolved-on-save"
Entry = tuple[int | None, list[types.Diagnostic]]  # (the document version it was found in, diagnostics)


class Projects:
    def __init__(
        self,
        documents: Documents,
        config: Callable[[], ServerConfig],
        publish: Callable[[types.PublishDiagnosticsParams], None],
        show_problems: Callable[[Iterable[str]], None],
    ) -> None:
        self.documents = documents
        self._config = config
        self._publish = publish
        self._show_problems = show_problems
        self.linter = Linter(self._on_result)
        self.started = False
        self.projects: list[tuple[str, ...]] = []  # tusk.projects, patterns expanded (directories kept)
        self.members: list[frozenset[str]] = []  # each project's files, its directories' `.tsk` files too
        self.includes: dict[str, frozenset[str]] = {}  # lint key -> every file its project reads or names
        self.results: dict[str, dict[str, Entry]] = {}  # lint key -> path -> what was found there
        self.uri_of: dict[str, str] = {}  # path -> the URI its diagnostics go to

    def start(self) -> None:
        if not self.started:
            self.started = True
            self.linter.start()

    # --- keys -------------------------------------------------------------------------------------

    def key_of(self, uri: str) -> str:
        path = path_of(uri)
        for n, files in enumerate(self.members):
            if path in files:
                return f"project:{n}"
        return uri

    def paths_of(self, key: str) -> tuple[str, ...]:
        key = key.removesuffix(ON_SAVE)
        if key.startswith("project:"):
            return self.projects[int(key.removeprefix("project:"))]
        return (path_of(key),)

    def _moved(self, key: str) -> bool:
        """A document's own lint whose document now belongs to a project: its results are stale (a flag
        it found missing may be in the project's other files)."""
        uri = key.removesuffix(ON_SAVE)
        return not uri.startswith("project:") and self.key_of(uri) != uri

    def _files_of(self, key: str) -> frozenset[str]:
        key = key.removesuffix(ON_SAVE)
        if not key.startswith("project:"):
            return frozenset()
        n = int(key.removeprefix("project:"))
        return self.members[n] if n < len(self.members) else frozenset()

    def alive(self, key: str) -> bool:
        """Whether a project is still linted: one of its documents is open."""
        key = key.removesuffix(ON_SAVE)
        if not key.startswith("project:"):
            return self.documents.is_open(key)
        n = int(key.removeprefix("project:"))
        return n < len(self.members) and any(path in self.members[n] for path in self.documents.paths())

    def readers_of(self, path: str) -> list[str]:
        """The projects that read ``path`` (or name it in `@file`), their own files included."""
        return [key for key, files in self.includes.items() if path in files]

    def reproject(self) -> bool:
        """Expand `tusk.projects` again; True when a project changed (the caller lints everything again)."""
        projects = project_files(self._config())
        if projects == self.projects:
            return False
        self.projects = projects
        self.members = [_members(paths) for paths in projects]
        for key in [
            key for key in self.results if key.startswith("project:") or not self.alive(key) or self._moved(key)
        ]:
            self.forget(key)
        return True

    # --- linting ----------------------------------------------------------------------------------

    def edited(self, uri: str) -> None:
        """``uri``'s text changed: lint its project, and every other project that reads it."""
        own = self.key_of(uri)
        for key in self.readers_of(path_of(uri)):
            if key.endswith(ON_SAVE):
                self.forget(key)  # what resolving found was about the text before this edit
            elif key != own:
                self.lint(key)
        self.lint(own)  # last: the linter takes the newest first

    def lint(self, key: str, *, execute: bool = False) -> None:
        self.start()
        versions: dict[str, int | None] = {}
        overlays: dict[str, str] = {}
        for uri in self.documents.uris():
            document = self.documents.get(uri)
            overlays[path_of(uri)] = document.source
            versions[path_of(uri)] = document.version
        job = LintJob(self.paths_of(key), overlays, self._config(), execute=execute, versions=versions)
        # Resolving on save has a key of its own: the lint that follows the save must not replace it.
        self.linter.submit(key + ON_SAVE if execute else key, job)

    def _on_result(self, key: str, job: LintJob, result: LintResult) -> None:
        if not self.alive(key) or job.paths != self.paths_of(key):
            return
        self._show_problems(result.problems)

        def normal(path: str) -> str:
            return path if path in job.paths or not _is_path(path) else normalise(path)

        self.includes[key] = frozenset(normal(path) for path in result.files) | set(job.paths)
        fresh: dict[str, Entry] = {}
        for path, found in result.by_path.items():
            fresh[normal(path)] = (job.versions.get(normal(path)), found)
        for path in job.paths:
            if not os.path.isdir(path):  # a directory's files are in result.by_path (or clean: below)
                fresh.setdefault(path, (job.versions.get(path), []))
        for path in self._files_of(key):  # a directory's files with nothing to say are clean
            fresh.setdefault(path, (job.versions.get(path), []))
        previous = self.results.get(key, {})
        self.results[key] = fresh
        # The project's own files last: when a document's diagnostics arrive, so have its includes'.
        changed = set(previous) | set(fresh)
        self.publish([p for p in sorted(changed) if p not in job.paths] + [p for p in job.paths if p in changed])

    def forget(self, key: str) -> None:
        """Drop a project's results (republishing what is left for its files) and any lint in flight."""
        self.linter.forget(key)
        self.includes.pop(key, None)
        self.publish(self.results.pop(key, {}))

    def closed(self, uri: str) -> None:
        path = path_of(uri)
        key = self.key_of(uri)
        if self.alive(key):
            self.lint(key)  # another file of its project is open: the closed one is read from disk now
        else:
            self.forget(key)
            self.forget(key + ON_SAVE)
        self.publish({path})
        for other in self.readers_of(path):  # they read it from disk now
            if other != key and self.alive(other):
                self.lint(other)

    def disk_changed(self, path: str) -> None:
        """A file changed on disk (saved, or changed outside the editor): lint the projects that read it."""
        if path in self.documents.paths():
            return  # its open text is what counts
        for key in self.readers_of(path):
            if self.alive(key):
                self.lint(key)

    # --- publishing -------------------------------------------------------------------------------

    def publish(self, paths: Iterable[str]) -> None:
        """Send what the projects say about each of ``paths``: for an open document, only what was found in
        its newest text (a project that reads it and has yet to be linted again would bring back problems
        already fixed), the union when several projects agree on that version."""
        opened = self.documents.paths()
        for path in paths:
            uri = opened.get(path) or self.uri_of.get(path) or _uri_for_path(path)
            if uri is None:
                continue
            self.uri_of[path] = uri
            entries = [results[path] for results in self.results.values() if path in results]
            versions = [version for version, _ in entries if version is not None]
            newest = max(versions) if versions and path in opened else None
            seen: set[tuple[Any, ...]] = set()
            found: list[types.Diagnostic] = []
            for version, diagnostics in entries:
                if newest is not None and version != newest:
                    continue
                for d in diagnostics:
                    identity = (d.code, d.message, d.range.start.line, d.range.start.character, d.range.end.line)
                    if identity not in seen:
                        seen.add(identity)
                        found.append(d)
            self._publish(types.PublishDiagnosticsParams(uri=uri, diagnostics=found, version=newest))


def _members(paths: tuple[str, ...]) -> frozenset[str]:
    """The files a project's paths stand for: a directory, its `.tsk` files (as `tusk check DIR` reads
    them: tusklang.project.loader.expand_paths), a file itself."""
    from ..project.errors import InputError
    from ..project.loader import expand_paths

    files: set[str] = set()
    for path in paths:
        if os.path.isdir(path):
            try:
                files.update(normalise(name) for name, _named in expand_paths([path]))
            except InputError:  # a directory without .tsk files (yet): none of its files to watch
                continue
        else:
            files.add(path)
    return frozenset(files)


def _is_path(text: str) -> bool:
    scheme = urlparse(text).scheme
    return not scheme or len(scheme) == 1  # a Windows drive letter is not a scheme


def _uri_for_path(path: str) -> str | None:
    if not _is_path(path):
        return None
    candidate = Path(path)
    return candidate.as_uri() if candidate.is_absolute() else None
