"""PostgreSQL backend (psycopg 3): each query is one described statement in a READ ONLY transaction.

Read-only whatever the text, for any role, enforced by the server where it can be:
- the statement is prepared and DESCRIBED before it runs (libpq PQprepare/PQdescribePrepared): Parse
  accepts exactly one statement, and one whose result has no columns (COPY, SET, DDL, DML without
  RETURNING) is refused without being executed. Utility statements that do return rows (EXPLAIN
  ANALYZE runs its statement, SHOW, FETCH) and COPY are refused by their first word (tusklang/db/guard.py);
- it runs between `BEGIN READ ONLY` and `ROLLBACK`, with `SET LOCAL statement_timeout`/`lock_timeout`;
- a login that could act on the server (superuser, replication, or a member of pg_read_server_files,
  pg_write_server_files, pg_execute_server_program, pg_signal_backend) runs each query as
  `SET LOCAL ROLE pg_read_all_data` (PostgreSQL 14+): it can read every table, and the server itself
  refuses file access, programs, large-object export and signalling other sessions. Such a login with
  no pg_read_all_data to drop to is refused when connecting;
- session-level advisory locks outlive ROLLBACK: every query ends with `pg_advisory_unlock_all()`;
- functions the server cannot stop for a privileged login (`set_config` can change the role back,
  functions that run SQL text) are refused by name (tusklang/db/guard.py), as are the other known
  side-effect functions, for a clear early error.

Values are converted per column, chosen once from the column's type OID, so the common types
(integers, text, booleans) cost nothing per row; json/jsonb are decoded by tusklang.safejson (bounded
depth), numerics are bounded (limits.MAX_INT_DIGITS).
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache

import psycopg
import psycopg.errors
from psycopg.adapt import Loader, PyFormat, Transformer
from psycopg.pq import ExecStatus

from . import (
    Converter,
    Database,
    JSONText,
    Param,
    QueryError,
    QueryErrorKind,
    Row,
    UnsupportedValue,
    decimal_value,
    iso_datetime,
    json_safe,
    json_value,
    rows_to_dicts,
    scrub,
    too_many_rows,
)
from .guard import check_statement
from .placeholders import Converted, qmark_to_dollar, qmark_to_pyformat

# Type OIDs from pg_type.h; psycopg already hands these back as JSON-safe Python values.
_PASSTHROUGH_OIDS = frozenset({16, 18, 19, 20, 21, 23, 25, 26, 1042, 1043})
_JSON_OIDS = frozenset({114, 3802})  # json, jsonb
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
    return decimal_value(value) if isinstance(value, Decimal) else json_safe(value)


def _json(value: object) -> object:
    return json_value(value.raw) if isinstance(value, JSONText) else json_safe(value)


class _JSONTextLoader(Loader):
    """json/jsonb as undecoded text: psycopg's own loader calls json.loads, which has no depth limit
    (RecursionError on deep documents) and takes any number; `_json` decodes it with limits."""

    def load(self, data: object) -> JSONText:
        return JSONText(bytes(data))  # type: ignore[call-overload]


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
    if oid in _JSON_OIDS:
        return _json
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


# Roles whose members can act on the server beyond reading (files, programs, other sessions).
_SERVER_ROLES = ("pg_read_server_files", "pg_write_server_files", "pg_execute_server_program", "pg_signal_backend")
_READ_ROLE = "pg_read_all_data"
_PRIVILEGES_SQL = """
SELECT r.rolsuper OR r.rolreplication OR EXISTS (
           SELECT 1 FROM pg_roles p
           WHERE p.rolname = ANY(%s) AND pg_has_role(session_user, p.oid, 'MEMBER')
       ) AS privileged,
       EXISTS (
           SELECT 1 FROM pg_roles p WHERE p.rolname = %s AND pg_has_role(session_user, p.oid, 'MEMBER')
       ) AS can_drop
