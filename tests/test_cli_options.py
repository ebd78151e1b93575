"""CLI loose ends: --version, diff --exit-code, usage of the right command, JSON errors, busy ports, option names."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tusklang import __version__
from tusklang.cli import main
from tusklang.compiler import compile_files

ROOT = Path(__file__).resolve().parent.parent
SEED_DB = ROOT / "fixtures" / "db" / "seed.db"


def tusk(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tusklang.cli", *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env
    )


def test_version() -> None:
    done = tusk("--version")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"tusk {__version__}\n", "")


# --- tusk diff --exit-code ---------------------------------------------------------------------------


def _snapshot(tmp_path: Path, name: str, flags: str) -> Path:
    src = tmp_path / f"{name}.tsk"
    src.write_text("feature_flags = {\n flags = {\n" + flags + "\n }\n}\n")
    out = tmp_path / f"{name}.json"
    out.write_text(compile_files([str(src)], static=True).text)
    return out


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_diff_exit_code_says_whether_the_snapshots_differ(
    fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _snapshot(tmp_path, "old", "  a = { rollout_percentage = 25 }")
    new = _snapshot(tmp_path, "new", "  a = { rollout_percentage = 50 }")
    assert main(["diff", str(old), str(new), "--format", fmt]) == 0  # without it: a report, exit 0
    assert main(["diff", str(old), str(new), "--format", fmt, "--exit-code"]) == 1
    assert main(["diff", str(old), str(old), "--format", fmt, "--exit-code"]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        reports = [json.loads(part) for part in out.replace("}\n{", "}\n\x00{").split("\x00")]
        assert [r["changed"] for r in reports] == [True, True, False]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", "invalid snapshot: $: snapshot must be a JSON object, not an array"),
        ('{"flags": 3}', "invalid snapshot: $.format"),
        ("[" * 100_000 + "]" * 100_000, "not JSON (JSON nested deeper than 128 levels)"),
    ],
)
def test_diff_of_something_that_is_not_a_snapshot_is_one_line(
    content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(["diff", str(bad), str(bad)]) == 2  # was a traceback (AttributeError, TypeError, RecursionError)
    err = capsys.readouterr().err
    assert err.startswith(f"tusk diff: {bad}: {message}") and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["eval", "{path}", "a"], ["serve", "{path}", "--port", "1"]])
def test_a_source_given_for_a_snapshot_says_to_compile_it(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "flags.tsk"
    source.write_text("feature_flags = {\n flags = {\n  a = { rollout_percentage = 25 }\n }\n}\n")
    assert main([part.format(path=source) for part in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid snapshot" in err
    assert f"compile it first (tusk compile {source} -o flags.json)" in err


# --- argument errors name the command they belong to -------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "usage", "error"),
    [
        (
            ["compile", "--bogus", "x.tsk", "-o", "y"],
            "usage: tusk compile ",
            "tusk compile: error: unrecognized arguments: --bogus",
        ),
        (["compile", "x.tsk", "-o", "y", "--verfy"], "usage: tusk compile ", "(did you mean --verify?)"),
        (["flags", "show", "--bogus"], "usage: tusk flags show ", "tusk flags show: error: unrecognized arguments"),
        (["rollout", "status", "x", "--lsat", "3"], "usage: tusk rollout status ", "(did you mean --last?)"),
        (["--bogus"], "usage: tusk [-h] [--version]", "tusk: error: unrecognized arguments: --bogus"),
    ],
)
def test_an_unknown_option_prints_the_usage_of_its_command(
    argv: list[str], usage: str, error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(usage)
    assert error in captured.err.splitlines()[-1]


# --- --format json reaches usage and I/O errors ------------------------------------------------------


def _error(out: str) -> dict[str, object]:
    data = json.loads(out)
    assert set(data) == {"error"}
    return data["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("argv", "kind", "code", "message"),
    [
        (["check", "{missing}", "--format", "json"], "io", None, "{missing}: no such file"),
        (["compile", "{missing}", "-o", "{out}", "--format", "json"], "io", None, "{missing}: no such file"),
        (["parse", "{missing}", "--format", "json"], "io", None, "{missing}: no such file"),
        (["eval", "{missing}", "f", "--format", "json"], "io", None, "{missing}: no such file"),
        (["diff", "{missing}", "{missing}", "--format", "json"], "io", None, "{missing}: no such file"),
        (["db", "init", "--events-db", "foo://x", "--format", "json"], "io", "TSK250", "error[TSK250]"),
        (["experiment", "report", "x", "--events-db", "foo://x", "--format", "json"], "io", "TSK250", "TSK250"),
        (["check", "{project}", "--error", "TSK999", "--format", "json"], "usage", None, "--error TSK999"),
        (["stats", "srm", "--observed", "1", "--weights", "1", "--format", "json"], "usage", None, "--weights"),
    ],
)
def test_with_format_json_an_io_or_usage_error_is_json_on_stdout(
    argv: list[str], kind: str, code: str | None, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "p.tsk"
    project.write_text("a = 1\n")
    names = {"missing": str(tmp_path / "missing.tsk"), "out": str(tmp_path / "o.json"), "project": str(project)}
    assert main([a.format(**names) for a in argv]) == 2
    captured = capsys.readouterr()
    error = _error(captured.out)
    assert (error["kind"], error["code"]) == (kind, code)
    assert message.format(**names) in str(error["message"])
    # and one line for people, on stderr, named after the command (`tusk db init: ...`)
    command = " ".join(
        word
        for word in argv[:2]
        if word in {"check", "compile", "parse", "eval", "diff", "db", "init", "experiment", "report", "stats", "srm"}
    )
    assert captured.err.startswith(f"tusk {command}: ") and captured.err.count("\n") == 1


def test_with_format_json_an_argument_error_is_json_too(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["check", "x.tsk", "--format", "json", "--bogus"])
    captured = capsys.readouterr()
    assert _error(captured.out) == {"kind": "usage", "code": None, "message": "unrecognized arguments: --bogus"}
    assert captured.err.startswith("usage: tusk check ")


def test_without_format_json_stdout_stays_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "missing.tsk")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == f"tusk check: {tmp_path / 'missing.tsk'}: no such file\n"


# --- a port in use -----------------------------------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_serve_on_a_busy_port_is_one_line_and_exit_2(busy_port: int, tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path, "flags", "  a = { rollout_percentage = 25 }")
    done = tusk("serve", str(snapshot), "--port", str(busy_port))
    assert done.returncode == 2  # uvicorn's own exit code was 3
    assert done.stderr == f"tusk serve: cannot listen on 127.0.0.1:{busy_port}: address already in use\n"


def test_dashboard_serve_on_a_busy_port_is_one_line_and_exit_2(busy_port: int) -> None:
    config = ROOT / "fixtures" / "dashboard" / "dashboard.tsk"
    done = tusk("dashboard", str(config), "--db", f"sqlite:///{SEED_DB}", "--serve", "--port", str(busy_port))
    assert done.returncode == 2
    assert done.stderr == f"tusk dashboard: cannot listen on 127.0.0.1:{busy_port}: address already in use\n"


# --- one name per concept: --db (the @query database), --events-db, --rollout-db, --now ---------------


def test_db_commands_name_the_event_store_events_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    assert main(["db", "init", "--events-db", url]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["db", "init"]) == 2
    assert capsys.readouterr().err == (
        "tusk db init: --events-db URL is required (the event store: sqlite:///path.db or postgresql://...)\n"
    )
    # the old name still works, and says what to use instead
    assert main(["db", "purge", "--db", url, "--retention", "90d"]) == 0
    err = capsys.readouterr().err
    assert err == (
        "tusk db purge: warning: --db is deprecated, use --events-db "
        "(the old name will be removed in a later release)\n"
    )


def test_experiment_report_takes_events_db_and_the_old_name_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    assert main(["db", "init", "--events-db", url]) == 0
    capsys.readouterr()
    for option, warned in (("--events-db", False), ("--db", True)):
        assert main(["experiment", "report", "exp", option, url, "--metric", "purchase"]) == 1  # no exposures
        err = capsys.readouterr().err
        assert ("--db is deprecated, use --events-db" in err) is warned
        assert "TSK945" in err


def test_rollout_takes_rollout_db_and_now(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    sample = ["--target", "canary", "--metric", "error_rate", "--value", "0.5", "--format", "json"]
    assert main(["rollout", "record", "--rollout-db", url, *sample, "--now", "2024-05-01T12:00:00Z"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert json.loads(captured.out)["recorded"]["time"] == "2024-05-01T12:00:00+00:00"
    assert main(["rollout", "record", "--db", url, *sample, "--time", "2024-05-01T12:01:00Z"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["recorded"]["time"] == "2024-05-01T12:01:00+00:00"
    assert captured.err.splitlines() == [
        "tusk rollout record: warning: --db is deprecated, use --rollout-db "
        "(the old name will be removed in a later release)",
        "tusk rollout record: warning: --time is deprecated, use --now "
        "(the old name will be removed in a later release)",
    ]
    assert main(["rollout", "record", "--rollout-db", url, *sample, "--time", "noon"]) == 2
    assert "--now 'noon' is not an ISO 8601 time" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "shown", "hidden"),
    [
        (["db", "init"], "--events-db URL", "--db"),
        (["experiment", "report"], "--events-db URL", "--db"),
        (["rollout", "status"], "--rollout-db URL", "--db"),
        (["rollout", "record"], "--now NOW", "--time"),
    ],
)
def test_help_shows_the_new_name_only(
    argv: list[str], shown: str, hidden: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    out = capsys.readouterr().out
    assert shown in out
    assert f"{hidden} " not in out.replace(shown, "")


# --- fmt and schema take --format json like every other reporting command ----------------------------


def test_fmt_format_json_reports_each_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ugly, tidy, broken = tmp_path / "ugly.tsk", tmp_path / "tidy.tsk", tmp_path / "broken.tsk"
    ugly.write_text("a=1\n")
    tidy.write_text("a = 1\n")
    broken.write_text("a = {\n")
    assert main(["fmt", "--check", str(ugly), str(tidy), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report == {
        "files": [
            {"path": str(ugly), "parsed": True, "changed": True},
            {"path": str(tidy), "parsed": True, "changed": False},
        ],
        "diagnostics": [],
    }
    assert ugly.read_text() == "a=1\n"  # --check changes nothing
    assert main(["fmt", str(ugly), str(broken), "--format", "json"]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["files"] == [
        {"path": str(ugly), "parsed": True, "changed": True, "written": True},
        {"path": str(broken), "parsed": False},
    ]
    assert [d["code"] for d in report["diagnostics"]] == ["TSK103"]
    assert captured.err == ""
    assert ugly.read_text() == "a = 1\n"


def test_schema_accepts_format_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["$schema"].startswith("https://json-schema.org/")


def test_rollout_and_experiment_problems_are_json_with_format_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text('{"progressive_delivery": {"canary_deployments": {"enabled": true, "steps": "many"}}}')
    metrics = ROOT / "fixtures" / "delivery" / "healthy.csv"
    assert main(["rollout", "simulate", str(policy), "--metrics", str(metrics), "--format", "json"]) == 1
    captured = capsys.readouterr()
    assert {d["code"] for d in json.loads(captured.out)["diagnostics"]} == {"TSK800"}
    assert captured.err == ""

    url = f"sqlite:///{tmp_path / 'events.db'}"
    assert main(["db", "init", "--events-db", url]) == 0
    capsys.readouterr()
    argv = ["experiment", "report", "exp", "--events-db", url, "--metric", "purchase", "--format", "json"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert [d["code"] for d in json.loads(captured.out)["diagnostics"]] == ["TSK945"]
