"""The event tables (the contract in docs/events.md) and the write connection that creates and fills them.

The same tables on SQLite and PostgreSQL; timestamps are epoch seconds (UTC) as REAL / DOUBLE PRECISION
so every query is portable. `init_schema` is idempotent: every statement is `IF NOT EXISTS`, an older
store is migrated in place (schema version 2 added the `failed` and `since` columns of
`tusk_event_drops`), and the version row is written once (under an advisory lock on PostgreSQL, so two
concurrent `tusk db init` runs still leave exactly one row).

The connection is `tusklang.db`'s write connection (same URLs, placeholders and redaction as every
other layer); its errors are `EventStoreError`, a `tusklang.db.WriteError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from ..db.errors import WriteError
from ..db.urls import Dialect, dialect_of
from ..db.write import WriteConnection

__all__ = [
    "ERASURES_TABLE",
    "EVENT_COLUMNS",
    "LOSS_COLUMNS",
    "SCHEMA_VERSION",
    "Connection",
    "Dialect",
    "EventRow",
    "EventStoreError",
    "ddl",
    "dialect_of",
    "erasures_ddl",
    "has_loss_columns",
    "init_schema",
    "purge",
]

SCHEMA_VERSION: Final = 2

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


# What version 2 added to tusk_event_drops: events lost to failed writes, and when the losses began.
LOSS_COLUMNS: Final = ("failed", "since")


def _real(dialect: Dialect) -> str:
    return "REAL" if dialect == "sqlite" else "DOUBLE PRECISION"


# The erasure log (`tusk db erase`, tusklang/events/privacy.py): one row per erasure, never an id or a
# hash of one. A table that writers never touch, so adding it left the schema version at 2: an older
# tusklang keeps writing events to a store that has it.
ERASURES_TABLE: Final = "tusk_erasures"


def erasures_ddl(dialect: Dialect) -> str:
    if dialect == "sqlite":
        ident, real = "id INTEGER PRIMARY KEY", "REAL"
    else:
        ident, real = "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "DOUBLE PRECISION"
    return (
        f"CREATE TABLE IF NOT EXISTS {ERASURES_TABLE} ({ident}, erased_at {real} NOT NULL, "
        "units INTEGER NOT NULL, events_deleted INTEGER NOT NULL, masked_forms INTEGER NOT NULL, request TEXT)"
    )


def ddl(dialect: Dialect) -> list[str]:
    """The CREATE statements for one dialect, in order."""
    real = _real(dialect)
    if dialect == "sqlite":
        ident = "id          INTEGER PRIMARY KEY,"
    else:
        ident = "id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    return [
        "CREATE TABLE IF NOT EXISTS tusk_schema (version INTEGER NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS tusk_events (\n    {ident}" + _COMMON_TAIL.format(real=real),
        "CREATE INDEX IF NOT EXISTS tusk_events_kind_flag ON tusk_events (kind, flag, variant)",
        "CREATE INDEX IF NOT EXISTS tusk_events_kind_event ON tusk_events (kind, event)",
        "CREATE INDEX IF NOT EXISTS tusk_events_time ON tusk_events (occurred_at)",
        f"CREATE TABLE IF NOT EXISTS tusk_event_drops (occurred_at {real} NOT NULL, dropped INTEGER NOT NULL, "
        f"failed INTEGER NOT NULL DEFAULT 0, since {real})",
        erasures_ddl(dialect),
    ]


class EventStoreError(WriteError):
    """Connecting to or writing the event store failed; the message never holds the URL's password."""


class Connection(WriteConnection):
    """The event store's write connection: `tusklang.db.WriteConnection` plus COPY into tusk_events.

    Not thread-safe by itself: the store serialises access. Placeholders in `execute` are `?` on both
    backends, so callers write one SQL text.
    """

    error_class = EventStoreError

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        super().__init__(url, timeout=timeout, wal=True)

    def rowcount(self, sql: str, params: Sequence[object] = ()) -> int:
        return self.execute(sql, params).rowcount

    def insert_events(self, rows: Iterable[EventRow]) -> None:
        """Append rows to tusk_events in the open transaction: COPY on PostgreSQL, INSERTs on SQLite."""
        self.insert_rows("tusk_events", EVENT_COLUMNS, rows, "writing events")


def _columns(conn: Connection, table: str) -> set[str]:
    if conn.dialect == "sqlite":
        return {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}
    # The table the search path resolves to, as every statement of the store does.
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(?) AND attnum > 0 AND NOT attisdropped",
        (table,),
    )
    return {str(row[0]) for row in rows}


def has_loss_columns(conn: Connection) -> bool:
    """Whether tusk_event_drops has version 2's `failed`/`since` (a store not yet migrated has not)."""
    return set(LOSS_COLUMNS) <= _columns(conn, "tusk_event_drops")


def _migrate(conn: Connection) -> None:
    """Bring version-1 tables to this version, in the open transaction (columns only ever added)."""
    present = _columns(conn, "tusk_event_drops")
    real = _real(conn.dialect)
    for name, kind in (("failed", "INTEGER NOT NULL DEFAULT 0"), ("since", real)):
        if name not in present:
            conn.execute(f"ALTER TABLE tusk_event_drops ADD COLUMN {name} {kind}")


def init_schema(conn: Connection) -> int:
    """Create the tables and indexes if missing, migrate older ones, record the version; returns it.

    Refuses (EventStoreError, TSK256) a database whose recorded version is newer than this code's,
    changing nothing.
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
        version = max((int(r[0]) for r in rows), default=0)
        if version > SCHEMA_VERSION:
            conn.rollback()
            raise EventStoreError(
                f"the event tables are at schema version {version}, newer than this tusklang's "
                f"{SCHEMA_VERSION}; upgrade tusklang",
                "schema",
            )
        _migrate(conn)
        if not rows:
            conn.execute("INSERT INTO tusk_schema (version) VALUES (?)", (SCHEMA_VERSION,))
        elif version < SCHEMA_VERSION:
            conn.execute("UPDATE tusk_schema SET version = ?", (SCHEMA_VERSION,))
        conn.commit()
    except EventStoreError:
        conn.rollback()
        raise
    return SCHEMA_VERSION


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
