"""The event tables (the contract in docs/events.md) and the write connections that create and fill them.

The same tables on SQLite and PostgreSQL; timestamps are epoch seconds (UTC) as REAL / DOUBLE PRECISION
so every query is portable. `init_schema` is idempotent: every statement is `IF NOT EXISTS` and the
version row is inserted only when the table is empty (under an advisory lock on PostgreSQL, so two
concurrent `tusk db init` runs still leave exactly one row).

These are WRITE connections, unlike `tusklang.db` (read-only, for `@query`); they share its URL forms
(`sqlite:///relative.db`, `sqlite:////absolute.db`, `postgresql://...`) and its rule that no message
ever contains the URL or its password.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Final, Literal, Self

from ..db import redact_url, scrub, url_secrets
from ..db.sqlite import sqlite_path

SCHEMA_VERSION: Final = 1

Dialect = Literal["sqlite", "postgresql"]

# Column order of an event row everywhere in this package (queue tuples, executemany, COPY).
EVENT_COLUMNS: Final = (
    "kind",
    "occurred_at",
    "flag",
    "variant",
    "reason",
    "event",
    "unit_id",
    "value",
    "sample_rate",
    "attributes",
)
EventRow = tuple[str, float, str | None, str | None, str | None, str | None, str, float | None, float, str | None]

_COMMON_TAIL = """
    kind        TEXT NOT NULL,
    occurred_at {real} NOT NULL,
    flag        TEXT,
    variant     TEXT,
    reason      TEXT,
    event       TEXT,
    unit_id     TEXT NOT NULL,
    value       {real},
    sample_rate {real} NOT NULL,
    attributes  TEXT
)"""


def ddl(dialect: Dialect) -> list[str]:
    """The CREATE statements for one dialect, in order."""
    if dialect == "sqlite":
        real, ident = "REAL", "id          INTEGER PRIMARY KEY,"
    else:
        real, ident = "DOUBLE PRECISION", "id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    return [
        "CREATE TABLE IF NOT EXISTS tusk_schema (version INTEGER NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS tusk_events (\n    {ident}" + _COMMON_TAIL.format(real=real),
        "CREATE INDEX IF NOT EXISTS tusk_events_kind_flag ON tusk_events (kind, flag, variant)",
        "CREATE INDEX IF NOT EXISTS tusk_events_kind_event ON tusk_events (kind, event)",
        "CREATE INDEX IF NOT EXISTS tusk_events_time ON tusk_events (occurred_at)",
        f"CREATE TABLE IF NOT EXISTS tusk_event_drops (occurred_at {real} NOT NULL, dropped INTEGER NOT NULL)",
    ]


class EventStoreError(Exception):
    """Connecting to or writing the event store failed; the message never holds the URL's password."""


def dialect_of(url: str) -> Dialect:
    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        return "sqlite"
    if scheme in ("postgresql", "postgres"):
        return "postgresql"
    shown = f"{scheme!r}" if scheme else "none"
    raise EventStoreError(
        f"unsupported database URL scheme {shown}; use sqlite:///relative/path.db, sqlite:////absolute/path.db "
        "or postgresql://..."
    )


