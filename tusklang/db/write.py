"""Write connections: the side of `tusklang.db` that the event store and the delivery controller use.

Same URLs as the read-only `connect` (tusklang/db/urls.py), the same `?` placeholders on both backends
(translated for psycopg by the string-literal-aware tusklang/db/placeholders.py), the same redaction,
and one error class: every failure is a `WriteError` (or the subclass a caller names in
`error_class`), whose message holds the redacted URL, never the password.

Both drivers run in autocommit mode; a transaction is explicit (`begin`/`commit`/`rollback`, or the
`transaction()` block), so a plain statement outside one never leaves a transaction open.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from types import TracebackType
from typing import Any, ClassVar, Self

from .errors import ErrorKind, WriteError
from .placeholders import qmark_to_pyformat
from .urls import Dialect, dialect_of, redact_url, scrub, sqlite_path, url_secrets

__all__ = ["Result", "WriteConnection", "connect_write", "storable_text"]

# SQLite allows 32,766 bound parameters per statement (since 3.32); rows x columns stays under it.
_SQLITE_MAX_PARAMS = 30_000


class Result(list[tuple[Any, ...]]):
    """The rows a statement returned (a list of tuples), plus `rowcount` and cursor-style fetches."""

    rowcount: int = -1

    def fetchone(self) -> tuple[Any, ...] | None:
        return self[0] if self else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self)


@lru_cache(maxsize=512)
def _pyformat(sql: str) -> str:
    return qmark_to_pyformat(sql).sql


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _kind(exc: BaseException) -> ErrorKind:
    state = getattr(exc, "sqlstate", None) or ""
    text = str(exc).lower()
    if state == "42P01" or "no such table" in text:
        return "missing_table"
    if state.startswith("08") or state in ("57P01", "57P02", "57P03"):
        return "connection"
    if isinstance(exc, UnicodeError) or state.startswith("22"):
        # A value the database cannot store: a lone surrogate, a NUL in PostgreSQL text, ...
        return "unsupported_value"
    return "write"


def storable_text(text: str) -> str:
    """`text` with what no database stores as text replaced by U+FFFD: lone surrogates (from a JSON
    body's `\\ud800` escape, or non-UTF-8 bytes decoded with surrogateescape) and NUL."""
    if text.isascii() and "\x00" not in text:
        return text
    return "".join("\ufffd" if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in text)


class WriteConnection:
    """One write connection (sqlite3 or psycopg 3). Not thread-safe by itself: callers serialise use."""

    error_class: ClassVar[type[WriteError]] = WriteError

    def __init__(self, url: str, *, timeout: float = 10.0, wal: bool = False) -> None:
        self.dialect: Dialect = dialect_of(url)
        self.url = redact_url(url)
        self._secrets = url_secrets(url)
        self.raw: Any
        if self.dialect == "sqlite":
            path = sqlite_path(url)
            memory = str(path) == ":memory:"
            if not memory and not path.resolve().parent.is_dir():
                raise self.error_class(f"{self.url}: the folder {path.parent} does not exist", "connection")
            try:
                raw = sqlite3.connect(str(path), timeout=timeout, check_same_thread=False, isolation_level=None)
                raw.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
                if wal and not memory:
                    # WAL lets report queries read while the tracker writes.
                    raw.execute("PRAGMA journal_mode = WAL")
                    raw.execute("PRAGMA synchronous = NORMAL")
            except (sqlite3.Error, OSError) as exc:
                raise self._connect_error(exc) from None
            self.raw = raw
        else:
            import psycopg

            try:
                self.raw = psycopg.connect(url, connect_timeout=max(2, math.ceil(timeout)), autocommit=True)
            except (psycopg.Error, OSError) as exc:
                raise self._connect_error(exc) from None

    # --- errors ------------------------------------------------------------------------------------

    def clean(self, text: str) -> str:
        """Driver text without the URL or its password."""
        return scrub(text, self._secrets)

    def _connect_error(self, exc: BaseException) -> WriteError:
        return self.error_class(f"cannot connect to {self.url}: {self.clean(first_line(exc))}", "connection")

    def fail(self, what: str, exc: BaseException) -> WriteError:
        """The error for `what` (e.g. "writing events") failing with the driver's `exc`."""
        kind = "connection" if self.broken else _kind(exc)
        return self.error_class(
            f"{what} failed on {self.url}: {self.clean(first_line(exc))}",
            kind,
            sqlstate=getattr(exc, "sqlstate", None),
        )

    # --- statements --------------------------------------------------------------------------------

    def sql(self, text: str) -> str:
        """`?` placeholders as the driver wants them (psycopg: `%s`, every literal `%` doubled)."""
        return text if self.dialect == "sqlite" else _pyformat(text)

    def execute(self, sql: str, params: Sequence[object] = ()) -> Result:
        """Run one statement (in the open transaction, if any); its rows, and its rowcount."""
        try:
            cursor = self.raw.execute(self.sql(sql), tuple(params))
            result = Result(cursor.fetchall() if cursor.description is not None else ())
            result.rowcount = int(cursor.rowcount)
            return result
        except Exception as exc:  # sqlite3.Error, psycopg.Error, and driver-side ValueError/TypeError
            error = self.fail("a statement", exc)
            self.rollback()
            raise error from None

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[object]], what: str) -> None:
        """Append rows in the open transaction: COPY on PostgreSQL, multi-row INSERTs on SQLite.

        `table` and `columns` are the caller's own names, never user input.
        """
        names = ", ".join(columns)
        try:
            if self.dialect == "sqlite":
                # Multi-row VALUES, one statement per chunk: executemany steps once per row, and each
                # step releases and re-takes the GIL, so a busy evaluating thread made the writer wait
                # a switch interval per row (a convoy: ~1,000 rows/s while evaluation ran flat out).
                marks = "(" + ", ".join("?" * len(columns)) + ")"
                per_chunk = max(1, _SQLITE_MAX_PARAMS // len(columns))
                batch = list(rows)
                for start in range(0, len(batch), per_chunk):
                    chunk = batch[start : start + per_chunk]
                    params = [value for row in chunk for value in row]
                    self.raw.execute(f"INSERT INTO {table} ({names}) VALUES {', '.join([marks] * len(chunk))}", params)
            else:
                with self.raw.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        except Exception as exc:
            error = self.fail(what, exc)
            self.rollback()
            raise error from None

    # --- transactions ------------------------------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        if self.dialect == "sqlite":
            return bool(self.raw.in_transaction)
        from psycopg.pq import TransactionStatus

        return bool(self.raw.pgconn.transaction_status != TransactionStatus.IDLE)

    def begin(self) -> None:
        # SQLite: IMMEDIATE takes the write lock now (waiting up to the busy timeout), not at the first
        # write, so two writers cannot both read and then fail to upgrade.
        try:
            self.raw.execute("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
        except Exception as exc:  # "database is locked" after the busy timeout, a closed connection
            raise self.fail("starting a transaction", exc) from None

    def commit(self) -> None:
        try:
            self.raw.execute("COMMIT")
        except Exception as exc:
            error = self.fail("commit", exc)
            self.rollback()
            raise error from None

    def rollback(self) -> None:
        """Roll back the open transaction, if any; never raises (the caller reports the first error)."""
        try:
            if not self.broken and self.in_transaction:
                self.raw.execute("ROLLBACK")
        except Exception:
            pass

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT, rolled back when the block raises."""
        self.begin()
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()

    @property
    def broken(self) -> bool:
        """The connection is gone (server restart, killed session) and must be replaced."""
        if self.dialect == "postgresql":
            return bool(self.raw.closed or self.raw.broken)
        return False

    def close(self) -> None:
        try:
            self.raw.close()
        except Exception:
            pass

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def connect_write(url: str, *, timeout: float = 10.0, wal: bool = False) -> WriteConnection:
    """A WriteConnection for `url` (DatabaseURLError for an unsupported URL, WriteError if unreachable)."""
    return WriteConnection(url, timeout=timeout, wal=wal)
