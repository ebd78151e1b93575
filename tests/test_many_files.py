"""Many files, one project (issue 16, docs/config.md): flags, segments, environments and experiments
merged across files and directories, each defined in one place, every position in its own file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tusklang.cli import main
from tusklang.compiler import compile_files
from tusklang.compiler.check import check_project
from tusklang.diagnostics import TuskError
from tusklang.project import InputError, Settings, load_project

ROOT = Path(__file__).resolve().parent.parent
MANY = ROOT / "fixtures" / "typed" / "many"
DUPLICATE = ROOT / "fixtures" / "typed" / "duplicate"


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(ROOT)
    yield


def test_a_directory_is_one_project() -> None:
    result = compile_files(["fixtures/typed/many"], static=True, verify=True)
    snap = result.snapshot
    assert sorted(snap["flags"]) == ["base_theme", "checkout_v2", "search_v3"]
    assert sorted(snap["experiments"]) == ["checkout_copy"]
    assert sorted(snap["segments"]) == ["beta_users", "heavy_searchers"]  # segments from two files
    # each flag says where it is defined: the included fragment too
    origins = {key: flag["metadata"]["source"] for key, flag in snap["flags"].items()}
    assert origins == {
        "base_theme": "main.tsk:11",
        "checkout_v2": "teams/checkout.tsk:4",
        "search_v3": "teams/search_flags.tsk:1",
    }
    # a flag of one file requires a flag of another
    assert snap["flags"]["checkout_v2"]["prerequisites"] == [{"flag": "search_v3", "variants": ["on"]}]
    # provenance: the files the flags come from (the fragment once, as included), not settings.tsk
    assert [s["path"] for s in snap["provenance"]["sources"]] == [
        "main.tsk",
        "teams/checkout.tsk",
        "teams/search.tsk",
        "teams/search_flags.tsk",
    ]


def test_a_directory_skips_hidden_files_and_needs_a_tsk_file(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "broken.tsk").write_text("x = {\n")
    (tmp_path / "flags.tsk").write_text("feature_flags = { flags = { a = { rollout_percentage = 5 } } }\n")
    assert sorted(compile_files([str(tmp_path)], static=True).snapshot["flags"]) == ["a"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"a directory without \.tsk files"):
        load_project([str(empty)], Settings(), execute=False)


def test_a_plain_file_in_the_directory_is_checked_not_compiled(tmp_path: Path) -> None:
    (tmp_path / "flags.tsk").write_text("feature_flags = { flags = { a = { rollout_percentage = 5 } } }\n")
    (tmp_path / "app.tsk").write_text("port = 8080\nname = \n")  # a syntax error in a plain file
    found = check_project([str(tmp_path)], Settings())
    assert [(d.code, Path(d.span.file).name) for d in found if d.span] == [("TSK100", "app.tsk")]
    (tmp_path / "app.tsk").write_text("port = 8080\n")
    assert check_project([str(tmp_path)], Settings()) == []
    assert sorted(compile_files([str(tmp_path)], static=True).snapshot["flags"]) == ["a"]
    # named on the command line, the same file is part of the project: its keys are blocks to validate
    with pytest.raises(TuskError) as info:
        compile_files([str(tmp_path / "flags.tsk"), str(tmp_path / "app.tsk")], static=True)
    assert [d.code for d in info.value.diagnostics if d.is_error] == ["TSK301"]


def test_the_same_flag_in_two_files_names_both_places() -> None:
    with pytest.raises(TuskError) as info:
        compile_files(["fixtures/typed/duplicate"], static=True)
    errors = [d for d in info.value.diagnostics if d.is_error]
    first = errors[0]
    assert (first.code, first.message) == ("TSK318", "flag `checkout_v2` is defined in two files")
    assert first.span is not None and (first.span.file, first.span.line) == ("fixtures/typed/duplicate/b.tsk", 4)
    assert [(r.span.file, r.span.line, r.message) for r in first.related] == [
        ("fixtures/typed/duplicate/a.tsk", 4, "first defined here")
    ]
    # the rest of the second file still counts: its other flag is checked (and misspells a flag)
    assert [d.code for d in errors[1:]] == ["TSK343"]
    assert errors[1].hint == "did you mean `checkout_v2`?"


def test_any_other_key_in_two_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.tsk").write_text('feature_flags = { storage = { type = "redis" } }\n')
    (tmp_path / "b.tsk").write_text('feature_flags = { storage = { type = "memory" } }\n')
    (tmp_path / "c.tsk").write_text("security_config = { }\n")
    (tmp_path / "d.tsk").write_text("security_config = { }\n")
    with pytest.raises(TuskError) as info:
        compile_files([str(tmp_path)], static=True)
    messages = [d.message for d in info.value.diagnostics if d.code == "TSK318"]
    assert messages == [
        "`feature_flags.storage` is defined in two files",
        "`security_config` is defined in two files",
    ]


def test_segments_environments_and_experiments_merge_too(tmp_path: Path) -> None:
    (tmp_path / "a.tsk").write_text(
        "feature_flags = { targeting = {\n"
        "  environments = { prod = { } }, user_segments = { s1 = { criteria = { x = 1 } } } } }\n"
        "ab_testing_config = { experiments = { e1 = { variants = { control = 50, b = 50 } } } }\n"
    )
    (tmp_path / "b.tsk").write_text(
        "feature_flags = { targeting = {\n"
        "  environments = { dev = { } }, user_segments = { s2 = { criteria = { y = 2 } } } },\n"
        "  flags = { f = { rollout_percentage = 5,\n"
        '    targeting = { environments = ["dev", "prod"], user_segments = ["s1", "s2"] } } } }\n'
        "ab_testing_config = { experiments = { e2 = { variants = { control = 50, b = 50 } } } }\n"
    )
    snap = compile_files([str(tmp_path)], static=True, verify=True).snapshot
    assert sorted(snap["segments"]) == ["s1", "s2"] and sorted(snap["experiments"]) == ["e1", "e2"]
    assert snap["external_segments"] == []  # both segments are defined, in different files


def test_a_problem_is_reported_in_its_own_file_and_an_editor_buffer_counts() -> None:
    """The source map reaches every file: the editor's unsaved text of one file of a directory project."""
    checkout = MANY / "teams" / "checkout.tsk"
    text = checkout.read_text(encoding="utf-8").replace("rollout_percentage = 25", "rollout_percentage = 250")
    found = check_project(["fixtures/typed/many"], Settings(), overlays={str(checkout): text})
    assert [(d.code, Path(d.span.file).as_posix(), d.span.line) for d in found if d.span] == [
        ("TSK303", "fixtures/typed/many/teams/checkout.tsk", 5)
    ]
    # and a problem inside the included fragment is reported there, with the include chain
    fragment = MANY / "teams" / "search_flags.tsk"
    broken = fragment.read_text(encoding="utf-8").replace("rollout_percentage", "rollout_percantage")
    found = check_project(["fixtures/typed/many"], Settings(), overlays={str(fragment): broken})
    assert [(d.code, Path(d.span.file).name, d.span.line) for d in found if d.span] == [
        ("TSK301", "search_flags.tsk", 2)
    ]
    assert found[0].hint == "did you mean `rollout_percentage`?"
    assert any("search.tsk" in r.span.file for r in found[0].related)


def test_cli_compile_and_check_take_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "flags.json"
    assert main(["compile", "fixtures/typed/many", "-o", str(out)]) == 0
    assert sorted(json.loads(out.read_text())["flags"]) == ["base_theme", "checkout_v2", "search_v3"]
    assert main(["check", "fixtures/typed/many"]) == 0
    assert main(["check", "fixtures/typed/duplicate"]) == 1
    capsys.readouterr()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["check", str(empty)]) == 2
    assert capsys.readouterr().err.strip() == f"tusk check: {empty}: a directory without .tsk files"
