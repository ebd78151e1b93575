"""`tusk parse --format json` on each construct of issue 15 gives the data docs/syntax.md documents.

The golden JSON beside each fixtures/syntax/valid file was checked by hand against docs/syntax.md;
test_fixtures holds the library (`loads`) to it, these hold the command a user runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tusklang
from tusklang.cli import main

from .fixture_cases import FIXTURES, display_path, syntax_cases


@pytest.mark.parametrize("path", syntax_cases("valid"), ids=display_path)
def test_parse_json_gives_the_documented_data(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Run from fixtures/ with the relative path, so the locations printed match the golden's.
    monkeypatch.chdir(FIXTURES)
    assert main(["parse", display_path(path), "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", syntax_cases("valid"), ids=display_path)
def test_parse_tusk_writes_the_same_data_back(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", str(path), "--format", "tusk"]) == 0
    assert tusklang.loads(capsys.readouterr().out) == tusklang.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", syntax_cases("invalid"), ids=display_path)
def test_parse_of_an_invalid_construct_exits_one_with_its_code(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(FIXTURES)
    golden = path.with_suffix(".txt").read_text(encoding="utf-8")
    first_code = golden.split("[", 1)[1].split("]", 1)[0]
    assert main(["parse", display_path(path), "--format", "json"]) == 1
    assert first_code in capsys.readouterr().err


def test_the_installed_command_prints_runtime_only_values_as_documented() -> None:
    """The table of docs/syntax.md, "Runtime-only values", through the real `tusk` process."""
    source = (
        "method: @request.method\n"
        "stamp: php(time())\n"
        'count: @query("U").where("a", true).count()\n'
        'size: @graphql("{ users { id } }").length\n'
        "hits: @metrics.hits\n"
        "ratio: hits / (hits + 1)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from tusklang.cli import main; sys.exit(main())", "parse", "-"],
        input=source,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(FIXTURES.parent)},
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["method"] == {"$directive": "request.method", "args": None, "location": "<stdin>:1:9"}
    assert data["stamp"] == {"$call": "php", "code": "time()", "location": "<stdin>:2:8"}
    assert data["count"]["$chain"]["$directive"] == "query"
    assert data["count"]["links"] == [{"name": "where", "args": ["a", True]}, {"name": "count", "args": []}]
    assert data["size"]["links"] == [{"name": "length"}]
    assert data["ratio"] == {"$expression": "hits / (hits + 1)", "location": "<stdin>:6:8", "runtime": True}
