"""Every command's errors reach the user the same way: one family, two exit codes, never a traceback."""

from __future__ import annotations

import argparse
import json

import pytest

import tusklang.cli.diff as diff_command
import tusklang.cli.schema as schema_command
from tusklang.cli import main
from tusklang.db.errors import DatabaseURLError
from tusklang.diagnostics import Diagnostic, TuskError


def test_an_input_problem_escaping_a_command_is_rendered_with_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: argparse.Namespace) -> int:
        raise TuskError([Diagnostic("TSK999", "something in the input")])

    monkeypatch.setattr(diff_command, "run", broken)
    assert main(["diff", "old.json", "new.json"]) == 1
    captured = capsys.readouterr()
    assert "error[TSK999]: something in the input" in captured.err and captured.out == ""
    # where the output is JSON, so are the diagnostics (`tusk schema` prints JSON only)
    monkeypatch.setattr(schema_command, "run", broken)
    assert main(["schema"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["diagnostics"][0]["code"] == "TSK999" and captured.err == ""


def test_a_database_problem_escaping_a_command_is_one_line_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: argparse.Namespace) -> int:
        raise DatabaseURLError("unsupported database URL scheme 'foo'")

    monkeypatch.setattr(schema_command, "run", broken)
    assert main(["schema"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "tusk schema: error[TSK250]: unsupported database URL scheme 'foo'"


@pytest.mark.parametrize(
    "argv",
    [
        ["db", "init", "--db", "foo://x"],
        ["experiment", "report", "x", "--db", "foo://x"],
    ],
)
def test_an_unsupported_database_url_is_exit_2_with_its_code(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert "TSK250" in capsys.readouterr().err
