"""`tusk eval`: output shapes and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tusklang.cli import main

SUITE = Path(__file__).resolve().parent.parent / "fixtures" / "conformance"


@pytest.fixture
def snapshot_file(tmp_path: Path) -> Path:
    doc = json.loads((SUITE / "time_window.json").read_text(encoding="utf-8"))["snapshots"]["s"]
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_json_output_with_explain(snapshot_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "eval",
            str(snapshot_file),
            "dark_ny",
            "--context",
            "{}",
            "--now",
            "2024-03-10T22:05:00Z",
            "--format",
            "json",
            "--explain",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {k: out[k] for k in ("value", "variant", "reason", "rule", "error_code")} == {
        "value": True,
        "variant": "on",
        "reason": "TARGETING_MATCH",
        "rule": "night",
        "error_code": None,
    }
    assert any("ok" in line and "18:00" in line for line in out["explain"])


def test_text_output_says_why(snapshot_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "eval",
            str(snapshot_file),
            "dark_ny",
            "--context",
            '{"timezone": "Asia/Tokyo"}',
            "--now",
            "2024-06-01T02:00:00Z",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "reason DEFAULT" in out and "outside 18:00-06:00" in out


def test_unknown_flag_exits_1(snapshot_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(snapshot_file), "nope", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["error_code"] == "FLAG_NOT_FOUND"


@pytest.mark.parametrize(
    "extra",
    [["--context", "{not json"], ["--context", "[1, 2]"], ["--now", "yesterday"]],
)
def test_usage_errors_exit_2(snapshot_file: Path, extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(snapshot_file), "dark_ny", *extra]) == 2
    assert "tusk eval:" in capsys.readouterr().err


def test_invalid_snapshot_exits_2_naming_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "tusklang.snapshot/1", "flags": {"f": {"key": "f"}}}))
    assert main(["eval", str(bad), "f"]) == 2
    assert "$.flags.f" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing.json"), "f"]) == 2


def test_all_evaluates_every_flag_like_evaluate_all(capsys: pytest.CaptureFixture[str]) -> None:
    from tusklang.evaluate import Client

    golden = Path(__file__).resolve().parent.parent / "fixtures" / "seed" / "snapshot.json"
    context = {"user_id": "u7", "environment": "production", "plan": "enterprise"}
    code = main(["eval", str(golden), "--all", "--context", json.dumps(context), "--format", "json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    expected = Client.from_file(golden).evaluate_all(context)
    assert out == {key: result.to_dict() for key, result in expected.items()}
    assert main(["eval", str(golden), "new_checkout_flow", "--all"]) == 2
    assert main(["eval", str(golden)]) == 2


def test_all_with_a_targeting_key_fills_each_flags_own_unit_attribute(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Flags bucketed by different attributes, the context carrying one of them: the targeting key stands
    # in only for what each flag lacks, and --all answers as each flag asked alone does.
    from tusklang.compiler import compile_files

    src = tmp_path / "p.tsk"
    src.write_text(
        "feature_flags = {\n flags = {\n"
        "  by_user = { rollout_percentage = 50 }\n"
        '  by_account = { rollout_percentage = 50, bucket_by = "account_id" }\n'
        " }\n}\n"
    )
    snapshot = tmp_path / "flags.json"
    snapshot.write_text(compile_files([str(src)], static=True).text)
    answers, users = set(), set()
    for i in range(40):
        context = json.dumps({"targetingKey": f"k-{i}", "account_id": "acme"})
        assert main(["eval", str(snapshot), "--all", "--context", context, "--format", "json"]) == 0
        every = json.loads(capsys.readouterr().out)
        for key in ("by_user", "by_account"):
            assert main(["eval", str(snapshot), key, "--context", context, "--format", "json"]) == 0
            alone = json.loads(capsys.readouterr().out)
            assert (every[key]["value"], every[key]["reason"]) == (alone["value"], alone["reason"]), key
        assert "missing" not in (every["by_user"].get("detail") or "")  # the key stood in for user_id
        users.add(every["by_user"]["value"])
        answers.add(every["by_account"]["value"])
    assert users == {True, False}  # bucketed by the key: 40 units fall on both sides of 50%
    assert len(answers) == 1  # every context is account acme: the key did not stand in for it
