"""tusklang.db on the real PostgreSQL server, and SQLite/PostgreSQL parity on the fixture database."""

from __future__ import annotations

import importlib.util
import json
import re
import time
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tusklang.db import QueryError, connect

pytestmark = pytest.mark.postgres

FLAG_ROWS = 10  # rows in fixtures/db/rows.sql's feature_flags
PASSWORD = "pw-Zq8-never-shown"


def load_build(fixtures_dir: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("fixture_db_build", fixtures_dir / "db" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build(fixtures_dir: Path) -> ModuleType:
    return load_build(fixtures_dir)


@pytest.fixture(scope="module")
def pg_fixture_url(postgres_url: str, build: ModuleType) -> Iterator[str]:
    """The fixture loaded into a schema of its own, dropped afterwards."""
    schema = f"tusk_db_test_{uuid.uuid4().hex[:12]}"
    try:
        yield build.load_postgres(postgres_url, schema)
    finally:
        build.drop_postgres(postgres_url, schema)


@pytest.fixture(scope="module")
def sqlite_fixture_url(tmp_path_factory: pytest.TempPathFactory, build: ModuleType) -> str:
    return f"sqlite:///{build.build_sqlite(tmp_path_factory.mktemp('parity') / 'seed.db')}"


def with_password(url: str, password: str) -> str:
    """The same server with a password in the URL (trust auth ignores it; it must never be shown)."""
    parts = urlsplit(url)
    user = parts.username or "postgres"
    host = parts.hostname or "127.0.0.1"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}:{password}@{host}{port}", parts.path, parts.query, ""))


def count_flags(url: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT count(*) FROM feature_flags").fetchone()
        assert row is not None
        return int(row[0])


# --- read-only, enforced by PostgreSQL ---------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("DELETE FROM feature_flags", "read_only"),
        ("UPDATE feature_flags SET enabled = FALSE", "read_only"),
        ("DROP TABLE feature_flags", "read_only"),
        (
            "INSERT INTO experiments (id, experiment_name, status, participants, started_at) "
            "VALUES (99, 'x', 'active', 1, '2024-01-01T00:00:00')",
            "read_only",
        ),
        # No parameters: still the extended protocol, which accepts only one statement.
        ("SELECT 1; DELETE FROM feature_flags", "multiple_statements"),
        ("DO $$ BEGIN DELETE FROM feature_flags; END $$", "read_only"),
        ("WITH gone AS (DELETE FROM feature_flags RETURNING id) SELECT count(*) AS n FROM gone", "read_only"),
    ],
)
def test_writes_are_refused_and_every_row_stays(pg_fixture_url: str, sql: str, kind: str) -> None:
    with connect(pg_fixture_url) as database:
        with pytest.raises(QueryError) as info:
            database.query(sql)
        assert info.value.kind == kind
        assert database.query("SELECT count(*) AS n FROM feature_flags") == [{"n": FLAG_ROWS}]
    assert count_flags(pg_fixture_url) == FLAG_ROWS


def test_a_write_cannot_follow_a_session_change(pg_fixture_url: str) -> None:
    """Each query opens its own READ ONLY transaction, whatever an earlier statement set."""
    with connect(pg_fixture_url) as database:
        for statement in ("SET default_transaction_read_only = off", "SET TRANSACTION READ WRITE", "COMMIT"):
            with pytest.raises(QueryError):
                database.query(statement)
            with pytest.raises(QueryError) as info:
                database.query("DELETE FROM feature_flags")
            assert info.value.kind == "read_only"
    assert count_flags(pg_fixture_url) == FLAG_ROWS


def test_a_parameter_is_a_value_not_sql(pg_fixture_url: str) -> None:
    with connect(pg_fixture_url) as database:
        payload = "'; DROP TABLE feature_flags; --"
        assert database.query("SELECT flag_name FROM feature_flags WHERE flag_name = ?", [payload]) == []
        assert database.query("SELECT ? AS echoed", [payload]) == [{"echoed": payload}]
    assert count_flags(pg_fixture_url) == FLAG_ROWS


# --- limits and errors --------------------------------------------------------------------------


def test_a_slow_query_is_cut_off_by_the_timeout_and_the_connection_is_reused(pg_fixture_url: str) -> None:
    with connect(pg_fixture_url, timeout=0.5) as database:
        [before] = database.query("SELECT pg_backend_pid() AS pid")
        started = time.monotonic()
        with pytest.raises(QueryError) as info:
            database.query("SELECT pg_sleep(5)")
        elapsed = time.monotonic() - started
        assert info.value.kind == "timeout"
        assert 0.4 <= elapsed < 3.0
        [after] = database.query("SELECT pg_backend_pid() AS pid")
        assert after == before


