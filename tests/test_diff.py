"""`tusk diff`: changes between snapshots, for people and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tusklang.cli import main
from tusklang.compiler import compile_files


def snapshot(tmp_path: Path, name: str, flags: str) -> Path:
    src = tmp_path / f"{name}.tsk"
    src.write_text("feature_flags = {\n flags = {\n" + flags + "\n }\n}\n")
    out = tmp_path / f"{name}.json"
    out.write_text(compile_files([str(src)], static=True, verify=True).text)
    return out


def test_people_readable_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = snapshot(
        tmp_path,
        "old",
        "  a = { rollout_percentage = 25 }\n"
        "  b = { rollout_percentage = 100, a_b_testing = { variants = { x = 0.5, y = 0.5 } } }\n"
        "  gone = { rollout_percentage = 1 }",
    )
    new = snapshot(
        tmp_path,
        "new",
        '  a = { rollout_percentage = 50, targeting = { regions = ["eu"] } }\n'
        "  b = { rollout_percentage = 100, a_b_testing = { variants = { x = 0.7, y = 0.3 } } }\n"
        "  c = { enabled = false, rollout_percentage = 12.5 }",
    )
    assert main(["diff", str(old), str(new)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "a: rollout 25% -> 50%" in lines
    assert any(line.startswith("a: rule rollout targeting") and '"eu"' in line for line in lines)
    assert "b: variant weights x 50%, y 50% -> x 70%, y 30%" in lines
    assert "c: added (rollout 12.5%)" in lines
    assert "gone: removed" in lines


def test_json_format_and_no_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = snapshot(tmp_path, "old", "  a = { rollout_percentage = 25 }")
    new = snapshot(tmp_path, "new", "  a = { enabled = false, rollout_percentage = 25 }")
    assert main(["diff", str(old), str(new), "--format", "json"]) == 0
    changes = json.loads(capsys.readouterr().out)["changes"]
    assert changes == [{"kind": "enabled", "section": "flags", "key": "a", "message": "a: disabled"}]
    assert main(["diff", str(old), str(old)]) == 0
    assert capsys.readouterr().out.strip() == "no changes"


def test_not_json_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert main(["diff", str(bad), str(bad)]) == 2
    assert "not JSON" in capsys.readouterr().err


def test_changes_that_rebucket_everyone_and_runtime_settings_are_named() -> None:
    from tusklang.compiler.diff import diff_snapshots

    golden = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "seed" / "snapshot.json").read_text())
    changed = json.loads(json.dumps(golden))
    changed["flags"]["checkout_express"]["bucket_by"] = "account_id"
    changed["flags"]["api_rate_limit_v3"]["rules"][0]["rollout"]["salt"] = "renamed/rollout"
    changed["runtime"]["tracking"]["sampling_rate"] = 0.5
    changed["runtime"]["storage"]["key_prefix"] = "flags:"
    messages = sorted(change.message for change in diff_snapshots(golden, changed))
    assert messages == [
        "api_rate_limit_v3: rollout 75% -> 75% (salt changed: every unit is re-bucketed)",
        "checkout_express: bucketing attribute user_id -> account_id (every unit is re-bucketed)",
        "runtime storage.key_prefix: feature_flags: -> flags:",
        "runtime tracking.sampling_rate: 0.1 -> 0.5",
    ]
    assert diff_snapshots(golden, golden) == []
