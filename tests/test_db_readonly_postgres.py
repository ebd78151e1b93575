"""`@query` on PostgreSQL is read-only whatever its text, for any role, the superuser included.

Everything here runs with the test server's superuser (`postgres`), the worst case: a file the server
would write is looked for with `pg_stat_file` (as the superuser, outside @query), a backend @query tries
to kill is checked alive from its own connection, advisory locks are checked in `pg_locks`. Functions
created in a schema of the test's own show that the SERVER refuses (the name scan cannot see inside
them), so the guarantee does not rest on the scan.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

import tusklang
from tusklang.db import DatabaseError, QueryError, connect
from tusklang.diagnostics import TuskError

pytestmark = pytest.mark.postgres


def _with_search_path(url: str, schema: str) -> str:
    parts = urlsplit(url)
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
    query = f"{parts.query}&{option}" if parts.query else option
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}@{host}{port}", parts.path, parts.query, parts.fragment))


@pytest.fixture(scope="module")
def admin(postgres_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        if not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
            pytest.skip("these tests need the test URL's role to be a superuser (the worst case)")
        if conn.info.server_version < 140000:
            pytest.skip("pg_read_all_data (PostgreSQL 14+) is what a superuser's queries run as")
        yield conn


@pytest.fixture(scope="module")
def schema(admin: psycopg.Connection) -> Iterator[str]:
    """A schema with one table and wrapper functions the name scan cannot see into."""
    name = f"tusk_ro_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE SCHEMA "{name}"')
    admin.execute(f'CREATE TABLE "{name}".flags (name TEXT, enabled BOOLEAN)')
    admin.execute(f"INSERT INTO \"{name}\".flags VALUES ('a', true), ('b', false)")
    admin.execute(
        f'CREATE FUNCTION "{name}".grab(k BIGINT) RETURNS TEXT LANGUAGE sql AS $$ SELECT pg_advisory_lock(k)::text $$'
    )
    admin.execute(
        f'CREATE FUNCTION "{name}".zap(p INT) RETURNS BOOLEAN LANGUAGE sql AS $$ SELECT pg_terminate_backend(p) $$'
    )
    admin.execute(f'CREATE FUNCTION "{name}".peek(f TEXT) RETURNS TEXT LANGUAGE sql AS $$ SELECT pg_read_file(f) $$')
    admin.execute(
        f'CREATE FUNCTION "{name}".spill(f TEXT) RETURNS INT LANGUAGE plpgsql AS '
        "$$ BEGIN EXECUTE format('COPY (SELECT 1) TO %L', f); RETURN 1; END $$"
    )
    admin.execute(
        f'CREATE FUNCTION "{name}".run(c TEXT) RETURNS INT LANGUAGE plpgsql AS '
        "$$ BEGIN EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', c); RETURN 1; END $$"
    )
    try:
        yield name
    finally:
        admin.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture(scope="module")
def url(postgres_url: str, schema: str) -> str:
    return _with_search_path(postgres_url, schema)


@pytest.fixture
def victim(postgres_url: str) -> Iterator[psycopg.Connection]:
    """A second session that @query tries to kill."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


def _server_file_exists(admin: psycopg.Connection, path: str) -> bool:
    return admin.execute("SELECT pg_stat_file(%s, true) IS NOT NULL", [path]).fetchone()[0]


def _refused(url: str, sql: str, params: list[object] | None = None) -> QueryError:
    with connect(url) as db, pytest.raises(QueryError) as info:
        db.query(sql, params or [])
    return info.value


