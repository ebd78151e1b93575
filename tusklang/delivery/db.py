"""One small connection wrapper over SQLite (stdlib) and PostgreSQL (psycopg 3).

The three tables (metric samples, rollout state, audit log) live in the same database. ``prefix``
puts them under distinct names, which is how tests share one PostgreSQL database safely.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..diagnostics import Diagnostic, TuskError

DEFAULT_DB_URL = "sqlite:///tusk-rollout.db"
_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}|")


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


def _error(message: str) -> TuskError:
    return TuskError([Diagnostic("TSK810", message)])


class Database:
    """A connection plus the dialect details the stores need (placeholder, time type)."""

    def __init__(self, url: str, prefix: str = "") -> None:
        if not _PREFIX.fullmatch(prefix):
            raise _error(f"table prefix {prefix!r} must be letters, digits and underscores")
        self.url = url
        self.prefix = prefix
        scheme = url.split(":", 1)[0].lower()
        if scheme == "sqlite":
            self.dialect = "sqlite"
            path = url.removeprefix("sqlite://")
            # sqlite:///rel.db -> "rel.db"; sqlite:////abs.db -> "/abs.db"; sqlite:///:memory:
            path = path[1:] if path.startswith("/") else path
            if not path:
                raise _error(f"{url}: no database file after sqlite:///")
            if path != ":memory:" and not Path(path).parent.exists():
                raise _error(f"{url}: folder {Path(path).parent} does not exist")
            self.conn: Any = sqlite3.connect(path, timeout=30, isolation_level=None)
        elif scheme in {"postgresql", "postgres"}:
            self.dialect = "postgresql"
            import psycopg

            try:
                self.conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
            except psycopg.Error as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise _error(f"cannot connect to {redact(url)}: {first}") from None
        else:
            raise _error(f"{redact(url)}: unsupported database URL; use sqlite:///FILE or postgresql://...")

    def table(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def sql(self, text: str) -> str:
        """Queries are written with ``?``; PostgreSQL wants ``%s``."""
        return text.replace("?", "%s") if self.dialect == "postgresql" else text

    def execute(self, text: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self.sql(text), tuple(params))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.dialect == "sqlite":
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        else:
            with self.conn.transaction():
                yield

    @property
    def time_type(self) -> str:
        return "TIMESTAMPTZ" if self.dialect == "postgresql" else "TEXT"

    def to_db_time(self, value: datetime) -> Any:
        value = as_utc(value)
        return value if self.dialect == "postgresql" else value.isoformat()

    def from_db_time(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return as_utc(value)
        return parse_time(str(value))

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def as_utc(value: datetime) -> datetime:
    """Naive times are taken as UTC: the documented rule for every time we read."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_time(text: str) -> datetime:
    """ISO 8601 (``2024-05-01T12:00:00Z``, offsets allowed, naive means UTC)."""
    return as_utc(datetime.fromisoformat(text.strip()))
