"""The one database layer: URLs, read-only `@query` connections, write connections, one error family.

- `connect(url)` returns a read-only `Database` for SQLite (`sqlite:///path.db`) or PostgreSQL
  (`postgresql://...`). Every query is a single read-only statement with bound `?` parameters, a
  deadline and a row limit, all enforced by the database itself (see docs/database.md).
- `WriteConnection(url)` (tusklang/db/write.py) is the writing side the event store and the delivery
  controller build on: same URLs, same `?` placeholders, same redaction, same errors.
- Every failure is a `DatabaseError` (a `TuskError` with a coded diagnostic): `QueryError` for reads,
  `WriteError` for writes, `DatabaseURLError` for a URL no layer accepts. No message ever contains the
  URL or its password.
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
from typing import Final, Self
from uuid import UUID

from ..limits import MAX_INT_DIGITS
from ..safejson import JSONInputError
from ..safejson import loads as safe_json_loads
from .errors import (
    CodedError,
    DatabaseError,
    DatabaseURLError,
    ErrorKind,
    QueryError,
    QueryErrorKind,
    WriteError,
)
from .urls import SUPPORTED_SCHEMES, Dialect, dialect_of, redact_url, scrub, sqlite_path, url_secrets

__all__ = [
    "ENV_VAR",
    "SUPPORTED_SCHEMES",
    "CodedError",
    "Database",
    "DatabaseError",
    "DatabaseURLError",
    "Dialect",
    "ErrorKind",
    "QueryError",
    "QueryErrorKind",
    "WriteConnection",
    "WriteError",
    "connect",
    "connect_write",
    "database_from_env",
    "dialect_of",
    "redact_url",
    "scrub",
    "sqlite_path",
    "url_secrets",
]

ENV_VAR: Final = "TUSK_DATABASE_URL"
DEFAULT_TIMEOUT: Final = 5.0
DEFAULT_MAX_ROWS: Final = 10_000

Row = dict[str, object]
Param = str | int | float | bool | None

# The largest integer a value may be: what the TuskLang parser accepts, below CPython's str() limit.
_INT_LIMIT: Final = 10**MAX_INT_DIGITS


class UnsupportedValue(Exception):
    """A value with no JSON form; the backend adds the column name and raises a QueryError."""


class JSONText:
    """A json/jsonb value as the server sent it, decoded later by `json_value` (which knows the column)."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes | str) -> None:
        self.raw = raw


def check_text(text: str, what: str) -> None:
    """Text the driver must encode as UTF-8: a lone surrogate (from a `\\ud800` escape) cannot be."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise QueryError(
            f"{what} holds a lone surrogate (U+{ord(text[exc.start]):04X} at character {exc.start + 1}), "
            "which is not text a database can take",
            "syntax",
        ) from None


def check_number(value: int | float) -> int | float:
    """Integers with more than MAX_INT_DIGITS digits and non-finite floats have no JSON form here."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnsupportedValue(f"{value!r} is not a JSON number")
    elif not -_INT_LIMIT < value < _INT_LIMIT:
        raise UnsupportedValue(
            f"an integer of more than {MAX_INT_DIGITS} digits has no JSON form here; cast it to text"
        )
    return value


def json_value(raw: bytes | str) -> object:
    """Decode JSON from a column: at most limits.MAX_DEPTH deep, finite numbers, bounded integers."""
    try:
        value = safe_json_loads(raw)
    except JSONInputError as exc:
        raise UnsupportedValue(f"the JSON value is refused: {exc}") from None
    # safe_json_loads bounded the depth, so this walk is bounded too.
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            check_number(item)
    return value


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


def decimal_value(value: Decimal) -> int | float:
    """An integral numeric as int, else float; refused when it is not finite or too large for JSON."""
    if not value.is_finite():
        raise UnsupportedValue(f"{value} is not a JSON number")
    # adjusted() is the exponent of the leading digit: checked before int() builds a huge number.
    if value.adjusted() >= MAX_INT_DIGITS:
        raise UnsupportedValue(
            f"a number of {value.adjusted() + 1} digits has no JSON form here (at most {MAX_INT_DIGITS}); "
            "cast it to text"
        )
    if value == value.to_integral_value():
        return int(value)
    return check_number(float(value))


def iso_datetime(value: datetime) -> str:
    """Naive timestamps keep no offset; aware ones are shown in UTC with `Z`."""
    if value.tzinfo is None or value.utcoffset() is None:
        return value.isoformat()
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def json_safe(value: object) -> object:
    """The JSON form of one database value, or UnsupportedValue."""
    kind = type(value)
    if value is None:
        return value
    if kind is int:
        return check_number(value)  # type: ignore[arg-type]
    if kind is str or kind is bool:
        return value
    if kind is float:
        return check_number(value)  # type: ignore[arg-type]
    if isinstance(value, Decimal):
        return decimal_value(value)
    if isinstance(value, JSONText):
        return json_value(value.raw)
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
        check_text(sql, "the SQL text")
        for position, value in enumerate(checked, start=1):
            if isinstance(value, str):
                check_text(value, f"parameter {position}")
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
    """Open a read-only Database for `url`.

    DatabaseURLError (TSK250) for a URL no layer accepts; QueryError(kind="connection", TSK251) if the
    database cannot be reached or opened.
    """
    if dialect_of(url) == "sqlite":
        from .sqlite import SQLiteDatabase

        return SQLiteDatabase(url, timeout=timeout, max_rows=max_rows)
    from .postgres import PostgresDatabase

    return PostgresDatabase(url, timeout=timeout, max_rows=max_rows)


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


def __getattr__(name: str) -> object:
    # The write side imports drivers lazily; reached as tusklang.db.WriteConnection / connect_write.
    if name in ("WriteConnection", "connect_write"):
        from . import write

        return getattr(write, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
