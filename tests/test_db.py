"""tusklang.db on SQLite (fixture files copied into tmp_path) plus the backend-independent parts."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sqlite3
import time
from pathlib import Path
from types import ModuleType

import pytest

from tusklang.db import DatabaseURLError, QueryError, connect, database_from_env, redact_url
from tusklang.db.guard import check_statement
from tusklang.db.placeholders import qmark_to_dollar, qmark_to_pyformat
from tusklang.diagnostics import TuskError

FLAG_ROWS = 10  # rows in fixtures/db/rows.sql's feature_flags


def load_build(fixtures_dir: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("fixture_db_build", fixtures_dir / "db" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def seed_template(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    return load_build(fixtures_dir).build_sqlite(tmp_path_factory.mktemp("fixture") / "seed.db")


@pytest.fixture
def seed_path(tmp_path: Path, seed_template: Path) -> Path:
    """A private copy per test: a test that (wrongly) managed to write could not affect another."""
    return Path(shutil.copy(seed_template, tmp_path / "seed.db"))


@pytest.fixture
def seed_url(seed_path: Path) -> str:
    return f"sqlite:///{seed_path}"  # seed_path is absolute, so this is sqlite:////...


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def count_flags(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT count(*) FROM feature_flags").fetchone()[0]


# --- URLs ---------------------------------------------------------------------------------------


def test_absolute_and_relative_sqlite_urls_open_the_same_file(seed_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(seed_path.parent)
    with connect("sqlite:///seed.db") as relative, connect(f"sqlite:///{seed_path}") as absolute:
        sql = "SELECT flag_name FROM feature_flags ORDER BY id"
        assert relative.query(sql) == absolute.query(sql)
        assert len(relative.query(sql)) == FLAG_ROWS


def test_missing_sqlite_file_is_a_connection_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(QueryError) as info:
        connect(f"sqlite:///{missing}")
    assert info.value.kind == "connection"
    assert not missing.exists()


def test_unknown_scheme_is_the_same_coded_error_in_every_layer(tmp_path: Path) -> None:
    from tusklang.delivery.db import Database
    from tusklang.events import EventStore

    errors = []
    for open_it in (connect, EventStore, Database):
        with pytest.raises(DatabaseURLError) as info:
            open_it("foo://user:hunter2@host/db")
        errors.append(info.value)
    assert {(type(e), e.code, e.message) for e in errors} == {(DatabaseURLError, "TSK250", errors[0].message)}
    assert isinstance(errors[0], TuskError) and isinstance(errors[0], ValueError)
    assert "'foo'" in errors[0].message and "hunter2" not in errors[0].render()


def test_unknown_scheme_lists_the_supported_ones() -> None:
    with pytest.raises(ValueError) as info:
        connect("mysql://root:hunter2@db/flags")
    message = str(info.value)
    assert "'mysql'" in message
    assert "sqlite:///" in message and "postgresql://" in message and "postgres://" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://alice:s3cret@db.example:5432/flags", "postgresql://alice:***@db.example:5432/flags"),
        ("postgres://alice:p@ss@db/flags?sslmode=require", "postgres://alice:***@db/flags?sslmode=require"),
        ("postgresql://db/flags?user=bob&password=s3cret", "postgresql://db/flags?user=bob&password=***"),
        ("postgresql://alice@db/flags", "postgresql://alice@db/flags"),
        ("sqlite:////var/lib/flags.db", "sqlite:////var/lib/flags.db"),
    ],
)
def test_redact_url_hides_only_the_password(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_database_from_env(seed_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUSK_DATABASE_URL", raising=False)
    assert database_from_env() is None
    monkeypatch.setenv("TUSK_DATABASE_URL", seed_url)
    database = database_from_env(max_rows=3)
    assert database is not None
    with database:
        assert database.max_rows == 3
        assert database.query("SELECT count(*) AS n FROM feature_flags") == [{"n": FLAG_ROWS}]


# --- read-only, enforced by SQLite -------------------------------------------------------------


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
        ("SELECT 1; DELETE FROM feature_flags", "multiple_statements"),
        ("PRAGMA query_only = OFF", "read_only"),
        ("ATTACH DATABASE 'other.db' AS other", "read_only"),
        ("BEGIN IMMEDIATE", "read_only"),
    ],
)
def test_writes_are_refused_and_every_row_stays(seed_path: Path, seed_url: str, sql: str, kind: str) -> None:
    before = file_digest(seed_path)
    with connect(seed_url) as database:
        with pytest.raises(QueryError) as info:
            database.query(sql)
        assert info.value.kind == kind
        # The connection stays usable after a refusal.
        assert database.query("SELECT count(*) AS n FROM feature_flags") == [{"n": FLAG_ROWS}]
    assert count_flags(seed_path) == FLAG_ROWS
    assert file_digest(seed_path) == before
    assert not (seed_path.parent / "other.db").exists()


def test_a_parameter_is_a_value_not_sql(seed_path: Path, seed_url: str) -> None:
    with connect(seed_url) as database:
        rows = database.query(
            "SELECT flag_name FROM feature_flags WHERE flag_name = ?", ["'; DROP TABLE feature_flags; --"]
        )
        assert rows == []
        assert database.query("SELECT flag_name FROM feature_flags WHERE flag_name = ?", ["search_v2"]) == [
            {"flag_name": "search_v2"}
        ]
    assert count_flags(seed_path) == FLAG_ROWS


# --- limits ---------------------------------------------------------------------------------------


def test_a_slow_query_is_cut_off_by_the_timeout(seed_url: str) -> None:
    slow = (
        "WITH RECURSIVE counter(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM counter WHERE n < 1000000000) "
        "SELECT count(*) AS total FROM counter"
    )
    with connect(seed_url, timeout=0.5) as database:
        started = time.monotonic()
        with pytest.raises(QueryError) as info:
            database.query(slow)
        elapsed = time.monotonic() - started
        assert info.value.kind == "timeout"
        assert 0.4 <= elapsed < 3.0
        # The next query gets a fresh deadline.
        assert database.query("SELECT count(*) AS n FROM feature_flags") == [{"n": FLAG_ROWS}]


def test_more_rows_than_max_rows_is_an_error_not_truncation(seed_url: str) -> None:
    sql = "SELECT flag_name FROM feature_flags"
    with connect(seed_url, max_rows=FLAG_ROWS - 1) as database:
        with pytest.raises(QueryError) as info:
            database.query(sql)
        assert info.value.kind == "too_many_rows"
        assert str(FLAG_ROWS - 1) in info.value.message
    with connect(seed_url, max_rows=FLAG_ROWS) as database:
        assert len(database.query(sql)) == FLAG_ROWS


@pytest.mark.parametrize(
    ("sql", "params", "kind"),
    [
        ("SELECT * FROM no_such_table", [], "missing_table"),
        ("SELEC flag_name FROM feature_flags", [], "syntax"),
        ("SELECT flag_name FROM feature_flags WHERE id = ?", [1, 2], "syntax"),
        ("SELECT id, id FROM feature_flags", [], "other"),
        ("SELECT flag_name FROM feature_flags WHERE id = ?", [{"id": 1}], "unsupported_value"),
    ],
)
def test_error_kinds(seed_url: str, sql: str, params: list[object], kind: str) -> None:
    with connect(seed_url) as database, pytest.raises(QueryError) as info:
        database.query(sql, params)
    assert info.value.kind == kind
    assert info.value.message


# --- values ---------------------------------------------------------------------------------------


def test_declared_types_become_json_values(seed_url: str) -> None:
    with connect(seed_url) as database:
        [flag] = database.query(
            "SELECT enabled, is_active, targeting_rules, fallback_value, created_at "
            "FROM feature_flags WHERE flag_name = ?",
            ["recommendations_ml"],
        )
        [evaluation] = database.query("SELECT evaluation_time FROM flag_evaluations WHERE id = 6")
    assert flag["enabled"] is True and flag["is_active"] is True
    assert flag["targeting_rules"]["environments"] == ["production"]  # type: ignore[index]
    assert flag["fallback_value"] == {"type": "static", "value": "legacy_recommendations"}
    assert flag["created_at"] == "2024-01-28T16:45:00"
    assert evaluation["evaluation_time"] == "2024-02-01T15:05:30.250000"


def make_db(path: Path, script: str) -> str:
    with sqlite3.connect(path) as connection:
        connection.executescript(script)
    return f"sqlite:///{path}"


def test_timestamps_are_normalised_like_postgresql(tmp_path: Path) -> None:
    url = make_db(
        tmp_path / "t.db",
        "CREATE TABLE t (id INTEGER, at TIMESTAMP, day DATE);"
        "INSERT INTO t VALUES (1, '2024-01-15 10:00:00', '2024-01-15'),"
        " (2, '2024-01-15T12:30:00+02:00', '2024-01-16'), (3, NULL, NULL);",
    )
    with connect(url) as database:
        rows = database.query("SELECT at, day FROM t ORDER BY id")
    assert rows == [
        {"at": "2024-01-15T10:00:00", "day": "2024-01-15"},
        {"at": "2024-01-15T10:30:00Z", "day": "2024-01-16"},
        {"at": None, "day": None},
    ]


@pytest.mark.parametrize(
    ("script", "needle"),
    [
        ("CREATE TABLE t (v BLOB); INSERT INTO t VALUES (x'00ff');", "bytes"),
        ("CREATE TABLE t (v JSON); INSERT INTO t VALUES ('{not json');", "JSON"),
        ("CREATE TABLE t (v TIMESTAMP); INSERT INTO t VALUES ('yesterday');", "ISO 8601"),
        ("CREATE TABLE t (v BOOLEAN); INSERT INTO t VALUES ('maybe');", "BOOLEAN"),
        ("CREATE TABLE t (v REAL); INSERT INTO t VALUES (9e999);", "JSON number"),
        # JSON text is bounded like every JSON from outside (tusklang.safejson, limits.MAX_DEPTH) ...
        ("CREATE TABLE t (v JSON); INSERT INTO t VALUES (printf('%.5000c', '[') || printf('%.5000c', ']'));", "deeper"),
        ("CREATE TABLE t (v JSON); INSERT INTO t VALUES (printf('%.129c', '[') || printf('%.129c', ']'));", "deeper"),
        # ... and its numbers must have a JSON form too: no NaN/Infinity, no 4,000+ digit integers
        ("CREATE TABLE t (v JSON); INSERT INTO t VALUES ('[NaN]');", "JSON number"),
        ("CREATE TABLE t (v JSON); INSERT INTO t VALUES ('{\"a\": 1e999}');", "JSON number"),
        ("CREATE TABLE t (v JSON); INSERT INTO t VALUES ('[' || printf('%.4100c', '7') || ']');", "digits"),
        ("CREATE TABLE t (v JSON); INSERT INTO t VALUES ('{\"a\": [' || printf('%.4100c', '7') || ']}');", "digits"),
        ("CREATE TABLE t (v JSONB); INSERT INTO t VALUES (zeroblob(3));", "JSON"),
    ],
)
def test_values_without_a_json_form_are_refused_clearly(tmp_path: Path, script: str, needle: str) -> None:
    with connect(make_db(tmp_path / "v.db", script)) as database, pytest.raises(QueryError) as info:
        database.query("SELECT v FROM t")
    assert info.value.kind == "unsupported_value" and info.value.code == "TSK254"
    assert needle in info.value.message


def test_values_at_the_limits_still_pass(tmp_path: Path) -> None:
    url = make_db(
        tmp_path / "ok.db",
        "CREATE TABLE t (v JSON, n TEXT); "
        "INSERT INTO t VALUES (printf('%.128c', '[') || printf('%.128c', ']'), printf('%.5000c', '9'));",
    )
    with connect(url) as database:
        row = database.query("SELECT v, n FROM t")[0]
    depth, value = 0, row["v"]
    while isinstance(value, list) and value:
        depth, value = depth + 1, value[0]
    assert depth + 1 == 128 and row["n"] == "9" * 5000  # digits as text are just text


@pytest.mark.parametrize(("sql", "params"), [("SELECT '\ud800' AS s", []), ("SELECT ? AS s", ["\udc80"])])
def test_a_lone_surrogate_is_a_query_error_not_a_unicode_error(seed_url: str, sql: str, params: list[object]) -> None:
    with connect(seed_url) as database, pytest.raises(QueryError) as info:
        database.query(sql, params)
    assert info.value.kind == "syntax" and "lone surrogate" in info.value.message


# --- SQLite's side doors: every one refused before the statement runs --------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "ATTACH DATABASE '{dir}/attached.db' AS other",
        "VACUUM INTO '{dir}/copy.db'",
        "VACUUM",
        "SELECT load_extension('{dir}/evil')",
        "SELECT LOAD_EXTENSION('{dir}/evil', 'init')",
        "SELECT fts3_tokenizer('simple')",
        "PRAGMA query_only = OFF",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA writable_schema = ON",
        "SELECT * FROM pragma_table_info('feature_flags')",
        "REINDEX",
        "ANALYZE",
        "BEGIN",
        "CREATE TEMP TABLE t (a)",
        "INSERT INTO feature_flags (flag_name) VALUES ('x')",
        "REPLACE INTO feature_flags (id, flag_name) VALUES (1, 'x')",
        "WITH x AS (SELECT 1) DELETE FROM feature_flags",
        "DETACH main",
    ],
)
def test_sqlite_side_doors_are_shut(seed_path: Path, seed_url: str, sql: str) -> None:
    before = file_digest(seed_path)
    with connect(seed_url) as database, pytest.raises(QueryError) as info:
        database.query(sql.format(dir=seed_path.parent))
    assert info.value.kind == "read_only" and info.value.code == "TSK252"
    assert file_digest(seed_path) == before
    assert sorted(p.name for p in seed_path.parent.iterdir()) == ["seed.db"]  # no file was created


# --- the statement guard (the readable first refusal) ------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "  (SELECT 1) UNION (SELECT 2)",
        "/* lead */ WITH a AS (SELECT 1) SELECT * FROM a",
        "VALUES (1)",
        "TABLE t",
        "SELECT 'pg_read_file(' AS s, lo_limit FROM t -- set_config(",
        "SELECT $$ lo_export( $$ AS s",
        "SELECT lo_x AS set_config FROM t",
    ],
)
def test_guard_lets_queries_through(sql: str) -> None:
    check_statement(sql)


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("COPY t TO STDOUT", "COPY is not allowed"),
        ("EXPLAIN ANALYZE SELECT 1", "EXPLAIN is not allowed"),
        ("(SHOW x)", "SHOW is not allowed"),
        ('"select" 1', "this statement"),
        ("SELECT pg_read_file('x')", "pg_read_file()"),
        ("SELECT \"PG_LS_DIR\"('.')", "PG_LS_DIR()"),
        ("SELECT pg_catalog . set_config ('role', 'x', true)", "set_config()"),
        ("SELECT dblink_exec('x', 'y')", "dblink_exec()"),
        ("SELECT * FROM t WHERE pg_try_advisory_lock(1)", "pg_try_advisory_lock()"),
        ("SELECT query_to_xml('DELETE FROM t', true, true, '')", "query_to_xml()"),
        ('SELECT U&"\\0070g_sleep"(1)', "Unicode-escaped"),
    ],
)
def test_guard_refuses_utility_statements_and_side_effect_functions(sql: str, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        check_statement(sql)
    assert info.value.kind == "read_only" and fragment in info.value.message


def test_guard_calls_a_misspelt_statement_a_syntax_error() -> None:
    with pytest.raises(QueryError) as info:
        check_statement("SELEC 1")
    assert info.value.kind == "syntax"


def test_closed_database_refuses_queries(seed_url: str) -> None:
    database = connect(seed_url)
    database.close()
    with pytest.raises(QueryError) as info:
        database.query("SELECT 1 AS one")
    assert info.value.kind == "connection"


# --- placeholders ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected", "count"),
    [
        ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s", 2),
        ("SELECT '?' AS q, a FROM t WHERE a = ?", "SELECT '?' AS q, a FROM t WHERE a = %s", 1),
        ("SELECT 'it''s ?' WHERE x = ?", "SELECT 'it''s ?' WHERE x = %s", 1),
        ("SELECT E'\\'?' WHERE x = ?", "SELECT E'\\'?' WHERE x = %s", 1),
        ('SELECT "odd?col" FROM t WHERE x = ?', 'SELECT "odd?col" FROM t WHERE x = %s', 1),
        ("SELECT 1 -- why?\nWHERE x = ?", "SELECT 1 -- why?\nWHERE x = %s", 1),
        ("SELECT /* a /* nested? */ b? */ ?", "SELECT /* a /* nested? */ b? */ %s", 1),
        ("SELECT $$?$$, $tag$ ? $tag$, ?", "SELECT $$?$$, $tag$ ? $tag$, %s", 1),
        (
            "SELECT '50%' AS pct, a % 2 FROM t WHERE b LIKE ?",
            "SELECT '50%%' AS pct, a %% 2 FROM t WHERE b LIKE %s",
            1,
        ),
        ("SELECT x::text FROM t", "SELECT x::text FROM t", 0),
    ],
)
def test_qmark_placeholders_become_pyformat(sql: str, expected: str, count: int) -> None:
    converted = qmark_to_pyformat(sql)
    assert converted.sql == expected
    assert converted.placeholders == count


def test_qmark_placeholders_become_numbered_for_the_server() -> None:
    converted = qmark_to_dollar("SELECT '?', a % 2 FROM t WHERE a = ? AND b = ?")
    assert converted == ("SELECT '?', a % 2 FROM t WHERE a = $1 AND b = $2", 2)
