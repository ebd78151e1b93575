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
    assert 'a: rule rollout when (always) -> region in ["eu"]' in lines
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


def test_sources_are_compiled_and_diffed_as_their_snapshots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Reviewing a change before compiling it: the .tsk files (or a directory, or a pipe from `git show`)
    # give the same changes as their compiled snapshots.
    flags = "  a = { rollout_percentage = 25 }\n  gone = { rollout_percentage = 1 }"
    changed = '  a = { rollout_percentage = 50, targeting = { regions = ["eu"] } }'
    old_json, new_json = snapshot(tmp_path, "old", flags), snapshot(tmp_path, "new", changed)
    assert main(["diff", str(old_json), str(new_json), "--format", "json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "flags.tsk").write_text((tmp_path / "new.tsk").read_text())
    piped = tmp_path / "old.source"  # no suffix: read once, sniffed as not JSON
    piped.write_text((tmp_path / "old.tsk").read_text())
    for old, new in [
        (tmp_path / "old.tsk", tmp_path / "new.tsk"),
        (old_json, tmp_path / "dir"),
        (piped, new_json),
    ]:
        assert main(["diff", str(old), str(new), "--format", "json"]) == 0
        assert json.loads(capsys.readouterr().out) == expected


def test_a_source_that_does_not_compile_exits_1_with_its_diagnostics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = snapshot(tmp_path, "good", "  a = { rollout_percentage = 25 }")
    bad = tmp_path / "bad.tsk"
    bad.write_text("feature_flags = {\n flags = {\n  a = { rollout_percentage = 250 }\n }\n}\n")
    assert main(["diff", str(good), str(bad)]) == 1
    err = capsys.readouterr()
    assert "TSK303" in err.out + err.err and "bad.tsk:3" in err.out + err.err


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


def test_rules_prerequisites_and_values_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = (
        "  gate = { rollout_percentage = 10 }\n"
        "  other = { rollout_percentage = 10 }\n"
        "  layout = {\n"
        '   variants = { compact = { rows = 50 }, roomy = { rows = 20 } }\n   fallback = "roomy"\n'
        "   requires = REQUIRES\n"
        "   rules = [ RULES ]\n  }"
    )
    nl = '{ id = "nl", when = { attribute = "country", op = "in", values = [COUNTRIES] }, serve = "SERVE" }'
    beta = '{ id = "beta", when = { attribute = "beta", op = "exists" }, serve = "compact" }'
    old = snapshot(
        tmp_path,
        "old",
        base.replace("REQUIRES", "{ gate = true, other = true }").replace(
            "RULES", nl.replace("COUNTRIES", '"NL"').replace("SERVE", "compact") + ", " + beta
        ),
    )
    new_flags = base.replace("REQUIRES", '{ other = true, gate = ["on", "off"] }').replace(
        "RULES", beta + ", " + nl.replace("COUNTRIES", '"NL", "BE"').replace("SERVE", "roomy")
    )
    new_flags = new_flags.replace("roomy = { rows = 20 }", "roomy = { rows = 25 }")
    new = snapshot(tmp_path, "new", new_flags)
    assert main(["diff", str(old), str(new), "--format", "json"]) == 0
    changes = {(c["kind"], c["message"]) for c in json.loads(capsys.readouterr().out)["changes"]}
    assert changes == {
        ("value", 'layout: variant roomy serves {"rows": 20} -> {"rows": 25}'),
        ("prerequisite", "layout: requires gate to serve on -> on, off"),
        ("prerequisite", "layout: prerequisites checked in the order other, gate (was gate, other)"),
        ("targeting", 'layout: rule nl when country in ["NL"] -> country in ["NL", "BE"]'),
        ("serve", "layout: rule nl serves compact -> roomy"),
        ("order", "layout: rules reordered: nl, beta -> beta, nl"),
    }


def test_rules_added_and_removed_say_what_they_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = snapshot(tmp_path, "old", "  a = { rollout_percentage = 10 }\n  b = { rollout_percentage = 10 }")
    new = snapshot(
        tmp_path,
        "new",
        '  a = { rollout_percentage = 10, requires = { b = "x" },\n'
        '    rules = [ { id = "pros", when = { not = { attribute = "plan", op = "==", value = "free" } },\n'
        "                rollout = 5 } ] }\n"
        '  b = { rollout_percentage = 10, value = "x", fallback = "y" }',
    )
    assert main(["diff", str(old), str(new)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert 'a: rule pros added: when not (plan == "free"), rollout 5%, serve on' in lines
    assert "a: now requires b to serve on" in lines
    assert "b: value type boolean -> string" in lines
    assert "b: variants ['off', 'on'] -> ['fallback', 'on']" in lines
    assert main(["diff", str(new), str(old)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert 'a: rule pros removed (was when not (plan == "free"), rollout 5%, serve on)' in lines
    assert "a: no longer requires b" in lines