def test_a_dropped_connection_is_reported_then_reopened(postgres_url: str, pg_fixture_url: str) -> None:
    with connect(pg_fixture_url) as database:
        [first] = database.query("SELECT pg_backend_pid() AS pid")
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [first["pid"]])
        with pytest.raises(QueryError) as info:
            database.query("SELECT 1 AS one")
        assert info.value.kind == "connection"
        [second] = database.query("SELECT pg_backend_pid() AS pid")
        assert second != first
        assert database.query("SELECT count(*) AS n FROM feature_flags") == [{"n": FLAG_ROWS}]


def test_more_rows_than_max_rows_is_an_error_not_truncation(pg_fixture_url: str) -> None:
    sql = "SELECT flag_name FROM feature_flags"
    with connect(pg_fixture_url, max_rows=FLAG_ROWS - 1) as database:
        with pytest.raises(QueryError) as info:
            database.query(sql)
        assert info.value.kind == "too_many_rows"
    with connect(pg_fixture_url, max_rows=FLAG_ROWS) as database:
        assert len(database.query(sql)) == FLAG_ROWS


@pytest.mark.parametrize(
    ("sql", "params", "kind"),
    [
        ("SELECT * FROM no_such_table", [], "missing_table"),
        ("SELEC flag_name FROM feature_flags", [], "syntax"),
        ("SELECT flag_name FROM feature_flags WHERE id = ?", [1, 2], "syntax"),
        ("SELECT id, id FROM feature_flags", [], "other"),
        ("SELECT '\\x00ff'::bytea AS raw", [], "unsupported_value"),
        ("SELECT 'NaN'::float8 AS nan", [], "unsupported_value"),
    ],
)
def test_error_kinds(pg_fixture_url: str, sql: str, params: list[object], kind: str) -> None:
    with connect(pg_fixture_url) as database, pytest.raises(QueryError) as info:
        database.query(sql, params)
    assert info.value.kind == kind
    assert info.value.message


def test_unreachable_server_fails_fast_without_showing_the_password() -> None:
    url = f"postgresql://tusk:{PASSWORD}@127.0.0.1:1/test"
    started = time.monotonic()
    with pytest.raises(QueryError) as info:
        connect(url, timeout=1.0)
    assert time.monotonic() - started < 3.0
    assert info.value.kind == "connection"
    shown = "".join(traceback.format_exception(info.value)) + repr(info.value)
    assert PASSWORD not in shown
    assert "127.0.0.1" in info.value.message  # the server is named, so the user knows what failed


def test_no_error_text_contains_the_password(postgres_url: str, pg_fixture_url: str) -> None:
    failures: list[BaseException] = []
    with connect(with_password(pg_fixture_url, PASSWORD)) as database:
        assert PASSWORD not in repr(database) and PASSWORD not in database.url
        for sql in ("SELECT * FROM no_such_table", "SELEC 1", f"SELECT '{PASSWORD}'::int", "DELETE FROM x"):
            with pytest.raises(QueryError) as info:
                database.query(sql)
            failures.append(info.value)
    with pytest.raises(QueryError) as info:
        connect(with_password(postgres_url.rsplit("/", 1)[0] + "/no_such_database_tusk", PASSWORD))
    failures.append(info.value)
    for failure in failures:
        assert PASSWORD not in "".join(traceback.format_exception(failure))


# --- values ---------------------------------------------------------------------------------------


def test_postgresql_values_become_json_values(pg_fixture_url: str) -> None:
    with connect(pg_fixture_url) as database:
        [row] = database.query(
            "SELECT 12.50::numeric AS price, 40.000::numeric AS whole, "
            "TIMESTAMPTZ '2024-01-15 12:30:00+02:00' AS aware, TIMESTAMP '2024-01-15 10:00:00' AS naive, "
            "DATE '2024-01-15' AS day, '{\"b\": [1, 2]}'::jsonb AS doc, ? AS pct_text",
            ["50%"],
        )
    assert row == {
        "price": 12.5,
        "whole": 40,
        "aware": "2024-01-15T10:30:00Z",
        "naive": "2024-01-15T10:00:00",
        "day": "2024-01-15",
        "doc": {"b": [1, 2]},
        "pct_text": "50%",
    }
    assert type(row["whole"]) is int


