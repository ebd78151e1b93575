"""A top-level `progressive_delivery` block (a policy file of its own, as `tusk rollout start --config` reads it) is
a project block like `feature_flags.progressive_delivery`: check, compile and the rollout commands judge it
alike. It used to pass `tusk check` unexamined (a file with no flag block was general configuration) and
fail `tusk compile` as an unknown top-level block (TSK301)."""

from __future__ import annotations

import json
from pathlib import Path
from unittest.mock import ANY

import pytest

from tusklang.cli import main

ROOT = Path(__file__).resolve().parent.parent
SEED_POLICY = ROOT / "fixtures" / "delivery" / "seed_policy.tsk"
METRICS = ROOT / "fixtures" / "delivery" / "healthy.csv"
FLAGS = "feature_flags = { flags = { checkout_page = { rollout_percentage = 5 } } }\n"  # a policy binds checkout_page


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main([*args, "--format", "json"])
    out, _ = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {}


def simulate(policy: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`tusk rollout simulate` of ``policy`` over healthy metrics: its exit code and standard error."""
    code = main(["rollout", "simulate", str(policy), "--metrics", str(METRICS)])
    return code, capsys.readouterr().err


def errors(report: dict) -> set[tuple[str, int]]:
    return {(d["code"], d["span"]["line"]) for d in report["diagnostics"] if d["severity"] == "error"}


def line_of(text: str, needle: str) -> int:
    return 1 + text.split("\n").index(next(line for line in text.split("\n") if needle in line))


def test_the_shipped_policy_file_checks_and_compiles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check", str(SEED_POLICY)], capsys)[0] == 0
    code, report = run(["compile", str(SEED_POLICY), "-o", str(tmp_path / "o.json")], capsys)
    assert code == 0, report
    snapshot = json.loads((tmp_path / "o.json").read_text())
    assert snapshot["flags"] == {} and "progressive_delivery" not in json.dumps(snapshot)  # never copied


def test_a_bad_policy_is_the_same_error_at_the_same_line_for_every_door(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = SEED_POLICY.read_text()
    policy = tmp_path / "policy.tsk"
    policy.write_text(seed.replace("response_time = 2000", "response_time = { limit = 2000 }", 1))
    line = line_of(policy.read_text(), "response_time = { limit")
    code, checked = run(["check", str(policy)], capsys)
    assert code == 1 and errors(checked) == {("TSK302", line)}
    code, compiled = run(["compile", str(policy), "-o", str(tmp_path / "o.json")], capsys)
    assert code == 1 and errors(compiled) == {("TSK302", line)}
    assert not (tmp_path / "o.json").exists()
    code, err = simulate(policy, capsys)
    assert code == 1 and f"policy.tsk:{line}:" in err  # the rollout loader's own TSK800, same place


def test_a_policy_at_the_top_level_and_under_feature_flags_is_defined_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nested = (
        "feature_flags = {\n"
        "    flags = { checkout_page = { rollout_percentage = 5 } }\n"
        '    progressive_delivery = { blue_green_deployments = { rollback_window = "5 minutes" } }\n'
        "}\n"
    )
    project = tmp_path / "project.tsk"
    project.write_text(nested + SEED_POLICY.read_text())
    top = 1 + project.read_text().split("\n").index("progressive_delivery = {")  # the one at column 1
    for command in (["check", str(project)], ["compile", str(project), "-o", str(tmp_path / "o.json")]):
        code, report = run(command, capsys)
        assert code == 1 and errors(report) == {("TSK318", top)}, command
        (found,) = [d for d in report["diagnostics"] if d["code"] == "TSK318"]
        assert [r["span"]["line"] for r in found["related"]] == [3]  # the one under feature_flags
    code, err = simulate(project, capsys)  # it read the top-level one
    assert code == 1 and "TSK318" in err and f"project.tsk:{top}:" in err


def test_a_top_level_policy_binds_its_flag_as_a_nested_one_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = FLAGS + (
        "progressive_delivery = {\n"
        '    blue_green_deployments = { flag = "checkout_pages", rollback_window = "5 minutes" }\n'
        "}\n"
    )
    project = tmp_path / "project.tsk"
    project.write_text(policy)
    code, report = run(["compile", str(project), "-o", str(tmp_path / "o.json")], capsys)
    assert code == 1 and errors(report) == {("TSK823", 3)}
    assert "checkout_page" in json.dumps(report)  # did you mean
    project.write_text(policy.replace("checkout_pages", "checkout_page"))
    assert run(["compile", str(project), "-o", str(tmp_path / "o.json")], capsys)[0] == 0
    assert run(["check", str(project)], capsys)[0] == 0


def test_an_env_value_in_a_top_level_policy_is_allowed_as_in_a_nested_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.tsk"
    text = SEED_POLICY.read_text().replace(
        'evaluation_period = "5 minutes"', 'evaluation_period = @env(TUSK_TEST_PERIOD, "5 minutes")', 1
    )
    policy.write_text(text)
    monkeypatch.setenv("TUSK_TEST_PERIOD", "10 minutes")
    code, report = run(["compile", str(policy), "-o", str(tmp_path / "o.json")], capsys)
    assert code == 0 and not errors(report)
    assert "10 minutes" not in (tmp_path / "o.json").read_text()


def test_policy_files_beside_the_flags_do_not_join_a_directory_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One policy file per release (each a `tusk rollout start --config`): a directory holding several
    compiles its flags as before, and each policy file named alone is still checked."""
    (tmp_path / "flags.tsk").write_text(FLAGS)
    (tmp_path / "canary_a.tsk").write_text(SEED_POLICY.read_text())
    broken = SEED_POLICY.read_text().replace("response_time = 2000", 'response_time = "fast"', 1)
    (tmp_path / "canary_b.tsk").write_text(broken)
    out = tmp_path / "out" / "o.json"
    out.parent.mkdir()
    for command in (["check", str(tmp_path)], ["compile", str(tmp_path), "-o", str(out)]):
        code, report = run(command, capsys)
        assert code == 0 and not errors(report), (command, report)
    assert list(json.loads(out.read_text())["flags"]) == ["checkout_page"]
    assert json.loads(out.read_text())["provenance"]["sources"] == [{"path": "flags.tsk", "sha256": ANY}]
    code, report = run(["check", str(tmp_path / "canary_b.tsk")], capsys)
    assert code == 1 and {c for c, _ in errors(report)} == {"TSK302"}  # a string where a number goes
    # misspelt, it is reported wherever it is found (it might be a flag block)
    (tmp_path / "canary_b.tsk").write_text(
        SEED_POLICY.read_text().replace("progressive_delivery", "progresive_delivery")
    )
    code, report = run(["check", str(tmp_path)], capsys)
    assert code == 1 and "did you mean `progressive_delivery`?" in json.dumps(report)


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ('error_rate = "0.05"', "error_rate = 0.05"),  # a number in a string
        ('automatic = "yes"', "automatic = true"),  # a word for a boolean
        ("automatic = 1", "automatic = true"),
        ('failure_limit = "3"', "failure_limit = 3"),
    ],
)
def test_a_policy_value_is_not_coerced_as_no_other_value_is(
    written: str, kept: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The policy models took "yes" for true and "0.05" for 0.05 where every other block refuses them."""
    seed = SEED_POLICY.read_text().replace("rollback = {\n", "rollback = {\n            failure_limit = 3\n", 1)
    policy = tmp_path / "policy.tsk"
    assert kept in seed
    policy.write_text(seed.replace(kept, written, 1))
    line = line_of(policy.read_text(), written)
    code, report = run(["check", str(policy)], capsys)
    assert code == 1 and errors(report) == {("TSK302", line)}
    code, err = simulate(policy, capsys)
    assert code == 1 and f"policy.tsk:{line}:" in err


def test_a_policy_file_binding_a_flag_compiled_elsewhere_is_not_judged_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], redis_url: str, prefix: str
) -> None:
    """`tusk rollout start --config policy.tsk --snapshot flags.json` binds the policy to flags compiled from
    other files: alone, the policy file has no flags to judge the binding by; with flags, it is judged."""
    seed = SEED_POLICY.read_text()
    bound = seed.replace("    canary_deployments = {\n", '    canary_deployments = {\n        flag = "checkout"\n', 1)
    assert bound != seed
    policy = tmp_path / "policy.tsk"
    policy.write_text(bound)
    assert run(["check", str(policy)], capsys)[0] == 0
    assert run(["compile", str(policy), "-o", str(tmp_path / "p.json")], capsys)[0] == 0
    flags = tmp_path / "flags.tsk"
    flags.write_text("feature_flags = { flags = { checkout = { rollout_percentage = 5 } } }\n")
    snapshot = tmp_path / "flags.json"
    assert run(["compile", str(flags), "-o", str(snapshot)], capsys)[0] == 0
    db = f"sqlite:///{tmp_path / 'rollout.db'}"
    start = ["rollout", "start", "co", "--config", str(policy), "--snapshot", str(snapshot), "--rollout-db", db]
    assert main([*start, "--redis", redis_url, "--prefix", prefix]) == 0
    assert "bound to" in capsys.readouterr().err  # the flag of the other file
    # named with flags that lack it, the binding is judged as under feature_flags
    flags.write_text("feature_flags = { flags = { checkout_v2 = { rollout_percentage = 5 } } }\n")
    code, report = run(["check", str(flags), str(policy)], capsys)
    line = line_of(bound, 'flag = "checkout"')
    assert code == 1 and errors(report) == {("TSK823", line)}
