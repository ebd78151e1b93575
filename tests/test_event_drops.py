"""Lost events are recorded: drops (queue full) and failed batches reach tusk_event_drops when the store
comes back, are visible in `EventStore.stats()`, and `tusk db init` migrates version-1 stores."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tusklang.cli import main
from tusklang.events import EventStore
from tusklang.events.schema import EventRow

T0 = 1_714_521_600.0  # 2024-05-01T00:00:00Z


def row(at: float, unit: str = "u") -> EventRow:
    return ("exposure", at, "exp", "A", "SPLIT", None, unit, None, 1.0, None)


def put_many(store: EventStore, count: int, start: float) -> None:
    for i in range(count):
        assert store.put(row(start + i * 0.001, f"u{i}"))


def losses(query: object) -> tuple[int, int, float | None, float | None]:
    found = query(
        "SELECT COALESCE(SUM(dropped), 0), COALESCE(SUM(failed), 0), MIN(since), MAX(occurred_at) FROM tusk_event_drops"
    )  # type: ignore[operator]
    dropped, failed, since, last = found[0]
    return int(dropped), int(failed), since, last


# --- SQLite ---------------------------------------------------------------------------------------------


def _block(path: Path, table: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TRIGGER block_{table} BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'blocked'); END")


def _unblock(path: Path, table: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(f"DROP TRIGGER block_{table}")


def test_failed_batches_are_recorded_at_once_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    clock = iter(range(10**6)).__next__
    with EventStore(f"sqlite:///{path}", flush_interval=60, clock=lambda: T0 + 100 + clock()) as store:
        put_many(store, 500, T0)
        store.flush()
        _block(path, "tusk_events")  # the events table refuses; the drops table still accepts
        put_many(store, 2_500, T0 + 10)
        store.flush()
        stats = store.stats()
        assert (stats.written, stats.failed, stats.failed_recorded, stats.unrecorded) == (500, 2_500, 2_500, 0)
        dropped, failed, since, _ = losses(store.query)
        assert (dropped, failed) == (0, 2_500) and since == T0 + 10  # the first lost event's time
        _unblock(path, "tusk_events")
        put_many(store, 100, T0 + 20)
        store.flush()
        assert store.stats().written == 600
    assert store.stats().as_dict()["failed_recorded"] == 2_500


def test_losses_wait_until_the_store_comes_back(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    store = EventStore(f"sqlite:///{path}", queue_size=1_000, batch_size=5_000, flush_interval=60)
    try:
        _block(path, "tusk_events")
        _block(path, "tusk_event_drops")
        put_many(store, 1_000, T0)
        assert not store.put(row(T0 + 5))  # the queue is full: dropped
        store.flush()
        stats = store.stats()
        assert (stats.dropped, stats.failed, stats.unrecorded) == (1, 1_000, 1_001)
        assert losses(store.query)[:2] == (0, 0)  # nothing could be recorded yet
        _unblock(path, "tusk_events")
        _unblock(path, "tusk_event_drops")
        store.flush()  # no new events: the losses alone are written
        assert store.stats().unrecorded == 0
        assert losses(store.query)[:2] == (1, 1_000)
    finally:
        store.close()


V1_DDL = """
CREATE TABLE tusk_schema (version INTEGER NOT NULL);
INSERT INTO tusk_schema VALUES (1);
CREATE TABLE tusk_events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, occurred_at REAL NOT NULL, flag TEXT,
    variant TEXT, reason TEXT, event TEXT, unit_id TEXT NOT NULL, value REAL, sample_rate REAL NOT NULL,
    attributes TEXT);