def test_the_issue_repro_writes_nothing(admin: psycopg.Connection, url: str, tmp_path: Path) -> None:
    name = f"pwned_{uuid.uuid4().hex[:8]}.txt"
    source = tmp_path / "f.tsk"
    source.write_text(f"x = @query(\"COPY (SELECT 1) TO PROGRAM 'id > {name}'\")\n")
    done = subprocess.run(
        [sys.executable, "-m", "tusklang.cli", "parse", str(source), "--resolve", "--db", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "error[TSK232]" in done.stderr and "f.tsk:1:5" in done.stderr and "Traceback" not in done.stderr
    assert not _server_file_exists(admin, name)  # relative to the data directory, where the repro wrote it


@pytest.mark.parametrize(
    "template",
    [
        "COPY (SELECT 1) TO PROGRAM 'touch {path}'",
        "COPY (SELECT 1) TO '{path}'",
        "copy (select 1) to '{path}'",
        "/* c */ COPY (SELECT 1) TO '{path}'",
        "SELECT lo_export(lo_from_bytea(0, 'x'), '{path}')",
        "SELECT pg_catalog.lo_export(lo_from_bytea(0, 'x'), '{path}')",
        "SELECT \"lo_export\"(lo_from_bytea(0, 'x'), '{path}')",
        "SELECT 1 AS a FROM (SELECT lo_export(lo_from_bytea(0, 'x'), '{path}')) AS s",
        "EXPLAIN ANALYZE SELECT lo_export(lo_from_bytea(0, 'x'), '{path}')",
        "SELECT spill('{path}')",  # inside a function: the server refuses COPY TO a file
        "SELECT run('touch {path}')",  # ... and COPY TO PROGRAM
        "SELECT query_to_xml('SELECT lo_export(lo_from_bytea(0, ''x''), ''{path}'')', true, true, '')",
    ],
)
def test_nothing_is_written_on_the_server(admin: psycopg.Connection, url: str, template: str) -> None:
    path = f"/tmp/tusk_ro_{uuid.uuid4().hex}"
    error = _refused(url, template.format(path=path))
    assert error.code in ("TSK252", "TSK253")
    assert not _server_file_exists(admin, path)


@pytest.mark.parametrize(
    "template",
    [
        "SELECT pg_terminate_backend({pid})",
        "SELECT pg_cancel_backend({pid})",
        "SELECT PG_CATALOG.PG_TERMINATE_BACKEND ( {pid} )",
        "SELECT pg_terminate_backend /* comment */ ({pid})",
        "SELECT zap({pid})",  # inside a function: the server refuses (the query runs as pg_read_all_data)
        "SELECT set_config('role', 'postgres', true), pg_terminate_backend({pid})",
        'SELECT U&"pg_terminate_backend"({pid})',
    ],
)
def test_no_backend_is_killed(url: str, victim: psycopg.Connection, template: str) -> None:
    error = _refused(url, template.format(pid=victim.info.backend_pid))
    assert error.kind in ("read_only", "other")
    assert victim.execute("SELECT 1").fetchone() == (1,)  # still alive


def test_no_advisory_lock_stays_held(admin: psycopg.Connection, url: str) -> None:
    key = 7_000_000 + uuid.uuid4().int % 1_000_000
    held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s"
    assert _refused(url, f"SELECT pg_advisory_lock({key})").kind == "read_only"
    assert _refused(url, f"SELECT pg_try_advisory_lock({key})").kind == "read_only"
    with connect(url) as db:
        # Taken inside a function the scan cannot see into: released as the query ends.
        assert db.query(f"SELECT grab({key}) AS g") == [{"g": ""}]
        assert admin.execute(held, [key]).fetchone() == (0,)
        # The session is still usable, and still releases what it takes.
        assert db.query(f"SELECT grab({key + 1}) AS g") == [{"g": ""}]
        assert admin.execute(held, [key + 1]).fetchone() == (0,)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT pg_read_file('PG_VERSION')",
        "SELECT peek('PG_VERSION')",  # inside a function: permission denied by the server
        "SELECT * FROM pg_ls_dir('.') AS f",
        "SELECT pg_stat_file('PG_VERSION')",
        "SELECT lo_import('/etc/hostname')",
        "SELECT pg_reload_conf()",
        "SELECT pg_rotate_logfile()",
        "SELECT set_config('statement_timeout', '0', false)",
        "SELECT pg_logical_emit_message(false, 'tusk', 'x')",
        "SELECT dblink_exec('dbname=test', 'DROP TABLE flags')",
        "SELECT ts_stat('SELECT 1')",
        "SHOW data_directory",
        "SET ROLE postgres",
        "RESET ROLE",
        "FETCH ALL FROM c",
        "CALL nothing()",
        "DO $$ BEGIN PERFORM 1; END $$",
        "CHECKPOINT",
        "LISTEN tusk",
        "SELECT 1 INTO TEMP t",
        "WITH gone AS (DELETE FROM flags RETURNING name) SELECT * FROM gone",
        "DELETE FROM flags",
    ],
)
def test_side_doors_are_refused(admin: psycopg.Connection, url: str, schema: str, sql: str) -> None:
    error = _refused(url, sql)
    assert isinstance(error, TuskError) and error.code in ("TSK252", "TSK253")
    assert admin.execute(f'SELECT count(*) FROM "{schema}".flags').fetchone() == (2,)