# --- parity: the same fixture in both databases gives identical rows ---------------------------

_QUERY = re.compile(r'@query\("(?P<sql>[^"]*)"(?P<params>(?:\s*,\s*"[^"]*")*)\s*\)')


def seed_queries(fixtures_dir: Path) -> list[tuple[str, list[object]]]:
    text = (fixtures_dir / "seed" / "feature_flags_data.tsk").read_text(encoding="utf-8")
    return [(match["sql"], re.findall(r'"([^"]*)"', match["params"])) for match in _QUERY.finditer(text)]


DASHBOARD_QUERIES: list[tuple[str, list[object]]] = [
    # The seed's dashboard widgets with the column names and ORDER BY a portable query needs.
    ("SELECT COUNT(*) AS active_flags FROM feature_flags WHERE enabled = true", []),
    (
        "SELECT DATE(evaluation_time) AS date, COUNT(*) AS count FROM flag_evaluations "
        "GROUP BY DATE(evaluation_time) ORDER BY date",
        [],
    ),
    (
        "SELECT experiment_name, status, participants FROM experiments WHERE status = 'active' "
        "ORDER BY experiment_name",
        [],
    ),
    (
        "SELECT variant, conversion_rate FROM experiment_results WHERE experiment_name = ? ORDER BY variant, metric",
        ["checkout_optimization"],
    ),
    (
        "SELECT flag_name, AVG(response_time) AS avg_response_time FROM flag_performance_impact "
        "GROUP BY flag_name ORDER BY flag_name",
        [],
    ),
]


def test_the_seed_block_has_its_five_queries(fixtures_dir: Path) -> None:
    queries = seed_queries(fixtures_dir)
    assert len(queries) == 5
    assert [params for _, params in queries] == [
        [],
        ["2024-02-01T00:00:00"],
        [],
        ["2024-01-26T00:00:00"],
        ["2024-02-01T00:00:00"],
    ]


def test_seed_queries_give_identical_rows_on_sqlite_and_postgresql(
    fixtures_dir: Path, sqlite_fixture_url: str, pg_fixture_url: str
) -> None:
    with connect(sqlite_fixture_url) as lite, connect(pg_fixture_url) as pg:
        for sql, params in [*seed_queries(fixtures_dir), *DASHBOARD_QUERIES]:
            lite_rows = lite.query(sql, params)
            pg_rows = pg.query(sql, params)
            assert lite_rows, sql
            assert pg_rows == lite_rows, sql
            # Identical down to the JSON text: int vs float, key order, timestamp spelling.
            assert json.dumps(pg_rows) == json.dumps(lite_rows), sql


def test_time_window_bound_is_inclusive_and_order_is_total(fixtures_dir: Path, sqlite_fixture_url: str) -> None:
    [(sql, [bound])] = [query for query in seed_queries(fixtures_dir) if "FROM flag_evaluations" in query[0]]
    with connect(sqlite_fixture_url) as database:
        rows = database.query(sql, [bound])
        everything = database.query("SELECT evaluation_time FROM flag_evaluations")
    times = [str(row["evaluation_time"]) for row in rows]
    assert bound in times  # an evaluation exactly at the bound is inside the window
    assert len(rows) == sum(1 for row in everything if str(row["evaluation_time"]) >= str(bound))
    assert len(rows) < len(everything)  # the window does exclude older evaluations
    assert times == sorted(times, reverse=True)
    # Equal times are ordered by the tie-breakers, so the order never depends on the storage.
    ties = [(row["flag_name"], row["user_id"]) for row in rows if row["evaluation_time"] == rows[0]["evaluation_time"]]
    assert len(ties) > 1 and ties == sorted(ties)


def test_write_connections_translate_placeholders_outside_literals_only(postgres_url: str) -> None:
    """The event store and the delivery controller write `?`; a `?` or `%` inside a literal stays as written
    (a plain `replace("?", "%s")` broke on these)."""
    from tusklang.db import WriteConnection
    from tusklang.delivery.db import Database

    for conn in (WriteConnection(postgres_url), Database(postgres_url)):
        with conn:
            rows = conn.execute("SELECT '?' AS q, '50%' AS pct, ? AS p, $$a?b$$ AS d -- why?\n", ("x",))
            assert rows == [("?", "50%", "x", "a?b")] and rows.fetchone() == ("?", "50%", "x", "a?b")
            with conn.transaction():
                assert conn.in_transaction
            assert not conn.in_transaction