CREATE TABLE tusk_event_drops (occurred_at REAL NOT NULL, dropped INTEGER NOT NULL);
INSERT INTO tusk_event_drops VALUES (1.0, 5);
"""


def test_a_version_1_store_still_records_drops_and_init_migrates_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_DDL)
    url = f"sqlite:///{path}"
    # Tables managed elsewhere (create=False), not migrated: drops are still recorded, in the old shape.
    with EventStore(url, create=False, queue_size=10, flush_interval=60) as store:
        put_many(store, 10, T0)
        assert not store.put(row(T0))
        store.flush()
        assert store.stats().dropped_recorded == 1
        assert store.query("SELECT SUM(dropped) FROM tusk_event_drops") == [(6,)]
    for _ in range(2):  # idempotent
        assert main(["db", "init", "--db", url]) == 0
        assert "schema version 2" in capsys.readouterr().out
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM tusk_schema").fetchall() == [(2,)]
        assert conn.execute("SELECT occurred_at, dropped, failed, since FROM tusk_event_drops ORDER BY 1").fetchall()[
            0
        ] == (1.0, 5, 0, None)


def test_a_store_newer_than_the_code_is_refused_untouched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_DDL.replace("VALUES (1);", "VALUES (9);"))
    assert main(["db", "init", "--db", f"sqlite:///{path}"]) == 2
    assert "error[TSK256]" in capsys.readouterr().err
    with sqlite3.connect(path) as conn:  # not migrated
        assert [r[1] for r in conn.execute("PRAGMA table_info(tusk_event_drops)")] == ["occurred_at", "dropped"]


# --- PostgreSQL: the repro, REVOKE INSERT / GRANT INSERT ------------------------------------------


@pytest.fixture
def writer_url(pg_events_url: str, postgres_url: str) -> Iterator[tuple[str, psycopg.Connection, str]]:
    """The event tables in a schema of their own, written by a role without superuser powers (a
    superuser ignores REVOKE); yields (the role's URL, an admin connection, the role)."""
    role = f"tusk_writer_{uuid.uuid4().hex[:8]}"
    schema = dict(p.split("=", 1) for p in urlsplit(pg_events_url).query.split("&"))["options"]
    schema = schema.replace("-csearch_path%3D", "").replace("-csearch_path=", "")
    assert main(["db", "init", "--db", pg_events_url]) == 0
    admin = psycopg.connect(postgres_url, autocommit=True)
    admin.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        admin.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        admin.execute(f'GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
        parts = urlsplit(pg_events_url)
        host = parts.hostname or "127.0.0.1"
        port = f":{parts.port}" if parts.port else ""
        url = urlunsplit((parts.scheme, f"{role}@{host}{port}", parts.path, parts.query, ""))
        yield url, admin, f'"{schema}"'
    finally:
        admin.execute(f'DROP OWNED BY "{role}"')
        admin.execute(f'DROP ROLE "{role}"')
        admin.close()


@pytest.mark.postgres
def test_revoked_insert_loses_events_and_records_them_on_postgres(
    writer_url: tuple[str, psycopg.Connection, str],
) -> None:
    url, admin, schema = writer_url
    with EventStore(url, create=False, flush_interval=60) as store:
        put_many(store, 2_000, T0)
        store.flush()
        admin.execute(f"REVOKE INSERT ON {schema}.tusk_events FROM {url.split('//')[1].split('@')[0]}")
        put_many(store, 20_000, T0 + 100)  # the 20,000 evaluations
        store.flush()
        stats = store.stats()
        assert (stats.written, stats.failed, stats.failed_recorded) == (2_000, 20_000, 20_000)
        admin.execute(f"GRANT INSERT ON {schema}.tusk_events TO {url.split('//')[1].split('@')[0]}")
        put_many(store, 100, T0 + 200)
        store.flush()
        assert store.stats().written == 2_100
    dropped, failed, since, _ = losses(
        lambda sql: admin.execute(sql.replace("tusk_event_drops", f"{schema}.tusk_event_drops")).fetchall()
    )
    assert (dropped, failed) == (0, 20_000) and since == T0 + 100
    assert admin.execute(f"SELECT count(*) FROM {schema}.tusk_events").fetchone() == (2_100,)


@pytest.mark.postgres
def test_losses_reach_postgres_once_both_tables_accept_again(
    writer_url: tuple[str, psycopg.Connection, str],
) -> None:
    url, admin, schema = writer_url
    role = url.split("//")[1].split("@")[0]
    with EventStore(url, create=False, flush_interval=60, queue_size=3_000, batch_size=5_000) as store:
        admin.execute(f"REVOKE INSERT ON {schema}.tusk_events, {schema}.tusk_event_drops FROM {role}")
        put_many(store, 3_000, T0)
        assert not store.put(row(T0 + 9))
        store.flush()
        assert store.stats().unrecorded == 3_001
        admin.execute(f"GRANT INSERT ON {schema}.tusk_events, {schema}.tusk_event_drops TO {role}")
        store.flush()
        assert store.stats().unrecorded == 0
    found = admin.execute(f"SELECT SUM(dropped), SUM(failed) FROM {schema}.tusk_event_drops").fetchone()
    assert found == (1, 3_000)


def _poisoned_batch(url: str) -> None:
    """One event whose text no database stores (a lone surrogate from a JSON body's escape, a NUL) must not
    cost the rest of its batch: it is written with U+FFFD, the others as they were."""
    with EventStore(url, flush_interval=60) as store:
        store.put(row(T0, "fine"))
        store.put(row(T0, "half\ud800"))
        store.put(("conversion", T0, None, None, None, "buy", "nul\x00id", None, 1.0, '{"k": "\x00"}'))
        store.flush()
        assert (store.stats().written, store.stats().failed) == (3, 0)
        stored = sorted(r[0] for r in store.query("SELECT unit_id FROM tusk_events"))
    assert stored == ["fine", "half\ufffd", "nul\ufffdid"]


def test_a_poisoned_event_does_not_lose_its_batch_on_sqlite(tmp_path: Path) -> None:
    _poisoned_batch(f"sqlite:///{tmp_path / 'e.db'}")


@pytest.mark.postgres
def test_a_poisoned_event_does_not_lose_its_batch_on_postgres(pg_events_url: str) -> None:
    _poisoned_batch(pg_events_url)
