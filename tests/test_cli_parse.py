"""`tusk parse` and `tusk check`: outputs, exit codes (0 clean, 1 problems, 2 usage/IO)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tusklang.cli import main

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "fixtures" / "valid" / "seed"


def test_parse_prints_json_with_inert_directives(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", str(SEED / "feature_flags.tsk")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["feature_flags"]["storage"]["connection"]["$directive"] == "env"
    assert data["feature_flags"]["storage"]["connection"]["args"] == [{"$identifier": "REDIS_URL"}]


def test_parse_tusk_format_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    import tusklang

    assert main(["parse", str(SEED / "ab_testing_config.tsk"), "--format", "tusk"]) == 0
    text = capsys.readouterr().out
    assert tusklang.loads(text) == tusklang.loads((SEED / "ab_testing_config.tsk").read_text())


def test_check_clean_project_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    project = ROOT / "fixtures" / "seed"
    assert main(["check", str(project / "project.tsk")]) == 0


def test_check_of_the_unmodified_seed_names_what_it_leaves_undefined(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(p) for p in sorted(SEED.glob("*.tsk"))]
    assert main(["check", *files, "--format", "json"]) == 1
    errors = [d for d in json.loads(capsys.readouterr().out)["diagnostics"] if d["severity"] == "error"]
    assert sorted(d["message"] for d in errors) == [
        "experiment `checkout_optimization` has a duration but no start",
        "gradual rollout of `ai_recommendations` has no start: day_N cannot be turned into a date",
    ]


def test_check_reports_every_problem_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.tsk"
    bad.write_text("a = 1\na = 2\nb = { x = 1\n x = 2 }\n")
    assert main(["check", str(bad), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == 2
    first = report["diagnostics"][0]
    assert first["code"] == "TSK120" and first["span"]["line"] == 2 and first["span"]["column"] == 1
    assert first["related"][0]["span"]["line"] == 1


def test_check_text_output_is_compiler_style(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.tsk"
    bad.write_text("port 8080\n")
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"--> {bad}:1:1" in err and "1 | port 8080" in err and "^^^^" in err and "= help:" in err


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.tsk", "no such file"),
        (lambda d: d, "a directory without .tsk files"),  # a directory is a project: here an empty one
        (lambda d: (d / "latin1.tsk").write_bytes(b'name = "caf\xe9"\n') and d / "latin1.tsk", "not UTF-8"),
    ],
)
def test_io_problems_are_one_line_and_exit_two(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "tusklang.cli", "check", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_help_shows_an_example() -> None:
    proc = subprocess.run([sys.executable, "-m", "tusklang.cli", "check", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "example:" in proc.stdout


def test_no_command_is_a_usage_error() -> None:
    assert main([]) == 2


HOSTILE = {
    "nested 100,000 deep": ("k = " + "[" * 100_000 + "]" * 100_000 + "\n", "TSK112"),
    "a 1,000-term sum": ("k = " + " + ".join(["1"] * 1000) + "\n", "TSK112"),
    "a 5,000-digit integer": ("k = " + "7" * 5000 + "\n", "TSK106"),
    "a lone CR": ("a = 1\rb = 2\r", "TSK107"),
}


@pytest.mark.parametrize("command", [["parse"], ["parse", "--format", "tusk"], ["check"], ["fmt", "--check"]])
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_files_are_one_diagnostic_and_exit_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], name: str
) -> None:
    text, code = HOSTILE[name]
    path = tmp_path / "hostile.tsk"
    path.write_bytes(text.encode("utf-8"))  # bytes: a text-mode write would turn a lone CR into a newline
    assert main([command[0], str(path), *command[1:]]) == 1
    err = capsys.readouterr().err
    assert f"error[{code}]" in err and "Traceback" not in err


def test_a_too_deep_file_is_a_diagnostic_in_a_fresh_interpreter(tmp_path: Path) -> None:
    path = tmp_path / "deep.tsk"
    path.write_text("k = " + "{ k = " * 5000 + "1" + " }" * 5000 + "\n")
    proc = subprocess.run([sys.executable, "-m", "tusklang.cli", "parse", str(path)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "error[TSK112]: nested more than 128 levels deep" in proc.stderr and "Traceback" not in proc.stderr
