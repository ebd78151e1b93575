"""SQLite backend: the file is opened read-only by SQLite itself, with a deadline and a row limit.

Read-only is layered, all inside SQLite: the `mode=ro` URI (the file handle cannot write),
`PRAGMA query_only` (no statement may change the database) and an authorizer that allows only
reading, checked while the statement is compiled, before it runs: no ATTACH (which creates files),
PRAGMA (also as `pragma_*` table functions), VACUUM INTO (writes a new file), transaction control,
and no call of `load_extension` or the shell's file functions. Extension loading is also off in the
connection itself (Python's default). sqlite3 refuses several statements in one `execute`.

SQLite has no column types, only declared ones, read through `PARSE_DECLTYPES` converters so a
fixture gives the same values as PostgreSQL: `BOOLEAN` -> bool, `JSON` -> decoded,
`TIMESTAMP`/`DATETIME`/`DATE` -> ISO 8601 text. sqlite3 keeps converters in one process-wide
table, so registering them affects every sqlite3 connection opened with `detect_types`.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import date, datetime

from . import (
    Database,
    Param,
    QueryError,
    QueryErrorKind,
    Row,
    UnsupportedValue,
    iso_datetime,
    json_safe,
    json_value,
    rows_to_dicts,
    scrub,
    too_many_rows,
)
from .guard import check_statement
from .urls import sqlite_path

# How many virtual-machine instructions run between two deadline checks (about 10 us of work).
_PROGRESS_STEPS = 1_000

_TRUE = {"1", "true", "t"}
_FALSE = {"0", "false", "f"}


class SqliteValueError(ValueError):
    """A stored value does not match its declared type; raised from a converter, caught in query()."""


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _convert_boolean(raw: bytes) -> bool:
    text = _text(raw).strip().lower()
    if text in _TRUE or text == "1.0":
        return True
    if text in _FALSE or text == "0.0":
        return False
    raise SqliteValueError(f"a BOOLEAN column holds {_text(raw)!r}, which is not true/false/1/0")


def _convert_json(raw: bytes) -> object:
    # Bounded like every JSON from outside: depth (limits.MAX_DEPTH), finite numbers, integer size.
    try:
        return json_value(raw)
    except UnsupportedValue as exc:
        shown = _text(raw[:40])
        shown = shown if len(raw) <= 40 else shown[:37] + "..."
        raise SqliteValueError(f"a JSON column holds {shown!r}: {exc}") from None


def _convert_timestamp(raw: bytes) -> str:
    try:
        return iso_datetime(datetime.fromisoformat(_text(raw).strip()))
    except ValueError:
        raise SqliteValueError(
            f"a TIMESTAMP column holds {_text(raw)!r}, which is not ISO 8601 (YYYY-MM-DD HH:MM:SS)"
        ) from None


def _convert_date(raw: bytes) -> str:
    try:
        return date.fromisoformat(_text(raw).strip()).isoformat()
    except ValueError:
        raise SqliteValueError(f"a DATE column holds {_text(raw)!r}, which is not YYYY-MM-DD") from None


for _name in ("BOOLEAN", "BOOL"):
    sqlite3.register_converter(_name, _convert_boolean)
for _name in ("JSON", "JSONB"):
    sqlite3.register_converter(_name, _convert_json)
for _name in ("TIMESTAMP", "TIMESTAMPTZ", "DATETIME"):
    sqlite3.register_converter(_name, _convert_timestamp)
sqlite3.register_converter("DATE", _convert_date)

_READ_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
# Functions that reach outside the database file (the last three exist only where an application or
# the sqlite3 shell registered them, but a query must not call them whatever the build).
_DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit"})


def _authorize(action: int, arg1: str | None, arg2: str | None, *_: object) -> int:
    if action not in _READ_ACTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def classify(exc: sqlite3.Error) -> QueryErrorKind:
    text = str(exc).lower()
    if isinstance(exc, sqlite3.ProgrammingError) and "one statement at a time" in text:
        return "multiple_statements"
    if "interrupted" in text:
        return "timeout"
    if "no such table" in text:
        return "missing_table"
    if "syntax error" in text or "incomplete input" in text or "unrecognized token" in text:
        return "syntax"
    if "incorrect number of bindings" in text:
        return "syntax"
    if "readonly" in text or "authoriz" in text or "query_only" in text:
        return "read_only"
    if "unable to open" in text or "not a database" in text:
        return "connection"
    return "other"


class SQLiteDatabase(Database):
    def __init__(self, url: str, *, timeout: float, max_rows: int) -> None:
        super().__init__(url, timeout=timeout, max_rows=max_rows)
        path = sqlite_path(url)
        self.path = path
        uri = path.resolve().as_uri() + "?mode=ro"
        try:
            connection = sqlite3.connect(
                uri,
                uri=True,
                timeout=timeout,
                detect_types=sqlite3.PARSE_DECLTYPES,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise QueryError(f"cannot open SQLite database {str(path)!r}: {exc}", "connection") from None
        try:
            connection.execute("PRAGMA query_only = ON")
            # Opening is lazy: reading the schema now turns "not a database" into a connect error.
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            connection.close()
            raise QueryError(f"cannot open SQLite database {str(path)!r}: {exc}", "connection") from None
        connection.set_authorizer(_authorize)
        self._connection: sqlite3.Connection | None = connection

    def _query(self, sql: str, params: list[Param]) -> list[Row]:
        connection = self._connection
        if connection is None:
            raise QueryError("the database is closed", "connection")
        check_statement(sql, functions=False)
        deadline = time.monotonic() + self.timeout
        connection.set_progress_handler(lambda: time.monotonic() > deadline, _PROGRESS_STEPS)
        try:
            cursor = connection.execute(sql, params)
            if cursor.description is None:
                raise QueryError(
                    "the statement returns no rows (it is not a query); @query runs one SELECT", "read_only"
                )
            columns = [column[0] for column in cursor.description]
            rows = cursor.fetchmany(self.max_rows + 1)
            cursor.close()
        except SqliteValueError as exc:
            raise QueryError(str(exc), "unsupported_value") from None
        except sqlite3.Error as exc:
            kind = classify(exc)
            message = str(exc)
            if kind == "timeout":
                message = f"the query was cancelled after {self.timeout:g} s (the timeout)"
            elif kind == "read_only":
                message = f"{message}: the database is read-only to @query, which runs one SELECT"
            raise QueryError(scrub(message, self._secrets), kind) from None
        finally:
            connection.set_progress_handler(None, 0)
        if len(rows) > self.max_rows:
            raise too_many_rows(self.max_rows)
        try:
            return rows_to_dicts(columns, rows, [_sqlite_cell] * len(columns))
        except UnsupportedValue as exc:  # pragma: no cover - rows_to_dicts wraps these
            raise QueryError(str(exc), "unsupported_value") from None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _sqlite_cell(value: object) -> object:
    # Storage classes are NULL/INTEGER/REAL/TEXT/BLOB plus whatever the converters produced.
    kind = type(value)
    if kind is str or kind is int or kind is bool:
        return value
    return json_safe(value)
