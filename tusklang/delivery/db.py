"""The delivery controller's database: `tusklang.db`'s write connection plus the dialect details its
stores need (table prefix, time type).

The three tables (metric samples, rollout state, audit log) live in the same database. ``prefix``
puts them under distinct names, which is how tests share one PostgreSQL database safely. URLs,
placeholders (`?` on both backends), redaction and errors are `tusklang.db`'s: a bad URL is a
`DatabaseURLError` (TSK250), an unreachable database TSK251, a failed statement a `WriteError` (TSK255).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ..db.urls import redact_url
from ..db.write import WriteConnection
from ..diagnostics import Diagnostic, TuskError

__all__ = ["DEFAULT_DB_URL", "Database", "as_utc", "parse_time", "redact"]

DEFAULT_DB_URL = "sqlite:///tusk-rollout.db"
_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}|")

# The one redaction helper, under the name this module always exported.
redact = redact_url


class Database(WriteConnection):
    """A write connection plus the dialect details the stores need (table names, time type)."""

    def __init__(self, url: str, prefix: str = "") -> None:
        if not _PREFIX.fullmatch(prefix):
            raise TuskError([Diagnostic("TSK810", f"table prefix {prefix!r} must be letters, digits and underscores")])
        self.prefix = prefix
        super().__init__(url, timeout=30.0)

    @property
    def conn(self) -> Any:
        """The driver's own connection (sqlite3 or psycopg)."""
        return self.raw

    def table(self, name: str) -> str:
        return f"{self.prefix}{name}"

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


def as_utc(value: datetime) -> datetime:
    """Naive times are taken as UTC: the documented rule for every time we read."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_time(text: str) -> datetime:
    """ISO 8601 (``2024-05-01T12:00:00Z``, offsets allowed, naive means UTC)."""
    return as_utc(datetime.fromisoformat(text.strip()))
