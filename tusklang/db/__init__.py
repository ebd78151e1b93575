"""Read-only database access behind `@query`: one URL in, JSON-safe rows out.

`connect(url)` returns a `Database` for SQLite (`sqlite:///path.db`) or PostgreSQL
(`postgresql://...`). Every query is a single read-only statement with bound `?` parameters, a
deadline and a row limit, all enforced by the database itself; every failure is a `QueryError`
whose text never contains the URL or its password. See docs/database.md.
"""

from __future__ import annotations

import math
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from types import TracebackType
from typing import Final, Literal, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from uuid import UUID

__all__ = [
    "ENV_VAR",
    "SUPPORTED_SCHEMES",
    "Database",
    "QueryError",
    "QueryErrorKind",
    "connect",
    "database_from_env",
    "redact_url",
]

ENV_VAR: Final = "TUSK_DATABASE_URL"
SUPPORTED_SCHEMES: Final = ("sqlite", "postgresql", "postgres")
DEFAULT_TIMEOUT: Final = 5.0
DEFAULT_MAX_ROWS: Final = 10_000

QueryErrorKind = Literal[
    "syntax",
    "missing_table",
    "timeout",
    "read_only",
    "connection",
    "too_many_rows",
    "multiple_statements",
    "unsupported_value",
    "other",
]

Row = dict[str, object]
Param = str | int | float | bool | None


class QueryError(Exception):
    """A query (or connecting) failed. `message` is the database's own words, cleaned of secrets."""

    def __init__(self, message: str, kind: QueryErrorKind, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind: QueryErrorKind = kind
        self.sqlstate = sqlstate

    def __repr__(self) -> str:
        return f"QueryError(kind={self.kind!r}, message={self.message!r})"


class UnsupportedValue(Exception):
    """A value with no JSON form; the backend adds the column name and raises a QueryError."""


def redact_url(url: str) -> str:
    """The URL with its password (in the authority or a `password=` parameter) replaced by `***`."""
    try:
        parts = urlsplit(url)
        if parts.password is None and "password=" not in parts.query.lower():
            return url
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, hostinfo = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{hostinfo}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(key.lower() == "password" for key, _ in pairs):
                pairs = [(key, "***" if key.lower() == "password" else value) for key, value in pairs]
                query = urlencode(pairs, safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparseable database URL>"


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Remove every secret (password, raw URL) from a message coming back from a driver."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def url_secrets(url: str) -> tuple[str, ...]:
    """Strings that must never appear in output: the raw URL and its password."""
    secrets = [url]
    try:
        parts = urlsplit(url)
        if parts.password:
            secrets.append(parts.password)
        secrets.extend(value for key, value in parse_qsl(parts.query) if key.lower() == "password")
    except ValueError:
        pass
    # Longest first, so the URL is replaced whole before its password is.
    return tuple(sorted(secrets, key=len, reverse=True))


def check_params(params: Sequence[object]) -> list[Param]:
    """Parameters are scalars; anything else would be bound in backend-specific, surprising ways."""
    if isinstance(params, str | bytes):
        raise QueryError("query parameters must be a list of values, not a single string", "other")
    checked: list[Param] = []
    for position, value in enumerate(params, start=1):
        if value is None or isinstance(value, str | int | float):
            if isinstance(value, float) and not math.isfinite(value):
                raise QueryError(f"parameter {position} is {value!r}, which has no SQL value", "other")
            checked.append(value)  # type: ignore[arg-type]
            continue
        raise QueryError(
            f"parameter {position} is a {type(value).__name__}; query parameters must be strings, "
            "numbers, booleans or null",
            "unsupported_value",
        )
    return checked


def iso_datetime(value: datetime) -> str:
    """Naive timestamps keep no offset; aware ones are shown in UTC with `Z`."""
    if value.tzinfo is None or value.utcoffset() is None:
        return value.isoformat()
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def json_safe(value: object) -> object:
    """The JSON form of one database value, or UnsupportedValue."""
    kind = type(value)
    if value is None or kind is str or kind is int or kind is bool:
        return value
    if kind is float:
        if math.isfinite(value):  # type: ignore[arg-type]
            return value
        raise UnsupportedValue(f"{value!r} is not a JSON number")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise UnsupportedValue(f"{value} is not a JSON number")
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return iso_datetime(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raise UnsupportedValue("binary data (bytes) has no JSON form; select it as text, e.g. encode(col, 'base64')")
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    raise UnsupportedValue(f"a {type(value).__name__} value has no JSON form; cast it to text or a number")


Converter = Callable[[object], object]


def rows_to_dicts(
    columns: Sequence[str], rows: Sequence[Sequence[object]], converters: Sequence[Converter | None]
) -> list[Row]:
    """Rows as dicts; a column whose converter is None is passed through untouched (the fast path)."""
    if len(set(columns)) != len(columns):
        duplicates = sorted({name for name in columns if columns.count(name) > 1})
        raise QueryError(
            f"the result has several columns named {', '.join(repr(n) for n in duplicates)}; "
            "give each a distinct name with AS",
            "other",
        )
    names = list(columns)
    active = [(index, converter) for index, converter in enumerate(converters) if converter is not None]
    if not active or not rows:
        return [dict(zip(names, raw)) for raw in rows]
    # Column by column: one comprehension per converted column is much cheaper than a loop per cell.
    table: list[Sequence[object]] = list(zip(*rows))
    for index, converter in active:
        try:
            table[index] = [None if cell is None else converter(cell) for cell in table[index]]
        except UnsupportedValue as exc:
            raise QueryError(f"column {names[index]!r}: {exc}", "unsupported_value") from None
    return [dict(zip(names, values)) for values in zip(*table)]


def too_many_rows(max_rows: int) -> QueryError:
    return QueryError(
        f"the query returned more than {max_rows} rows (the limit); narrow it with WHERE or LIMIT",
        "too_many_rows",
    )


class Database(ABC):
    """One connection, reused by every query, safe to share between threads (queries take turns)."""

    def __init__(self, url: str, *, timeout: float, max_rows: int) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self.url = redact_url(url)
        self.timeout = timeout
        self.max_rows = max_rows
        self._secrets = url_secrets(url)
        self._lock = threading.Lock()

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one read-only statement with `?` placeholders bound to `params`; rows as dicts."""
        checked = check_params(params)
        with self._lock:
            return self._query(sql, checked)

    @abstractmethod
    def _query(self, sql: str, params: list[Param]) -> list[Row]: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def connect(url: str, *, timeout: float = DEFAULT_TIMEOUT, max_rows: int = DEFAULT_MAX_ROWS) -> Database:
    """Open a read-only Database for `url`; QueryError(kind="connection") if it cannot be reached."""
    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        from .sqlite import SQLiteDatabase

        return SQLiteDatabase(url, timeout=timeout, max_rows=max_rows)
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresDatabase

        return PostgresDatabase(url, timeout=timeout, max_rows=max_rows)
    shown = f"{scheme!r}" if scheme else "none"
    raise ValueError(
        f"unsupported database URL scheme {shown}; supported schemes: "
        "sqlite:///relative/path.db or sqlite:////absolute/path.db, postgresql://... (or postgres://...)"
    )


def database_from_env(
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_rows: int = DEFAULT_MAX_ROWS,
    environ: dict[str, str] | None = None,
) -> Database | None:
    """The Database named by TUSK_DATABASE_URL, or None when the variable is unset or empty."""
    url = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    if not url:
        return None
    return connect(url, timeout=timeout, max_rows=max_rows)
