"""Settings: everything outside the files that decides what a project means, built once per run.

The CLI builds one from its options (tusklang/cli/_resolve_options.py), the language server from its
settings, a library caller with ``Settings(...)`` or ``Settings.from_environment(...)``. Nothing else
reads the process environment: `--env-file`, `@env`, `TUSK_DATABASE_URL` and `SOURCE_DATE_EPOCH` are
all read here, once, so every command sees the same values (docs/directives.md, "Settings").
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .dotenv import read_env_file
from .errors import InputError

if TYPE_CHECKING:
    from ..db import Database

DATABASE_VARIABLE = "TUSK_DATABASE_URL"
CLOCK_VARIABLE = "SOURCE_DATE_EPOCH"
DEFAULT_QUERY_TIMEOUT = 5.0
DEFAULT_MAX_ROWS = 10_000


@dataclass(frozen=True)
class Settings:
    # The environment `@env` reads: the process environment over the `--env-file` values.
    env: Mapping[str, str] = field(default_factory=dict)
    # `@query`'s database: a URL (sqlite:///..., postgresql://...) or an open Database the caller owns.
    database: str | Database | None = None
    # The build clock when fixed (SOURCE_DATE_EPOCH, for reproducible builds): `@date`, the lint age
    # rules and the snapshot's `compiled_at`. None: the wall clock, and no `compiled_at`.
    now: datetime | None = None
    # The project root: `@file` may not leave it (unless allow_outside_root) and snapshot paths are
    # relative to it. None: the folder of the first file.
    root: Path | None = None
    allow_outside_root: bool = False
    query_timeout: float = DEFAULT_QUERY_TIMEOUT
    max_rows: int = DEFAULT_MAX_ROWS
    strict_secrets: bool = False
    # SOURCE_DATE_EPOCH's text when it is not a usable time: `@date` reports it at its call (TSK228).
    clock_error: str | None = None

    def __post_init__(self) -> None:
        if not (self.query_timeout > 0 and math.isfinite(self.query_timeout)):
            raise InputError(f"the query timeout must be a positive number of seconds, not {self.query_timeout}")
        if self.max_rows < 1:
            raise InputError(f"the row limit must be at least 1, not {self.max_rows}")

    @classmethod
    def from_environment(
        cls,
        *,
        env_file: str | os.PathLike[str] | None = None,
        database: str | Database | None = None,
        now: datetime | None = None,
        root: str | os.PathLike[str] | None = None,
        allow_outside_root: bool = False,
        query_timeout: float = DEFAULT_QUERY_TIMEOUT,
        max_rows: int = DEFAULT_MAX_ROWS,
        strict_secrets: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Settings from the process environment (``environ``, default ``os.environ``) and the options.

        ``env_file`` values are merged under the environment: a variable set in both keeps the
        environment's value (as docker compose, Node's --env-file and python-dotenv do), so a CI job
        can override a checked-in file. ``database`` defaults to TUSK_DATABASE_URL and ``now`` to
        SOURCE_DATE_EPOCH, both read from that merged environment. InputError for an unreadable or
        malformed env file.
        """
        process = dict(os.environ if environ is None else environ)
        env = {**read_env_file(env_file), **process} if env_file is not None else process
        if database is None:
            database = env.get(DATABASE_VARIABLE, "").strip() or None
        clock_error = None
        if now is None:
            now, clock_error = _epoch(env.get(CLOCK_VARIABLE))
        return cls(
            env=env,
            database=database,
            now=now,
            root=Path(root) if root is not None else None,
            allow_outside_root=allow_outside_root,
            query_timeout=query_timeout,
            max_rows=max_rows,
            strict_secrets=strict_secrets,
            clock_error=clock_error,
        )

    def clock(self) -> datetime:
        """The build time: ``now`` when fixed, else the wall clock (UTC)."""
        if self.now is None:
            return datetime.now(UTC)
        return self.now if self.now.tzinfo else self.now.replace(tzinfo=UTC)


def _epoch(raw: str | None) -> tuple[datetime | None, str | None]:
    """SOURCE_DATE_EPOCH as a time, or (None, its text) when it is not a whole number of seconds in range."""
    if raw is None or not raw.strip():
        return None, None
    try:
        return datetime.fromtimestamp(int(raw), UTC), None
    except (ValueError, OverflowError, OSError):
        return None, raw
