"""`tusk check` runs the flag schema and lint rules on flag projects, configurable per code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tusklang.cli import main

ROOT = Path(__file__).resolve().parent.parent
INVALID = ROOT / "fixtures" / "compile" / "invalid"

UNDOCUMENTED = """
management_config = {
    documentation = { required_fields = ["description", "owner"] }
}
feature_flags = {
    flags = {
        checkout = { enabled = true, rollout_percentage = 25, metadata = { owner = "payments" } }
    }
}
"""


def _codes(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [d["code"] for d in json.loads(capsys.readouterr().out)["diagnostics"]]


def test_lint_findings_are_warnings_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "flags.tsk"
    path.write_text(UNDOCUMENTED)
    assert main(["check", str(path), "--format", "json"]) == 0
    assert "TSK401" in _codes(capsys)


def test_error_switch_makes_a_lint_code_fail_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "flags.tsk"
    path.write_text(UNDOCUMENTED)
    assert main(["check", str(path), "--error", "TSK401", "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert [d["severity"] for d in out["diagnostics"] if d["code"] == "TSK401"] == ["error"]


def test_ignore_switch_drops_a_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "flags.tsk"
    path.write_text(UNDOCUMENTED)
    assert main(["check", str(path), "--ignore", "TSK401", "--format", "json"]) == 0
    assert "TSK401" not in _codes(capsys)


def test_schema_errors_reported_with_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    path = INVALID / "unknown_key_rollout_percantage.tsk"
    assert main(["check", str(path), "--format", "json"]) == 1
    found = json.loads(capsys.readouterr().out)["diagnostics"]
    typo = [d for d in found if d["code"] == "TSK301"]
    assert typo and "rollout_percentage" in (typo[0]["hint"] or "")
    assert typo[0]["span"]["line"] == 5


def test_general_tusklang_files_are_not_held_to_the_flag_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "app.tsk"
    path.write_text('server = { host = "0.0.0.0", port = 8080 }\n')
    assert main(["check", str(path), "--format", "json"]) == 0
    assert _codes(capsys) == []


def test_blocks_split_over_files_are_checked_as_one_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "management.tsk").write_text(UNDOCUMENTED.split("feature_flags =")[0])
    (tmp_path / "flags.tsk").write_text("feature_flags =" + UNDOCUMENTED.split("feature_flags =")[1])
    files = [str(tmp_path / "management.tsk"), str(tmp_path / "flags.tsk")]
    assert main(["check", *files, "--format", "json"]) == 0
    assert "TSK401" in _codes(capsys)


def test_bad_now_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "flags.tsk"
    path.write_text(UNDOCUMENTED)
    assert main(["check", str(path), "--now", "yesterday"]) == 2