FROM pg_roles r WHERE r.rolname = session_user
"""


class PostgresDatabase(Database):
    def __init__(self, url: str, *, timeout: float, max_rows: int) -> None:
        super().__init__(url, timeout=timeout, max_rows=max_rows)
        self._raw_url = url
        # The role each query runs as (SET LOCAL ROLE), or None to keep the login's own.
        self._query_role: str | None = None
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
            row = connection.execute(_PRIVILEGES_SQL, [list(_SERVER_ROLES), _READ_ROLE]).fetchone()
        except psycopg.Error as exc:
            connection.close()
            raise self._error(exc, classify(exc)) from None
        privileged, can_drop = (bool(row[0]), bool(row[1])) if row is not None else (False, False)
        if privileged and not can_drop:
            connection.close()
            raise QueryError(
                "the database role can act on the server (superuser, replication, or a member of "
                f"{', '.join(_SERVER_ROLES)}) and has no {_READ_ROLE} role to run queries as "
                "(PostgreSQL 14+); @query refuses to run with such a role",
                "read_only",
                hint="connect @query with a role that has SELECT privileges only",
            )
        self._query_role = _READ_ROLE if privileged else None
        for name in ("json", "jsonb"):
            connection.adapters.register_loader(name, _JSONTextLoader)
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

    def _describe(self, connection: psycopg.Connection[tuple[object, ...]], sql: str, params: list[Param]) -> int:
        """The number of result columns of `sql`, found by preparing it (never running it)."""
        dumper = Transformer(connection)
        dumper.dump_sequence(params, [PyFormat.AUTO] * len(params))  # the parameter types psycopg will send
        pgconn = connection.pgconn
        encoding = connection.info.encoding
        text = qmark_to_dollar(sql).sql.encode(encoding)
        for result in (
            pgconn.prepare(b"", text, dumper.types or None),
            pgconn.describe_prepared(b""),
        ):
            if result.status != ExecStatus.COMMAND_OK:
                raise psycopg.errors.error_from_result(result, encoding=encoding)
        return int(result.nfields)

    def _query(self, sql: str, params: list[Param]) -> list[Row]:
        converted = _convert_sql(sql)
        if converted.placeholders != len(params):
            raise QueryError(
                f"the query has {converted.placeholders} `?` placeholder(s) but {len(params)} parameter(s) were given",
                "syntax",
            )
        check_statement(sql)
        connection = self._live_connection()
        timeout_ms = max(1, round(self.timeout * 1000))
        # Our own literals (an integer, a fixed role name), not user input: one round trip opens the
        # guarded transaction.
        setup = f"BEGIN READ ONLY; SET LOCAL statement_timeout = {timeout_ms}; SET LOCAL lock_timeout = {timeout_ms}"
        if self._query_role is not None:
            setup += f"; SET LOCAL ROLE {self._query_role}"
        try:
            connection.execute(setup)
            try:
                if self._describe(connection, sql, params) == 0:
                    raise QueryError(
                        "the statement returns no rows (it is not a query); @query runs one SELECT",
                        "read_only",
                        hint="@query runs one SELECT (or WITH/VALUES/TABLE) that only reads",
                    )
                with connection.cursor() as cursor:
                    cursor.execute(converted.sql, params, prepare=True)
                    description = cursor.description
                    if description is None:
                        raise QueryError("the statement returned no rows; @query runs one SELECT", "read_only")
                    rows = cursor.fetchmany(self.max_rows + 1)
            finally:
                if not connection.broken:
                    # Session-level advisory locks survive the rollback: release whatever the query took.
                    connection.execute("ROLLBACK; SELECT pg_advisory_unlock_all()")
        except psycopg.Error as exc:
            # A dropped connection is reopened by the next query.
            kind: QueryErrorKind = "connection" if connection.broken else classify(exc)
            raise self._error(exc, kind) from None
        except UnicodeEncodeError as exc:
            # Text the database's encoding cannot hold (a LATIN1 database and a "€" in the SQL or a parameter).
            raise QueryError(
                f"{exc.object[exc.start : exc.end]!r} cannot be sent to this database: its encoding "
                f"({connection.info.encoding}) has no such character",
                "syntax",
            ) from None
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
