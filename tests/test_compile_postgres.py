"""The seed project compiled against PostgreSQL: the same snapshot as against SQLite, byte for byte."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tusklang.cli import main
from tusklang.compiler import compile_files

from .test_db_postgres import load_build

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "fixtures" / "seed"
GOLDEN = SEED / "snapshot.json"
EPOCH = "1706832000"  # 2024-02-02T00:00:00Z, the golden's SOURCE_DATE_EPOCH


@pytest.fixture(scope="module")
def pg_seed_url(postgres_url: str, fixtures_dir: Path) -> Iterator[str]:
    build = load_build(fixtures_dir)
    schema = f"tusk_compile_test_{uuid.uuid4().hex[:12]}"
    try:
        yield build.load_postgres(postgres_url, schema)
    finally:
        build.drop_postgres(postgres_url, schema)


def test_postgres_compile_matches_the_golden_snapshot(pg_seed_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    result = compile_files(
        [str(SEED / "project.tsk")], env={"REDIS_URL": "redis://:pw@cache:6379/0"}, database=pg_seed_url, verify=True
    )
    assert result.text == GOLDEN.read_text(encoding="utf-8")


def test_cli_compile_against_postgres_writes_no_connection_string(
    pg_seed_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    out = tmp_path / "flags.json"
    code = main(
        [
            "compile",
            str(SEED / "project.tsk"),
            "--db",
            pg_seed_url,
            "--env-file",
            str(SEED / "seed.env"),
            "-o",
            str(out),
            "--format",
            "json",
        ]
    )
    assert code == 0
    text = out.read_text(encoding="utf-8")
    assert "postgresql://" not in text and "search_path" not in text
    assert len(json.loads(text)["flags"]) == len(json.loads(GOLDEN.read_text(encoding="utf-8"))["flags"])


def test_a_failing_query_leaves_the_previous_snapshot_untouched(
    pg_seed_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "flags.tsk"
    project.write_text('feature_flags_data = {\n    flag_definitions = @query("SELECT * FROM no_such_table")\n}\n')
    out = tmp_path / "flags.json"
    out.write_bytes(b'{"previous": true}\n')
    assert main(["compile", str(project), "--db", pg_seed_url, "-o", str(out)]) == 1
    assert out.read_bytes() == b'{"previous": true}\n'
    assert "no_such_table" in capsys.readouterr().err
