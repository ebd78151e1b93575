"""The client's settings, in one place: parsed once per change, then turned into the project `Settings`.

Sent as `initializationOptions`, pushed with `workspace/didChangeConfiguration` or pulled with
`workspace/configuration`, under a `tusk` key (or bare). `ServerConfig` is plain data so the same value
can travel to the lint worker process, which builds the same `Settings` from it with `build_settings`:
the server and the worker never read the environment, an env file or a database URL any other way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostic
from ..project import InputError, Settings

log = logging.getLogger(__name__)

MAX_DEBOUNCE_MS = 2000


@dataclass(frozen=True)
class ServerConfig:
    resolve_on_save: bool = False
    database: str | None = None  # a connection string: never logged
    env_file: str | None = None  # relative to the workspace root
    debounce_ms: int = 25
    error: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    # Files checked together, as `tusk check A B` checks them: lists of paths or glob patterns, relative to
    # the workspace folder. A document in none of them is a project of its own (with what it includes).
    projects: tuple[tuple[str, ...], ...] = ()
    workspace_root: str | None = None
    problems: tuple[str, ...] = field(default=(), compare=False)  # what was wrong in the last update

    def updated(self, raw: Any) -> ServerConfig:
        """This config with the keys present in ``raw`` applied; a key of the wrong type is reported and skipped."""
        if not isinstance(raw, Mapping):
            return self
        tusk = raw.get("tusk", raw)
        if not isinstance(tusk, Mapping):
            return self
        problems: list[str] = []
        changes: dict[str, Any] = {}

        def pick(key: str, kind: type, attr: str) -> None:
            value = tusk.get(key)
            if value is None:
                return
            if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):  # True is an int
                changes[attr] = value
            else:
                problems.append(f"`tusk.{key}` should be a {kind.__name__}; it is ignored")

        pick("resolveOnSave", bool, "resolve_on_save")
        pick("database", str, "database")
        pick("envFile", str, "env_file")
        pick("debounceMs", int, "debounce_ms")
        if "debounce_ms" in changes and not 0 <= changes["debounce_ms"] <= MAX_DEBOUNCE_MS:
            problems.append(f"`tusk.debounceMs` must be between 0 and {MAX_DEBOUNCE_MS}; it is ignored")
            del changes["debounce_ms"]
        for key in ("error", "ignore"):
            if key in tusk and tusk[key] is not None:
                codes = _codes(tusk[key])
                if codes is None:
                    problems.append(f"`tusk.{key}` must be a list of codes such as TSK401; it is ignored")
                else:
                    changes[key] = codes
        if tusk.get("projects") is not None:
            projects = _projects(tusk["projects"])
            if projects is None:
                problems.append(
                    "`tusk.projects` must be a list of lists of files, directories or globs, "
                    'e.g. [["flags/"], ["b/a.tsk", "b/*.tsk"]]'
                )
            else:
                changes["projects"] = projects
        for key in ("database", "env_file"):
            if key in changes and not changes[key]:
                changes[key] = None  # "" means unset, as in most editors' settings UIs
        return replace(self, **changes, problems=tuple(problems))


def _codes(value: Any) -> tuple[str, ...] | None:
    """`["TSK401", "TSK403"]` or `"TSK401, TSK403"` (as the CLI's repeated option would give)."""
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return tuple(v.strip() for v in value if v.strip())


def _projects(value: Any) -> tuple[tuple[str, ...], ...] | None:
    if not isinstance(value, list):
        return None
    out = []
    for project in value:
        if isinstance(project, str):
            project = [project]
        if not isinstance(project, list) or not project or not all(isinstance(p, str) and p for p in project):
            return None
        out.append(tuple(project))
    return tuple(out)


def project_files(config: ServerConfig, limit: int = 2000) -> list[tuple[str, ...]]:
    """Each configured project's paths: patterns expanded (sorted), in the order given, absolute. A directory
    stays one path: the checker reads it as `tusk check DIR` does (its `.tsk` files, sorted, hidden ones
    skipped; a plain configuration file found there joins no flag project)."""
    import glob

    root = Path(config.workspace_root) if config.workspace_root else Path.cwd()
    out = []
    for project in config.projects:
        files: list[str] = []
        for pattern in project:
            full = pattern if Path(pattern).is_absolute() else str(root / pattern)
            matches = sorted(glob.glob(full, recursive=True)) if glob.has_magic(full) else [full]
            files.extend(os.path.abspath(m) for m in matches[:limit])
        out.append(tuple(dict.fromkeys(files)))
    return out


def env_file_path(config: ServerConfig) -> Path | None:
    if config.env_file is None:
        return None
    path = Path(config.env_file).expanduser()
    if not path.is_absolute() and config.workspace_root:
        path = Path(config.workspace_root) / path
    return path


def build_settings(config: ServerConfig, environ: Mapping[str, str] | None = None) -> Settings:
    """The project `Settings` under this config: what `tusk check --env-file F` builds from its options.

    The project root is left as the CLI leaves it (the folder of the checked file), so the editor and
    `tusk check` agree on which `@file` targets are outside it. InputError for an unreadable env file.
    """
    return Settings.from_environment(
        env_file=env_file_path(config),
        database=config.database,
        environ=os.environ if environ is None else environ,
    )


def environment(config: ServerConfig) -> Mapping[str, str]:
    """The environment `@env` sees under this config (for hover); the process environment on any problem."""
    try:
        return build_settings(config).env
    except InputError:  # an unreadable env file is reported by the linter, not by hover
        return os.environ


# --- the severity policy (`tusk.error` / `tusk.ignore`) -----------------------------------------------


class Policy:
    """`tusk.error` / `tusk.ignore` applied to diagnostics: the CLI's severity policy (cli/_severity.py).

    Where `tusk check --error TSK999` is a usage error, the editor says what is wrong (``problem``) and
    applies the codes it can use.
    """

    def __init__(self, error: Iterable[str], ignore: Iterable[str]) -> None:
        from ..cli._severity import PolicyError, SeverityPolicy

        self.problem: str | None = None
        names = {"error_name": "tusk.error", "ignore_name": "tusk.ignore"}
        error, ignore = list(error), list(ignore)
        try:
            self._policy = SeverityPolicy.from_codes(error, ignore, **names)
            return
        except PolicyError as exc:
            self.problem = str(exc)
        usable_error = [c for c in error if _usable(lambda c=c: SeverityPolicy.from_codes([c], (), **names))]
        usable_ignore = [c for c in ignore if _usable(lambda c=c: SeverityPolicy.from_codes((), [c], **names))]
        self._policy = SeverityPolicy.from_codes(usable_error, usable_ignore, **names)

    def apply(self, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
        return self._policy.apply(diagnostics)


def _usable(make: Any) -> bool:
    from ..cli._severity import PolicyError

    try:
        make()
    except PolicyError:
        return False
    return True