def test_reads_still_work_as_pg_read_all_data(url: str) -> None:
    with connect(url) as db:
        assert db.query("SELECT name, enabled FROM flags ORDER BY name") == [
            {"name": "a", "enabled": True},
            {"name": "b", "enabled": False},
        ]
        assert db.query("WITH f AS (SELECT name FROM flags) SELECT count(*) AS n FROM f") == [{"n": 2}]
        assert db.query("VALUES (?::int)", [5]) == [{"column1": 5}]
        # The privileges were dropped for the query only, and strings that merely mention a function pass.
        assert db.query("SELECT current_user AS who, 'lo_export(' AS text") == [
            {"who": "pg_read_all_data", "text": "lo_export("}
        ]


def test_a_role_without_server_powers_keeps_its_own_privileges(admin: psycopg.Connection, postgres_url: str) -> None:
    role = f"tusk_reader_{uuid.uuid4().hex[:8]}"
    schema = f"tusk_rs_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE ROLE "{role}" LOGIN')
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        admin.execute(f'CREATE TABLE "{schema}".t (v INT)')
        admin.execute(f'INSERT INTO "{schema}".t VALUES (1)')
        admin.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        admin.execute(f'GRANT SELECT ON "{schema}".t TO "{role}"')
        with connect(_with_search_path(_as_user(postgres_url, role), schema)) as db:
            assert db.query("SELECT v, current_user AS who FROM t") == [{"v": 1, "who": role}]
        # A member of pg_signal_backend (a server power) that cannot drop to pg_read_all_data is refused.
        admin.execute(f'GRANT pg_signal_backend TO "{role}"')
        with pytest.raises(QueryError) as info:
            connect(_as_user(postgres_url, role))
        assert info.value.code == "TSK252" and "pg_read_all_data" in info.value.message
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.execute(f'DROP ROLE "{role}"')


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("SELECT 10::numeric ^ 5000 AS n", "5001 digits"),
        ("SELECT (repeat('[', 300) || repeat(']', 300))::jsonb AS j", "nested deeper than 128"),
        ("SELECT (repeat('[', 300) || repeat(']', 300))::json AS j", "nested deeper than 128"),
        ("SELECT ARRAY[(repeat('[', 300) || repeat(']', 300))::json] AS j", "nested deeper than 128"),
        ("SELECT '[1e400]'::json AS j", "not a JSON number"),
        ("SELECT ('[' || repeat('9', 4500) || ']')::jsonb AS j", "digits"),
        ("SELECT 'NaN'::numeric AS n", "not a JSON number"),
        ("SELECT 1e300::numeric * 1e300::numeric + 0.5 AS n", "not a JSON number"),
    ],
)
def test_values_without_a_json_form_are_positioned_diagnostics(url: str, sql: str, fragment: str) -> None:
    text = 'x = @query("' + sql.replace('"', '\\"') + '")\n'
    with pytest.raises(TuskError) as info:
        tusklang.resolve(tusklang.parse(text, "v.tsk"), database=url, env={})
    first = info.value.first
    assert first.code == "TSK232" and fragment in first.message
    assert first.span is not None and first.span.location() == "v.tsk:1:5"


@pytest.mark.parametrize(("sql", "params"), [("SELECT '\ud800' AS s", []), ("SELECT ? AS s", ["\udc80"])])
def test_a_lone_surrogate_is_a_query_error(url: str, sql: str, params: list[object]) -> None:
    # The parser and @env refuse these first; the layer itself must too (an API caller, a --param).
    error = _refused(url, sql, params)
    assert isinstance(error, DatabaseError) and error.kind == "syntax" and "lone surrogate" in error.message


@pytest.mark.parametrize(("sql", "params"), [("SELECT '€' AS e", []), ("SELECT ? AS e", ["€"])])
def test_text_the_connection_encoding_cannot_hold_is_a_query_error(url: str, sql: str, params: list[object]) -> None:
    latin1 = url + "&client_encoding=LATIN1"
    error = _refused(latin1, sql, params)
    assert error.kind == "syntax" and "encoding" in error.message
    with connect(latin1) as db:
        assert db.query("SELECT 'é' AS e") == [{"e": "é"}]
