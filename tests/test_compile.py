"""The compiler end to end: the seed project's golden snapshot, determinism, atomic output, secrets."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tusklang.cli import main
from tusklang.compiler import compile_files
from tusklang.diagnostics import TuskError

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "fixtures" / "seed"
GOLDEN = SEED / "snapshot.json"
EPOCH = "1706832000"  # 2024-02-02T00:00:00Z, the fixture database's "now"
SECRET_URL = "redis://:hunter2-secret@127.0.0.1:6379/0"


@pytest.fixture
def seed_db(tmp_path: Path) -> str:
    sys.path.insert(0, str(ROOT / "fixtures" / "db"))
    try:
        import build  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    out = build.build_sqlite(tmp_path / "seed.db")
    return f"sqlite:///{out}"


def compile_seed(db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    result = compile_files([str(SEED / "project.tsk")], env={"REDIS_URL": SECRET_URL}, database=db, verify=True)
    return result.text


def test_seed_project_compiles_to_the_golden_snapshot(seed_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = compile_seed(seed_db, monkeypatch)
    if os.environ.get("TUSK_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_second_compile_is_byte_identical(seed_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert compile_seed(seed_db, monkeypatch) == compile_seed(seed_db, monkeypatch)


def test_no_secret_reaches_the_snapshot(seed_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = compile_seed(seed_db, monkeypatch)
    assert "hunter2" not in text
    assert "redis://" not in text


def test_provenance_names_sources_relative_with_hashes(seed_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = json.loads(compile_seed(seed_db, monkeypatch))
    provenance = snapshot["provenance"]
    assert provenance["compiled_at"] == "2024-02-02T00:00:00Z"
    assert provenance["sources"][0]["path"] == "project.tsk"
    import hashlib

    expected = hashlib.sha256((SEED / "project.tsk").read_text(encoding="utf-8").encode()).hexdigest()
    assert provenance["sources"][0]["sha256"] == expected


def test_no_compile_time_without_source_date_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    project = tmp_path / "p.tsk"
    project.write_text("feature_flags = {\n flags = {\n  a = { rollout_percentage = 5 }\n }\n}\n")
    snapshot = compile_files([str(project)], verify=True).snapshot
    assert "compiled_at" not in snapshot["provenance"]


def test_unmodified_seed_block_needs_a_start_for_the_gradual_flag(tmp_path: Path) -> None:
    project = tmp_path / "seed.tsk"
    project.write_text((ROOT / "fixtures/valid/seed/feature_flags.tsk").read_text(encoding="utf-8"))
    with pytest.raises(TuskError) as info:
        compile_files([str(project)], env={"REDIS_URL": SECRET_URL})
    errors = [d for d in info.value.diagnostics if d.is_error]
    assert [d.code for d in errors] == ["TSK313"]
    assert "ai_recommendations" in errors[0].message
    assert errors[0].span is not None and errors[0].span.line == 33


def test_static_and_query_flags_merge(tmp_path: Path) -> None:
    project = tmp_path / "p.tsk"
    project.write_text(
        "feature_flags = {\n flags = {\n  a = { rollout_percentage = 5 }\n }\n}\n"
        "feature_flags_data = {\n flag_definitions = [\n"
        '  { flag_name = "b", enabled = 1, rollout_strategy = "all", rollout_percentage = 100,'
        ' fallback_value = "legacy" }\n ]\n}\n'
    )
    flags = compile_files([str(project)], verify=True).snapshot["flags"]
    assert sorted(flags) == ["a", "b"]
    assert flags["b"]["enabled"] is True  # a database 1 is a boolean true
    # a string fallback makes a string flag: `on` serves its name (TSK341 says so), not `true`
    assert (flags["b"]["type"], flags["b"]["variants"]) == ("string", {"on": "on", "fallback": "legacy"})


# --- tusk compile ---------------------------------------------------------------------------------


def test_cli_writes_the_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "flags.json"
    project = tmp_path / "p.tsk"
    project.write_text("feature_flags = {\n flags = {\n  a = { rollout_percentage = 12.5 }\n }\n}\n")
    assert main(["compile", str(project), "-o", str(out)]) == 0
    snapshot = json.loads(out.read_text())
    assert snapshot["format"] == "tusklang.snapshot/1"
    assert snapshot["flags"]["a"]["rules"][0]["rollout"]["percentage"] == 12_500


def test_failed_compile_leaves_previous_output_untouched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "flags.json"
    out.write_bytes(b'{"previous": true}\n')
    project = tmp_path / "p.tsk"
    project.write_text("feature_flags = {\n flags = {\n  a = { rollout_percantage = 5 }\n }\n}\n")
    assert main(["compile", str(project), "-o", str(out)]) == 1
    assert out.read_bytes() == b'{"previous": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flags.json", "p.tsk"]  # no temp file left
    err = capsys.readouterr().err
    assert "p.tsk:3:9" in err and "did you mean `rollout_percentage`?" in err


def test_cli_json_diagnostics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "p.tsk"
    project.write_text("feature_flags = {\n flags = {\n  a = { rollout_percentage = 500 }\n }\n}\n")
    assert main(["compile", str(project), "-o", str(tmp_path / "o.json"), "--format", "json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["errors"] == 1
    assert payload["diagnostics"][0]["code"] == "TSK303"
    assert payload["diagnostics"][0]["span"]["line"] == 3


def test_cli_error_option_turns_lint_into_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "p.tsk"
    project.write_text(
        "feature_flags = {\n flags = {\n  a = { rollout_percentage = 5 }\n }\n}\n"
        'management_config = {\n documentation = { required_fields = ["owner"] }\n}\n'
    )
    out = tmp_path / "o.json"
    assert main(["compile", str(project), "-o", str(out)]) == 0
    assert main(["compile", str(project), "-o", str(tmp_path / "x.json"), "--error", "TSK401"]) == 1
    assert not (tmp_path / "x.json").exists()
    assert main(["compile", str(project), "-o", str(out), "--ignore", "TSK401", "--error", "TSK401"]) == 0


def test_cli_env_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = tmp_path / ".env"
    env.write_text("# comment\nexport REDIS_URL='redis://:pw@127.0.0.1:6379'\n")
    project = tmp_path / "p.tsk"
    project.write_text('feature_flags = {\n storage = { type = "redis", connection = @env(REDIS_URL) }\n}\n')
    out = tmp_path / "o.json"
    assert main(["compile", str(project), "-o", str(out), "--env-file", str(env)]) == 0
    assert "pw@" not in out.read_text()
    assert "pw@" not in capsys.readouterr().err


def test_check_document_reports_schema_problems_statically() -> None:
    import tusklang
    from tusklang.compiler import check_document

    text = "feature_flags = {\n flags = {\n  a = { rollout_percantage = 5 }\n }\n}\n"
    diagnostics = check_document(tusklang.parse(text, "x.tsk"))
    assert [(d.code, d.span.line if d.span else None) for d in diagnostics if d.is_error] == [("TSK301", 3)]
    seed = (SEED / "project.tsk").read_text(encoding="utf-8")
    assert not [d for d in check_document(tusklang.parse(seed, "project.tsk")) if d.is_error]


# --- where the snapshot goes: every failure is one line, exit 2, and nothing changes ----------------

PROJECT = "feature_flags = {\n flags = { f = { rollout_percentage = 5 } }\n}\n"


def _tree(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def _unwritable(tmp_path: Path) -> Path:
    if os.geteuid() == 0:  # root writes anywhere chmod forbids: use a folder the kernel refuses
        return Path("/sys")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    return folder


@pytest.mark.parametrize("target", ["flags", "unwritable", "through-a-file", "missing-folder", "empty"])
@pytest.mark.parametrize("kind", ["snapshot", "flagd"])
def test_an_output_that_cannot_be_written_is_a_one_line_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str, kind: str
) -> None:
    project = tmp_path / "p.tsk"
    project.write_text(PROJECT)
    (tmp_path / "flags").mkdir()
    (tmp_path / "flags" / "old.json").write_text("old\n")
    (tmp_path / "afile").write_text("a file\n")
    out = {
        "flags": str(tmp_path / "flags"),
        "unwritable": str(_unwritable(tmp_path) / "flags.json"),
        "through-a-file": str(tmp_path / "afile" / "flags.json"),
        "missing-folder": str(tmp_path / "nowhere" / "flags.json"),
        "empty": "",
    }[target]
    before = _tree(tmp_path)
    assert main(["compile", str(project), "-o", out, "--target", kind]) == 2
    err = capsys.readouterr().err
    named = f"tusk compile: {out}: " if out else "tusk compile: -o/--output: the path is empty"
    assert err.count("\n") == 1 and err.startswith(named) and "Traceback" not in err
    assert _tree(tmp_path) == before  # no temp file left, nothing replaced


def test_a_write_that_fails_halfway_leaves_the_old_snapshot(tmp_path: Path) -> None:
    """The disk fills up (here: a file-size limit) while the snapshot is written."""
    import subprocess

    project = tmp_path / "p.tsk"
    project.write_text(PROJECT)
    out = tmp_path / "flags.json"
    out.write_text("old\n")
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))\n"
        "from tusklang.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "compile", str(project), "-o", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"tusk compile: {out}: cannot write (File too large)")
    assert "Traceback" not in done.stderr
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flags.json", "p.tsk"]


def test_write_atomic_refuses_a_directory_for_every_caller(tmp_path: Path) -> None:
    from tusklang.cli._common import UsageError, write_atomic

    with pytest.raises(UsageError, match="is a directory"):
        write_atomic(tmp_path, "x")
    with pytest.raises(UsageError, match="cannot write"):
        write_atomic(str(tmp_path / "a\0b"), "x")
    assert list(tmp_path.iterdir()) == []