class Connection:
    """One write connection (sqlite3 or psycopg 3) with the few operations the event store needs.

    Not thread-safe by itself: the store serialises access. Placeholders in `execute` are `?` on both
    backends (translated for psycopg), so callers write one SQL text.
    """

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.dialect: Dialect = dialect_of(url)
        self.url = redact_url(url)
        self._secrets = url_secrets(url)
        self._raw: Any
        try:
            if self.dialect == "sqlite":
                path = sqlite_path(url)
                raw = sqlite3.connect(str(path), timeout=timeout, check_same_thread=False, isolation_level=None)
                raw.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
                if str(path) != ":memory:":
                    # WAL lets report queries read while the tracker writes.
                    raw.execute("PRAGMA journal_mode = WAL")
                    raw.execute("PRAGMA synchronous = NORMAL")
                self._raw = raw
            else:
                import psycopg

                self._raw = psycopg.connect(url, connect_timeout=max(1, int(timeout)), autocommit=False)
        except EventStoreError:
            raise
        except ValueError as exc:
            raise EventStoreError(self._clean(str(exc))) from None
        except Exception as exc:  # sqlite3.Error, psycopg.Error, OSError: all become one clean message
            raise EventStoreError(f"cannot connect to {self.url}: {self._clean(_first_line(exc))}") from None

    def _clean(self, text: str) -> str:
        return scrub(text, self._secrets)

    def _sql(self, sql: str) -> str:
        return sql if self.dialect == "sqlite" else sql.replace("?", "%s")

    def _fail(self, what: str, exc: Exception) -> EventStoreError:
        return EventStoreError(f"{what} failed on {self.url}: {self._clean(_first_line(exc))}")

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run one statement inside the current transaction; rows if it returns any."""
        try:
            cur = self._raw.execute(self._sql(sql), tuple(params))
            return list(cur.fetchall()) if cur.description is not None else []
        except Exception as exc:
            self.rollback()
            raise self._fail("a statement", exc) from None

    def rowcount(self, sql: str, params: Sequence[object] = ()) -> int:
        try:
            cur = self._raw.execute(self._sql(sql), tuple(params))
            return int(cur.rowcount)
        except Exception as exc:
            self.rollback()
            raise self._fail("a statement", exc) from None

    def begin(self) -> None:
        if self.dialect == "sqlite":
            try:
                self._raw.execute("BEGIN IMMEDIATE")
            except Exception as exc:  # "database is locked" after the busy timeout, a closed connection
                raise self._fail("starting a transaction", exc) from None
        # psycopg (autocommit off) opens a transaction implicitly on the first statement.

    def commit(self) -> None:
        try:
            self._raw.commit() if self.dialect == "postgresql" else self._raw.execute("COMMIT")
        except Exception as exc:
            self.rollback()
            raise self._fail("commit", exc) from None

    @property
    def broken(self) -> bool:
        """The connection is gone (server restart, killed session) and must be replaced."""
        if self.dialect == "postgresql":
            return bool(self._raw.closed or self._raw.broken)
        return False

    def rollback(self) -> None:
        try:
            if self.dialect == "postgresql":
                self._raw.rollback()
            elif self._raw.in_transaction:
                self._raw.execute("ROLLBACK")
        except Exception:
            pass  # the connection is broken; the caller already reports the original error

    def insert_events(self, rows: Iterable[EventRow]) -> None:
        """Append rows to tusk_events in the open transaction: COPY on PostgreSQL, executemany on SQLite."""
        columns = ", ".join(EVENT_COLUMNS)
        try:
            if self.dialect == "sqlite":
                # Multi-row VALUES, one statement per chunk: executemany steps once per row, and each
                # step releases and re-takes the GIL, so a busy evaluating thread made the writer wait
                # a switch interval per row (a convoy: ~1,000 rows/s while evaluation ran flat out).
                marks = "(" + ", ".join("?" * len(EVENT_COLUMNS)) + ")"
                batch = list(rows)
                for start in range(0, len(batch), _SQLITE_ROWS_PER_INSERT):
                    chunk = batch[start : start + _SQLITE_ROWS_PER_INSERT]
                    values = ", ".join([marks] * len(chunk))
                    params = [value for row in chunk for value in row]
                    self._raw.execute(f"INSERT INTO tusk_events ({columns}) VALUES {values}", params)
            else:
                with self._raw.cursor() as cur, cur.copy(f"COPY tusk_events ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        except Exception as exc:
            self.rollback()
            raise self._fail("writing events", exc) from None

    def close(self) -> None:
        try:
            self._raw.close()
        except Exception:
            pass

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# SQLite allows 32,766 bound parameters per statement (since 3.32); 10 columns x 3,000 rows stays under it.
_SQLITE_ROWS_PER_INSERT = 3_000


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def init_schema(conn: Connection) -> int:
    """Create the tables and indexes if missing and record the schema version; returns the version.

    Refuses (EventStoreError) a database whose recorded version is newer than this code's.
    """
    conn.begin()
    try:
        if conn.dialect == "postgresql":
            # Serialise concurrent inits: CREATE ... IF NOT EXISTS can still race on the catalog, and the
            # version row must be inserted once. The key is arbitrary but fixed ("tusk" in ASCII).
            conn.execute("SELECT pg_advisory_xact_lock(1953856363)")
        for statement in ddl(conn.dialect):
            conn.execute(statement)
        rows = conn.execute("SELECT version FROM tusk_schema")
        if not rows:
            conn.execute("INSERT INTO tusk_schema (version) VALUES (?)", (SCHEMA_VERSION,))
            version = SCHEMA_VERSION
        else:
            version = max(int(r[0]) for r in rows)
        conn.commit()
    except EventStoreError:
        conn.rollback()
        raise
    if version > SCHEMA_VERSION:
        raise EventStoreError(
            f"the event tables are at schema version {version}, newer than this tusklang's {SCHEMA_VERSION}; "
            "upgrade tusklang"
        )
    return version


def purge(conn: Connection, cutoff: float) -> dict[str, int]:
    """Delete events (and drop records) that occurred strictly before `cutoff` (epoch seconds)."""
    conn.begin()
    try:
        events = conn.rowcount("DELETE FROM tusk_events WHERE occurred_at < ?", (cutoff,))
        drops = conn.rowcount("DELETE FROM tusk_event_drops WHERE occurred_at < ?", (cutoff,))
        conn.commit()
    except EventStoreError:
        conn.rollback()
        raise
    return {"tusk_events": events, "tusk_event_drops": drops}
