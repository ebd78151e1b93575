"""The resolver: directives run after parsing, safely, with every failure at the directive's place."""

from __future__ import annotations

import importlib.util
import json
import uuid
from pathlib import Path

import pytest

import tusklang
from tusklang.diagnostics import TuskError
from tusklang.resolver import resolve_document

ROOT = Path(__file__).resolve().parent.parent
SEED_DATA = ROOT / "fixtures" / "seed" / "feature_flags_data.tsk"
GOLDEN = ROOT / "fixtures" / "seed" / "feature_flags_data.resolved.json"


def _build_module():
    spec = importlib.util.spec_from_file_location("fixture_db_build", ROOT / "fixtures" / "db" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = _build_module().build_sqlite(tmp_path_factory.mktemp("db") / "seed.db")
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def pg_schema_url(postgres_url: str):
    build = _build_module()
    schema = f"tusk_resolve_{uuid.uuid4().hex[:10]}"
    url = build.load_postgres(postgres_url, schema)
    yield url
    build.drop_postgres(postgres_url, schema)


def resolve_text(text: str, **options) -> dict:
    return tusklang.resolve(tusklang.parse(text, "test.tsk"), **options)


def error_of(text: str, **options) -> str:
    with pytest.raises(TuskError) as info:
        resolve_text(text, **options)
    return info.value.render()


def canonical(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# --- the seed's feature_flags_data block against both databases -----------------------------


def test_seed_data_block_resolves_against_sqlite_to_golden(sqlite_url: str) -> None:
    document = tusklang.parse(SEED_DATA.read_text(), "fixtures/seed/feature_flags_data.tsk")
    resolved = resolve_document(document, database=sqlite_url, env={})
    assert canonical(resolved.data) == GOLDEN.read_text()
    assert [q["rows"] for q in resolved.queries] == [len(v) for v in resolved.data["feature_flags_data"].values()]
    assert all(len(q["sha256"]) == 64 for q in resolved.queries)


@pytest.mark.postgres
def test_seed_data_block_resolves_against_postgres_to_the_same_golden(pg_schema_url: str) -> None:
    document = tusklang.parse(SEED_DATA.read_text(), "fixtures/seed/feature_flags_data.tsk")
    resolved = resolve_document(document, database=pg_schema_url, env={})
    assert canonical(resolved.data) == GOLDEN.read_text()


def test_the_seed_block_rows_are_real_data(sqlite_url: str) -> None:
    data = resolve_text(SEED_DATA.read_text(), database=sqlite_url, env={})["feature_flags_data"]
    definitions = data["flag_definitions"]
    assert definitions and all(isinstance(row["targeting_rules"], dict) for row in definitions)
    assert all(isinstance(row["enabled"], bool) for row in definitions)


# --- @query safety on both databases --------------------------------------------------------

WRITES = [
    "DELETE FROM feature_flags",
    "UPDATE feature_flags SET enabled = false",
    "DROP TABLE feature_flags",
    "SELECT 1; DELETE FROM feature_flags",
]


def _count(url: str) -> int:
    return resolve_text('n = @query("SELECT COUNT(*) AS n FROM feature_flags")', database=url, env={})["n"][0]["n"]


@pytest.mark.parametrize("sql", WRITES)
def test_writes_are_refused_by_sqlite_and_rows_stay(sqlite_url: str, sql: str) -> None:
    before = _count(sqlite_url)
    message = error_of(f'x = @query("{sql}")', database=sqlite_url, env={})
    assert "error[TSK232]" in message and "test.tsk:1:5" in message
    assert _count(sqlite_url) == before


@pytest.mark.postgres
@pytest.mark.parametrize("sql", WRITES)
def test_writes_are_refused_by_postgres_and_rows_stay(pg_schema_url: str, sql: str) -> None:
    before = _count(pg_schema_url)
    message = error_of(f'x = @query("{sql}")', database=pg_schema_url, env={})
    assert "error[TSK232]" in message and "test.tsk:1:5" in message
    assert _count(pg_schema_url) == before


def test_sqlite_slow_query_is_cut_off_by_the_timeout(sqlite_url: str) -> None:
    slow = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
        "SELECT COUNT(*) AS n FROM c"
    )
    message = error_of(f'x = @query("{slow}")', database=sqlite_url, env={}, query_timeout=0.3)
    assert "@query failed (timeout)" in message and "test.tsk:1:5" in message


@pytest.mark.postgres
def test_postgres_slow_query_is_cut_off_by_the_timeout(pg_schema_url: str) -> None:
    message = error_of('x = @query("SELECT pg_sleep(5)")', database=pg_schema_url, env={}, query_timeout=0.3)
    assert "@query failed (timeout)" in message


def test_a_parameter_is_only_ever_a_value(sqlite_url: str) -> None:
    evil = "'; DROP TABLE feature_flags; --"
    data = resolve_text(
        f'rows = @query("SELECT flag_name FROM feature_flags WHERE flag_name = ?", "{evil}")',
        database=sqlite_url,
        env={},
    )
    assert data["rows"] == []
    assert _count(sqlite_url) > 0


def test_query_without_database_says_how_to_configure_one() -> None:
    message = error_of('x = @query("SELECT 1")', env={})
    assert "error[TSK230]" in message and "--db sqlite:///" in message and "TUSK_DATABASE_URL" in message


def test_database_from_environment_variable(sqlite_url: str) -> None:
    data = resolve_text('n = @query("SELECT 1 AS one")', env={"TUSK_DATABASE_URL": sqlite_url})
    assert data == {"n": [{"one": 1}]}


def test_missing_table_is_a_diagnostic_not_data(sqlite_url: str) -> None:
    message = error_of('x = @query("SELECT * FROM nope")', database=sqlite_url, env={})
    assert "error[TSK232]" in message and "nope" in message


def test_connection_password_never_appears_in_errors() -> None:
    url = "postgresql://tusk:s3cretpass@127.0.0.1:1/test"
    message = error_of('x = @query("SELECT 1")', database=url, env={})
    assert "s3cretpass" not in message
    assert "TSK231" in message or "TSK232" in message


# --- @env ------------------------------------------------------------------------------------


def test_env_bare_and_quoted_names() -> None:
    data = resolve_text('a = @env(REDIS_URL)\nb = @env("REDIS_URL")', env={"REDIS_URL": "redis://h:6379"})
    assert data == {"a": "redis://h:6379", "b": "redis://h:6379"}


def test_env_unset_without_default_names_variable_and_position() -> None:
    message = error_of("x = 1\nconnection = @env(REDIS_URL)", env={})
    assert "environment variable `REDIS_URL` is not set" in message
    assert "test.tsk:2:14" in message


def test_env_default_gives_its_type() -> None:
    text = 'port = @env(PORT, 8080)\non = @env(ON, false)\nratio = @env(R, 0.5)\nname = @env(N, "x")'
    assert resolve_text(text, env={}) == {"port": 8080, "on": False, "ratio": 0.5, "name": "x"}
    env = {"PORT": "9090", "ON": "true", "R": "0.25", "N": "y"}
    assert resolve_text(text, env=env) == {"port": 9090, "on": True, "ratio": 0.25, "name": "y"}


def test_env_value_of_wrong_type_is_an_error_without_showing_the_value() -> None:
    message = error_of("port = @env(PORT, 8080)", env={"PORT": "hunter2"})
    assert "must be an integer" in message and "hunter2" not in message


def test_expression_over_env_is_evaluated_after_the_directive() -> None:
    text = 'rollout_percentage = @env("APP_ENV", "dev") == "production" ? 25 : 100'
    assert resolve_text(text, env={"APP_ENV": "production"}) == {"rollout_percentage": 25}
    assert resolve_text(text, env={}) == {"rollout_percentage": 100}


def test_type_error_in_expression_is_a_diagnostic_at_the_expression() -> None:
    message = error_of('x = @env(PORT, "80") + 1', env={})
    assert "error[TSK210]" in message and "cannot add the string" in message and "test.tsk:1:" in message


def test_where_env_values_flow_is_recorded_at_the_env_call() -> None:
    text = (
        "$tok = @env(TOKEN)\n"
        "storage = { connection = @env(REDIS_URL) }\n"
        'meta = { a = $tok, b = "t=${tok}", c = [1, @env(TOKEN)], d = @env(N, 1) > 0 ? "y" : "n", e = "plain" }\n'
    )
    document = tusklang.parse(text, "t.tsk")
    resolved = resolve_document(document, env={"REDIS_URL": "redis://secret", "TOKEN": "t"})
    where = {path: sorted(span.line for span in spans) for path, spans in resolved.taint.items()}
    assert where == {
        ("storage", "connection"): [2],
        ("meta", "a"): [1],
        ("meta", "b"): [1],
        ("meta", "c", 1): [3],
        ("meta", "d"): [3],
    }
    assert ("storage", "connection") in resolved.secret_paths


def test_env_value_that_is_not_utf8_is_refused_at_the_call_without_showing_it() -> None:
    # os.environ holds undecodable bytes as lone surrogates (PEP 383)
    message = error_of("x = 1\ny = @env(BIN)", env={"BIN": "pass\udcffword"})
    assert "error[TSK273]" in message and "`BIN` is not valid UTF-8" in message and "test.tsk:2:5" in message
    assert "pass" not in message


def test_env_value_with_invalid_bytes_from_the_process_environment(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    path = tmp_path / "e.tsk"
    path.write_text("a = @env(TUSK_TEST_BIN)\n")
    env = {**os.environb, b"TUSK_TEST_BIN": b"s3cr\xff\xfet"}
    done = subprocess.run(
        [sys.executable, "-m", "tusklang.cli", "parse", str(path), "--resolve"], env=env, capture_output=True
    )
    assert done.returncode == 1, done.stderr
    assert b"TSK273" in done.stderr and b"Traceback" not in done.stderr and b"s3cr" not in done.stderr


def test_env_file_option(tmp_path: Path) -> None:
    from tusklang.cli._resolve_options import read_env_file

    env_file = tmp_path / ".env"
    env_file.write_text('# comment\nexport A=1\nB="two words"\nC=plain # trailing\n')
    assert read_env_file(str(env_file)) == {"A": "1", "B": "two words", "C": "plain"}


def test_env_file_escapes_never_make_text_that_is_not_utf8(tmp_path: Path) -> None:
    from tusklang.cli._resolve_options import read_env_file

    env_file = tmp_path / ".env"
    env_file.write_text('A="\\x"\nB="caf\u00e9\\n\\t\\"q\\""\nC="\\ud800"\nD=\'\\n\'\n', encoding="utf-8")
    values = read_env_file(str(env_file))
    assert values == {"A": "\\x", "B": 'caf\u00e9\n\t"q"', "C": "\\ud800", "D": "\\n"}
    for value in values.values():
        value.encode("utf-8")


def test_env_file_with_invalid_bytes_is_a_one_line_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tusklang.cli import main

    env_file = tmp_path / ".env"
    env_file.write_bytes(b"OK=1\nBIN=ab\xffcd\n")
    path = tmp_path / "e.tsk"
    path.write_text("a = @env(OK)\n")
    assert main(["parse", str(path), "--resolve", "--env-file", str(env_file)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not UTF-8 text (invalid byte 0xff at offset 11)" in err
    out = tmp_path / "o.json"
    assert main(["compile", str(path), "-o", str(out), "--env-file", str(env_file)]) == 2
    assert "invalid byte 0xff" in capsys.readouterr().err and not out.exists()


# --- @file, @date, unknown directives --------------------------------------------------------


def test_file_include_with_key_path(tmp_path: Path) -> None:
    (tmp_path / "shared.tsk").write_text('targeting = { segments = ["a", "b"] }\n')
    main = tmp_path / "main.tsk"
    main.write_text('all = @file("shared.tsk")\nsegs = @file("shared.tsk", "targeting.segments")\n')
    data = tusklang.resolve(tusklang.parse(main.read_text(), str(main)), env={})
    assert data == {"all": {"targeting": {"segments": ["a", "b"]}}, "segs": ["a", "b"]}


def test_file_include_cycle_is_an_error_showing_the_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.tsk").write_text('b = @file("b.tsk")\n')
    (tmp_path / "b.tsk").write_text('a = @file("a.tsk")\n')
    a = tmp_path / "a.tsk"
    with pytest.raises(TuskError) as info:
        tusklang.resolve(tusklang.parse(a.read_text(), str(a)), env={})
    assert "include cycle: a.tsk -> b.tsk -> a.tsk" in info.value.render()


def test_file_may_not_escape_the_project_root(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "outside.tsk").write_text("x = 1\n")
    main = project / "main.tsk"
    main.write_text('x = @file("../outside.tsk")\n')
    with pytest.raises(TuskError) as info:
        tusklang.resolve(tusklang.parse(main.read_text(), str(main)), env={})
    assert "TSK241" in info.value.render()
    data = tusklang.resolve(tusklang.parse(main.read_text(), str(main)), env={}, allow_outside_root=True)
    assert data == {"x": {"x": 1}}


def _file_error(tmp_path: Path, argument: str, **options: object) -> str:
    main = tmp_path / "main.tsk"
    main.write_text(f"x = 1\ny = @file({argument})\n")
    with pytest.raises(TuskError) as info:
        tusklang.resolve(tusklang.parse(main.read_text(), str(main)), env={}, **options)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.span is not None and diagnostic.span.line == 2
    return f"{diagnostic.code}: {diagnostic.message}"


def test_file_path_with_a_nul_character_is_an_argument_error(tmp_path: Path) -> None:
    assert _file_error(tmp_path, '"\\u0000"').startswith("TSK240: an @file path cannot contain a NUL")
    assert _file_error(tmp_path, '"a\\u0000b.tsk"').startswith("TSK240")


@pytest.mark.timeout(20)
def test_file_refuses_anything_but_a_regular_file_before_opening_it(tmp_path: Path) -> None:
    import os
    import socket

    os.mkfifo(tmp_path / "pipe.tsk")  # opening it for reading would block until a writer came
    (tmp_path / "pipe-link.tsk").symlink_to(tmp_path / "pipe.tsk")
    (tmp_path / "folder.tsk").mkdir()
    (tmp_path / "device.tsk").symlink_to("/dev/null")
    (tmp_path / "loop-a.tsk").symlink_to(tmp_path / "loop-b.tsk")
    (tmp_path / "loop-b.tsk").symlink_to(tmp_path / "loop-a.tsk")
    (tmp_path / "latin1.tsk").write_bytes(b'x = "caf\xe9"\n')
    listener = socket.socket(socket.AF_UNIX)
    try:
        listener.bind(str(tmp_path / "sock.tsk"))
        cases = {
            '"pipe.tsk"': "is a FIFO (named pipe), not a regular file",
            '"pipe-link.tsk"': "is a FIFO (named pipe), not a regular file",
            '"folder.tsk"': "is a directory, not a regular file",
            '"sock.tsk"': "is a socket, not a regular file",
            '"device.tsk"': "is a character device, not a regular file",
            '"loop-a.tsk"': "cannot read `loop-a.tsk`",
            '"latin1.tsk"': "is not UTF-8 text (invalid byte 0xe9 at offset 8)",
            '"' + "n" * 5000 + '.tsk"': "File name too long",
        }
        for argument, expected in cases.items():
            found = _file_error(tmp_path, argument, allow_outside_root=True)
            assert found.startswith("TSK243") and expected in found, (argument, found)
    finally:
        listener.close()


def test_errors_inside_an_included_file_point_into_it(tmp_path: Path) -> None:
    (tmp_path / "bad.tsk").write_text("x = $nope\n")
    main = tmp_path / "main.tsk"
    main.write_text('inc = @file("bad.tsk")\n')
    with pytest.raises(TuskError) as info:
        tusklang.resolve(tusklang.parse(main.read_text(), str(main)), env={})
    text = info.value.render()
    assert "bad.tsk:1:5" in text and "included from here" in text


def test_date_honours_source_date_epoch() -> None:
    data = resolve_text('d = @date("Y-m-d")\niso = @date', env={"SOURCE_DATE_EPOCH": "1706745600"})
    assert data == {"d": "2024-02-01", "iso": "2024-02-01T00:00:00Z"}


def test_unknown_and_runtime_only_directives_list_the_supported_ones() -> None:
    message = error_of('a = @qury("x")\nb = @learn("m")', env={})
    assert "unknown directive `@qury`" in message and "did you mean `@query`?" in message
    assert "runtime-only" in message and "@env, @file, @query" in message


def test_unknown_variable_suggests_a_close_name() -> None:
    message = error_of("$environment = 1\nx = $enviroment", env={})
    assert "did you mean `$environment`?" in message


def test_parse_cli_resolve(tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from tusklang.cli import main

    path = tmp_path / "f.tsk"
    path.write_text('n = @query("SELECT COUNT(*) AS n FROM feature_flags")\nm = @env(MODE, "x")\n')
    assert main(["parse", "--resolve", str(path), "--db", sqlite_url]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["m"] == "x" and out["n"][0]["n"] > 0
    assert main(["parse", "--resolve", str(path)]) == 1
    assert "TSK230" in capsys.readouterr().err


def test_shipped_fixture_database_matches_its_sql(tmp_path: Path) -> None:
    """fixtures/db/seed.db is committed so the README's command works from a clone; keep it current."""
    import sqlite3

    fresh = _build_module().build_sqlite(tmp_path / "fresh.db")

    def dump(path: Path) -> list[str]:
        with sqlite3.connect(path) as conn:
            return list(conn.iterdump())

    assert dump(ROOT / "fixtures" / "db" / "seed.db") == dump(fresh), "run: python fixtures/db/build.py"


@pytest.mark.parametrize("epoch", ["-99999999999999", "99999999999999999999", "1e3", "soon"])
def test_date_with_an_unusable_source_date_epoch_is_a_positioned_error(epoch: str) -> None:
    with pytest.raises(TuskError) as info:
        resolve_text('x = 1\nd = @date("Y")', env={"SOURCE_DATE_EPOCH": epoch})
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.code == "TSK228" and diagnostic.span is not None and diagnostic.span.line == 2


@pytest.mark.parametrize(
    "default, value, kind",
    [
        ("0.5", "nan", "a finite number"),
        ("0.5", "-inf", "a finite number"),
        ("0.5", "1e999", "a finite number"),
        ("1", "9" * 5000, "an integer of at most 4,000 digits"),
    ],
)
def test_env_numbers_are_finite_and_bounded(default: str, value: str, kind: str) -> None:
    message = error_of(f"x = @env(N, {default})", env={"N": value})
    assert "error[TSK224]" in message and f"must be {kind}" in message and value[:20] not in message


def test_parse_resolve_prints_canonical_tusklang(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tusklang.cli import main

    path = tmp_path / "q.tsk"
    path.write_text("x = @env(N)\n")
    monkeypatch.setenv("N", "fine")
    assert main(["parse", str(path), "--resolve", "--format", "tusk"]) == 0
    assert capsys.readouterr().out == 'x = "fine"\n'
