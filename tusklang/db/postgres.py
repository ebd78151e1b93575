"""PostgreSQL backend (psycopg 3): each query is one statement in its own READ ONLY transaction.

Why it cannot write, enforced by the server:
- every query runs between `BEGIN READ ONLY` and `ROLLBACK` (and the session default is read-only);
- the statement goes through the extended protocol (psycopg's `prepare=True`: Parse/Bind/Execute),
  which accepts exactly one statement, so `SELECT 1; DELETE ...` is refused even without parameters;
- `SET LOCAL statement_timeout` bounds it; the row limit is checked before any row is converted.

Values are converted per column, chosen once from the column's type OID, so the common types
(integers, text, booleans, JSON) cost nothing per row.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache

import psycopg

from . import (
    Converter,
    Database,
    Param,
    QueryError,
    QueryErrorKind,
    Row,
    UnsupportedValue,
    iso_datetime,
    json_safe,
    rows_to_dicts,
    scrub,
    too_many_rows,
)
from .placeholders import Converted, qmark_to_pyformat

# Type OIDs from pg_type.h; psycopg already hands these back as JSON-safe Python values.
_PASSTHROUGH_OIDS = frozenset({16, 18, 19, 20, 21, 23, 25, 26, 114, 1042, 1043, 3802})
_FLOAT_OIDS = frozenset({700, 701})
_NUMERIC_OID = 1700
_TIMESTAMPTZ_OID = 1184
_ISOFORMAT_OIDS = frozenset({1114, 1082, 1083, 1266})  # timestamp, date, time, timetz

_MULTIPLE_STATEMENTS = "cannot insert multiple commands"


def _float(value: object) -> object:
    if math.isfinite(value):  # type: ignore[arg-type]
        return value
    raise UnsupportedValue(f"{value!r} is not a JSON number")


def _numeric(value: object) -> object:
    if not isinstance(value, Decimal):
        return json_safe(value)
    if not value.is_finite():
        raise UnsupportedValue(f"{value} is not a JSON number")
    integral = int(value)
    return integral if integral == value else float(value)


def _timestamptz(value: object) -> object:
    return iso_datetime(value) if isinstance(value, datetime) else json_safe(value)


def _plain_isoformat(value: object) -> object:
    # timestamp (naive), date and time: psycopg's loaders return exactly these types.
    return value.isoformat() if isinstance(value, date | time) else json_safe(value)


def converter_for(oid: int) -> Converter | None:
    if oid in _PASSTHROUGH_OIDS:
        return None
    if oid in _FLOAT_OIDS:
        return _float
    if oid == _NUMERIC_OID:
        return _numeric
    if oid == _TIMESTAMPTZ_OID:
        return _timestamptz
    if oid in _ISOFORMAT_OIDS:
        return _plain_isoformat
    return json_safe


@lru_cache(maxsize=256)
def _convert_sql(sql: str) -> Converted:
    return qmark_to_pyformat(sql)


def classify(exc: psycopg.Error) -> QueryErrorKind:
    state = exc.sqlstate or ""
    primary = (exc.diag.message_primary or "") if state else ""
    if state == "42601":
        return "multiple_statements" if _MULTIPLE_STATEMENTS in primary else "syntax"
    if state in ("42P01", "3F000"):
        return "missing_table"
    if state == "57014":
        return "timeout"
    if state == "25006":
        return "read_only"
    if (
        state.startswith("08")
        or state in ("57P01", "57P02", "57P03")
        or (not state and isinstance(exc, psycopg.OperationalError))
    ):
        return "connection"
    if state == "2D000" or (state == "0A000" and "transaction" in primary.lower()):
        # Transaction control (COMMIT/ROLLBACK/...) inside the read-only transaction.
        return "read_only"
    return "other"


def clean_message(exc: BaseException) -> str:
    """The server's primary message (no SQL echo); for client errors, the text on one line."""
    if isinstance(exc, psycopg.Error) and exc.sqlstate and exc.diag.message_primary:
        return exc.diag.message_primary
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return re.sub(r"\s+", " ", "; ".join(lines)) or type(exc).__name__


class PostgresDatabase(Database):
    def __init__(self, url: str, *, timeout: float, max_rows: int) -> None:
        super().__init__(url, timeout=timeout, max_rows=max_rows)
        self._raw_url = url
        self._connection: psycopg.Connection[tuple[object, ...]] | None = self._open()
        self._closed = False

    def _error(self, exc: BaseException, kind: QueryErrorKind) -> QueryError:
        message = scrub(clean_message(exc), self._secrets)
        sqlstate = exc.sqlstate if isinstance(exc, psycopg.Error) else None
        if kind == "timeout":
            message = f"the query was cancelled after {self.timeout:g} s (the timeout): {message}"
        elif kind == "read_only":
            message = f"{message}: the database is read-only to @query, which runs one SELECT"
        return QueryError(message, kind, sqlstate=sqlstate)

    def _open(self) -> psycopg.Connection[tuple[object, ...]]:
        # libpq counts connect_timeout in whole seconds and treats values below 2 as 2.
        connect_timeout = max(2, math.ceil(self.timeout))
        try:
            connection = psycopg.connect(self._raw_url, connect_timeout=connect_timeout, autocommit=True)
        except (psycopg.Error, OSError) as exc:
            raise self._error(exc, "connection") from None
        try:
            # A second line of defence behind BEGIN READ ONLY; UTC so DATE(timestamptz) is stable.
            connection.execute("SET default_transaction_read_only = on; SET TIME ZONE 'UTC'")
        except psycopg.Error as exc:
            connection.close()
            raise self._error(exc, classify(exc)) from None
        return connection

    def _live_connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._closed:
            raise QueryError("the database is closed", "connection")
        connection = self._connection
        if connection is None or connection.closed or connection.broken:
            if connection is not None:
                connection.close()
            self._connection = None
            connection = self._connection = self._open()
        return connection

    def _query(self, sql: str, params: list[Param]) -> list[Row]:
        converted = _convert_sql(sql)
        if converted.placeholders != len(params):
            raise QueryError(
                f"the query has {converted.placeholders} `?` placeholder(s) but {len(params)} parameter(s) were given",
                "syntax",
            )
        connection = self._live_connection()
        timeout_ms = max(1, round(self.timeout * 1000))
        try:
            # Our own literal integer, not user input: one round trip opens the guarded transaction.
            connection.execute(f"BEGIN READ ONLY; SET LOCAL statement_timeout = {timeout_ms}")
            try:
                with connection.cursor() as cursor:
                    cursor.execute(converted.sql, params, prepare=True)
                    description = cursor.description
                    if description is None:
                        raise QueryError("the statement returned no result set; @query runs SELECT statements", "other")
                    rows = cursor.fetchmany(self.max_rows + 1)
            finally:
                if not connection.broken:
                    connection.execute("ROLLBACK")
        except psycopg.Error as exc:
            # A dropped connection is reopened by the next query.
            kind: QueryErrorKind = "connection" if connection.broken else classify(exc)
            raise self._error(exc, kind) from None
        if len(rows) > self.max_rows:
            raise too_many_rows(self.max_rows)
        columns = [column.name for column in description]
        converters: list[Converter | None] = [converter_for(column.type_code) for column in description]
        return rows_to_dicts(columns, rows, converters)

    def close(self) -> None:
        self._closed = True
        if self._connection is not None:
            self._connection.close()
            self._connection = None
