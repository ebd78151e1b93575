"""The project loader: one Settings, one dotenv reader, includes that are not opaque, check agreeing with compile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tusklang.cli import main
from tusklang.compiler import compile_files
from tusklang.compiler.check import check_project
from tusklang.diagnostics import Diagnostic, TuskError
from tusklang.project import InputError, Settings, load_project, parse_dotenv, read_env_file

ROOT = Path(__file__).resolve().parent.parent
SEED_DB = f"sqlite:///{ROOT / 'fixtures' / 'db' / 'seed.db'}"
META = 'metadata = { description = "d", owner = "o", approved_by = "x" }'


def flags_file(path: Path, body: str) -> Path:
    path.write_text("feature_flags = {\n    flags = {\n" + body + "\n    }\n}\n")
    return path


def where(d: Diagnostic) -> tuple[str, str, int]:
    assert d.span is not None
    return (d.code, Path(d.span.file).name, d.span.line)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


# --- the one dotenv reader -----------------------------------------------------------------------


def test_dotenv_values_are_pinned() -> None:
    text = (
        "# a comment\n"
        "\n"
        "NOTE=hello # c\n"  # an unquoted value ends at ` #` (the two old readers disagreed: `hello # c`)
        "HASH=a#b\n"  # a # inside a word is kept
        "export EXPORTED=1\n"
        "  SPACED  =  padded value  \n"
        'DOUBLE="two words # not a comment"\n'
        "SINGLE='lit\\n $x'\n"
        'ESCAPES="tab\\tnl\\nq\\"bs\\\\d\\$"\n'
        'KEPT="\\x41 \\u00e9"\n'  # other backslashes stay as written: no way to make non-UTF-8 text
        'QUOTED_THEN_COMMENT="v" # note\n'
        "EMPTY=\n"
        "TWICE=first\n"
        "TWICE=second\n"
    )
    assert parse_dotenv(text, ".env") == {
        "NOTE": "hello",
        "HASH": "a#b",
        "EXPORTED": "1",
        "SPACED": "padded value",
        "DOUBLE": "two words # not a comment",
        "SINGLE": "lit\\n $x",
        "ESCAPES": 'tab\tnl\nq"bs\\d$',
        "KEPT": "\\x41 \\u00e9",
        "QUOTED_THEN_COMMENT": "v",
        "EMPTY": "",
        "TWICE": "second",
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("no equals sign", "expected NAME=value"),
        ("1BAD=x", "expected NAME=value"),
        ('OPEN="never closed', "quote is not closed"),
        ('AFTER="v" junk', "only a # comment may follow"),
    ],
)
def test_dotenv_problems_name_the_file_and_line(line: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_dotenv(f"OK=1\n{line}\n", "app.env")
    assert str(caught.value).startswith("app.env:2: ") and message in str(caught.value)


def test_every_env_file_reader_is_the_one_reader(tmp_path: Path) -> None:
    from tusklang.cli._resolve_options import read_env_file as cli_read

    env = tmp_path / ".env"
    env.write_text("NOTE=hello # c\nQ='x'\n")
    assert cli_read(str(env)) == read_env_file(env) == {"NOTE": "hello", "Q": "x"}
    assert Settings.from_environment(env_file=env, environ={}).env == {"NOTE": "hello", "Q": "x"}


# --- one --env-file policy in every command: the process environment wins over the file -----------


def _dashboard_config(tmp_path: Path) -> Path:
    path = tmp_path / "dash.tsk"
    path.write_text(
        "real_time_feature_dashboard = {\n"
        '    main = { refresh_interval = "10 seconds", widgets = {\n'
        '        shown = { type = "list", query = "SELECT ? AS value", params = [@env(VALUE, "unset")] }\n'
        "    } }\n"
        "}\n"
    )
    return path


def _observe(command: str, tmp_path: Path, env_file: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """What ``command`` made of @env(VALUE) (always one of the words "file", "process", "unset")."""
    values = {"file": 11, "process": 22, "unset": 33}
    if command == "parse":
        src = tmp_path / "p.tsk"
        src.write_text('v = @env(VALUE, "unset")\n')
        code, out, err = run(["parse", str(src), "--resolve", "--env-file", str(env_file)], capsys)
        assert code == 0, err
        return str(json.loads(out)["v"])
    if command in ("compile", "check"):
        src = flags_file(tmp_path / "f.tsk", f"        a = {{ rollout_percentage = @env(PERCENT, 33), {META} }}")
        if command == "check":
            # check proves which value it read by refusing it: only the chosen source's value is out of range
            code, _, err = run(["check", str(src), "--env-file", str(env_file), "--format", "json"], capsys)
            return {0: "valid", 1: "invalid"}[code]
        snapshot = tmp_path / "o.json"
        code, _, err = run(["compile", str(src), "-o", str(snapshot), "--env-file", str(env_file)], capsys)
        assert code == 0, err
        rollout = json.loads(snapshot.read_text())["flags"]["a"]["rules"][0]["rollout"]
        return {v * 1000: k for k, v in values.items()}[rollout["percentage"]]
    if command == "simulate":
        policy = tmp_path / "policy.tsk"
        seed = (ROOT / "fixtures" / "delivery" / "seed_policy.tsk").read_text()
        policy.write_text(seed.replace("canary = 10\n", "canary = @env(CANARY, 10)\n", 1))
        metrics = ROOT / "fixtures" / "delivery" / "healthy.csv"
        code, out, err = run(
            ["rollout", "simulate", str(policy), "--metrics", str(metrics), "--env-file", str(env_file)], capsys
        )
        return {0: "valid", 1: "invalid"}[code]
    assert command == "dashboard"
    page = tmp_path / "d.html"
    args = ["dashboard", str(_dashboard_config(tmp_path)), "--db", SEED_DB, "-o", str(page)]
    code, _, err = run([*args, "--env-file", str(env_file)], capsys)
    assert code == 0, err
    text = page.read_text()
    found = [word for word in ("file", "process", "unset") if f">{word}<" in text]
    assert len(found) == 1, found
    return found[0]


COMMANDS = ["parse", "compile", "check", "simulate", "dashboard"]


@pytest.mark.parametrize("command", COMMANDS)
def test_env_file_is_merged_under_the_process_environment_in_every_command(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / ".env"
    for name in ("VALUE", "PERCENT", "CANARY"):
        monkeypatch.delenv(name, raising=False)
    if command in ("parse", "dashboard"):
        env_file.write_text("VALUE=file\n")
        assert _observe(command, tmp_path, env_file, capsys) == "file"  # the file is read
        monkeypatch.setenv("VALUE", "process")
        assert _observe(command, tmp_path, env_file, capsys) == "process"  # and the environment wins
    elif command == "compile":
        env_file.write_text("PERCENT=11\n")
        assert _observe(command, tmp_path, env_file, capsys) == "file"
        monkeypatch.setenv("PERCENT", "22")
        assert _observe(command, tmp_path, env_file, capsys) == "process"
    elif command == "check":
        env_file.write_text("PERCENT=150\n")  # out of range: check reads the file
        assert _observe(command, tmp_path, env_file, capsys) == "invalid"
        monkeypatch.setenv("PERCENT", "22")  # the environment's valid value wins
        assert _observe(command, tmp_path, env_file, capsys) == "valid"
    else:
        env_file.write_text("CANARY=20\n")  # 20 + 90 is not 100: the policy reads the file
        assert _observe(command, tmp_path, env_file, capsys) == "invalid"
        monkeypatch.setenv("CANARY", "10")
        assert _observe(command, tmp_path, env_file, capsys) == "valid"


def test_settings_read_the_database_and_the_clock_once_from_the_merged_environment(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(f"TUSK_DATABASE_URL={SEED_DB}\nSOURCE_DATE_EPOCH=1706832000\n")
    settings = Settings.from_environment(env_file=env, environ={})
    assert (
        settings.database == SEED_DB and settings.now is not None and settings.now.isoformat().startswith("2024-02-02")
    )
    src = tmp_path / "p.tsk"
    src.write_text(
        "feature_flags = {\n    flags = {\n"
        f"        a = {{ rollout_percentage = 5, {META} }}\n"
        "    }\n}\n"
        'feature_flags_data = { flag_definitions = @query("SELECT flag_name, enabled, rollout_strategy, '
        "rollout_percentage FROM feature_flags WHERE flag_name = 'search_v2'\") }\n"
    )
    result = compile_files([str(src)], settings=settings)
    assert result.snapshot["provenance"]["compiled_at"] == "2024-02-02T00:00:00Z"
    assert sorted(result.snapshot["flags"]) == ["a", "search_v2"]
    unusable = Settings.from_environment(environ={"SOURCE_DATE_EPOCH": "soon"})
    src.write_text("a = 1\nb = @date\n")
    (d,) = load_project([str(src)], unusable, execute=True).diagnostics  # a problem only where @date needs it
    assert where(d) == ("TSK228", "p.tsk", 2)


# --- tusk compile's limits and root options (docs/directives.md said compile had them) --------------


def _query_project(tmp_path: Path, sql: str) -> Path:
    path = tmp_path / "q.tsk"
    path.write_text(f'feature_flags_data = {{ flag_definitions = @query("{sql}") }}\n')
    return path


def test_compile_max_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _query_project(tmp_path, "SELECT flag_name, enabled, rollout_strategy, rollout_percentage FROM feature_flags")
    out = tmp_path / "o.json"
    code, _, err = run(["compile", str(src), "--db", SEED_DB, "-o", str(out), "--max-rows", "3"], capsys)
    assert code == 1 and "TSK232" in err and "too many rows" in err and not out.exists()
    code, _, err = run(["compile", str(src), "--db", SEED_DB, "-o", str(out), "--max-rows", "100"], capsys)
    assert code == 0, err


@pytest.mark.timeout(30)
def test_compile_query_timeout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) AS n FROM c"
    src = tmp_path / "slow.tsk"
    src.write_text(f'feature_flags_data = {{ flag_evaluations = @query("{endless}") }}\n')
    out = tmp_path / "o.json"
    code, _, err = run(["compile", str(src), "--db", SEED_DB, "-o", str(out), "--query-timeout", "0.2"], capsys)
    assert code == 1 and "TSK232" in err and "timeout" in err


@pytest.mark.parametrize(
    ("option", "value"), [("--query-timeout", "0"), ("--query-timeout", "nan"), ("--max-rows", "0")]
)
def test_compile_refuses_limits_that_are_not_positive(
    option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = flags_file(tmp_path / "f.tsk", f"        a = {{ rollout_percentage = 5, {META} }}")
    code, _, err = run(["compile", str(src), "-o", str(tmp_path / "o.json"), option, value], capsys)
    assert code == 2 and err.count("\n") == 1 and option in err


def test_compile_allow_outside_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "shared.tsk").write_text(f"a = {{ rollout_percentage = 5, {META} }}\n")
    project = tmp_path / "project"
    project.mkdir()
    src = project / "main.tsk"
    src.write_text('feature_flags = { flags = @file("../shared.tsk") }\n')
    out = tmp_path / "o.json"
    code, _, err = run(["compile", str(src), "-o", str(out)], capsys)
    assert code == 1 and "TSK241" in err
    code, _, err = run(["check", str(src)], capsys)
    assert code == 1 and "TSK241" in err  # check follows includes under the same rule
    code, _, err = run(["compile", str(src), "-o", str(out), "--allow-outside-root"], capsys)
    assert code == 0, err
    assert json.loads(out.read_text())["flags"]["a"]["enabled"] is True
    code, _, err = run(["compile", str(src), "-o", str(out), "--root", str(tmp_path)], capsys)
    assert code == 0, err  # --root moves the boundary (and the provenance paths)
    assert json.loads(out.read_text())["provenance"]["sources"][0]["path"] == "project/main.tsk"


# --- check agrees with compile ---------------------------------------------------------------------


def test_env_default_passes_check_as_it_compiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SEARCH_ROLLOUT", raising=False)
    src = flags_file(
        tmp_path / "f.tsk", f"        search = {{ rollout_percentage = @env(SEARCH_ROLLOUT, 20), {META} }}"
    )
    code, out, err = run(["check", str(src), "--format", "json"], capsys)
    assert code == 0 and json.loads(out)["diagnostics"] == [], out  # was TSK320 (and a TSK332 note)
    code, _, err = run(["compile", str(src), "-o", str(tmp_path / "o.json")], capsys)
    assert code == 0, err
    monkeypatch.setenv("SEARCH_ROLLOUT", "150")  # set: both read it, and both refuse it
    assert [where(d) for d in check_project([str(src)], Settings.from_environment())] == [("TSK303", "f.tsk", 3)]
    with pytest.raises(TuskError) as caught:
        compile_files([str(src)])
    assert [where(d) for d in caught.value.diagnostics if d.is_error] == [("TSK303", "f.tsk", 3)]


def test_check_skips_what_depends_on_an_unknown_value(tmp_path: Path) -> None:
    rows = "SELECT flag_name, enabled, rollout_strategy, rollout_percentage FROM feature_flags"
    src = tmp_path / "f.tsk"
    src.write_text(
        "feature_flags = {\n    flags = {\n"
        f'        a = {{ rollout_percentage = @query("SELECT 5 AS p"), {META} }}\n'
        f'        b = {{ targeting = {{ user_segments = ["from_db"] }}, rollout_percentage = 5, {META} }}\n'
        "    }\n}\n"
        f'feature_flags_data = {{ user_segments = @query("SELECT 1"), flag_definitions = @query("{rows}") }}\n'
    )
    found = check_project([str(src)], Settings())
    # an unknown rollout_percentage is not "missing" (TSK320) and an unknown segment list does not make
    # `from_db` undefined (TSK330): compile decides both
    assert {d.code for d in found} == {"TSK332"}
    assert [d.span.line for d in found if d.span] == [3, 7, 7]


def test_a_static_compile_that_needs_an_unknown_value_raises_rather_than_return_no_snapshot(tmp_path: Path) -> None:
    """`tusklang.compile(..., static=True)` once returned {"provenance": ...} and nothing else when the
    config validated only with a value it did not run (a required key set by @query)."""
    src = tmp_path / "f.tsk"
    window = '{ start = @query("SELECT 1"), end = "06:00" }'
    flag = f"{{ targeting = {{ time_of_day = {window} }}, rollout_percentage = 5, {META} }}"
    src.write_text(f"feature_flags = {{ flags = {{ a = {flag} }} }}\n")
    assert {d.code for d in check_project([str(src)], Settings())} == {"TSK332"}  # check: not a finding
    with pytest.raises(TuskError) as raised:
        compile_files([str(src)], static=True)
    codes = {d.code for d in raised.value.diagnostics}
    assert "TSK332" in codes and any(d.is_error for d in raised.value.diagnostics)
    src.write_text(src.read_text().replace('@query("SELECT 1")', '"18:00"'))
    assert compile_files([str(src)], static=True, verify=True).snapshot["format"] == "tusklang.snapshot/1"


# --- @file includes are not opaque -----------------------------------------------------------------


def _split(tmp_path: Path, key_path: bool = False) -> Path:
    (tmp_path / "flags").mkdir()
    (tmp_path / "flags" / "search.tsk").write_text(
        ("flags = {\n" if key_path else "")
        + f"new_search = {{\n    enabled = true\n    rollout_percentge = 20\n    {META}\n}}\n"
        + ("}\n" if key_path else "")
    )
    main_file = tmp_path / "main.tsk"
    call = '@file("flags/search.tsk", "flags")' if key_path else '@file("flags/search.tsk")'
    main_file.write_text(f"feature_flags = {{\n    flags = {call}\n}}\n")
    return main_file


@pytest.mark.parametrize("key_path", [False, True], ids=["whole-file", "key-path"])
def test_a_typo_inside_an_included_file_is_at_its_own_line_in_compile_and_check(
    key_path: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _split(tmp_path, key_path)
    line = 4 if key_path else 3
    reports = []
    for args in (
        ["compile", "main.tsk", "-o", "o.json"],
        ["check", "main.tsk"],
        ["check", "main.tsk", "flags/search.tsk"],
    ):
        code, out, _ = run([*args, "--format", "json"], capsys)
        assert code == 1, args
        (d,) = [d for d in json.loads(out)["diagnostics"] if d["severity"] == "error"]
        assert (d["code"], d["span"]["file"], d["span"]["line"]) == ("TSK301", "flags/search.tsk", line)
        assert [(r["message"], r["span"]["file"], r["span"]["line"]) for r in d["related"]] == [
            ("included from here", "main.tsk", 2)
        ]
        reports.append(d)
    assert reports[0] == reports[1] == reports[2]  # the same diagnostic from every front door


def test_include_chain_lists_every_call_innermost_first(tmp_path: Path) -> None:
    (tmp_path / "c.tsk").write_text("x = $nope\ny = $nope_too\n")
    (tmp_path / "b.tsk").write_text('inner = @file("c.tsk")\n')
    (tmp_path / "a.tsk").write_text('\nouter = @file("b.tsk")\n')
    project = load_project([str(tmp_path / "a.tsk")], Settings(), execute=False)
    # every problem of the included file, not only the first
    assert [where(d) for d in project.diagnostics] == [("TSK200", "c.tsk", 1), ("TSK200", "c.tsk", 2)]
    chain = [(Path(r.span.file).name, r.span.line) for r in project.diagnostics[0].related]
    assert chain == [("b.tsk", 1), ("a.tsk", 2)]
    assert [(Path(f.path).name, len(f.included_from)) for f in project.files] == [
        ("a.tsk", 0),
        ("b.tsk", 1),
        ("c.tsk", 2),
    ]


def test_overlays_replace_files_asked_for_and_included(tmp_path: Path) -> None:
    main_file = _split(tmp_path)
    included = tmp_path / "flags" / "search.tsk"
    fixed = included.read_text().replace("rollout_percentge", "rollout_percentage")
    assert check_project([str(main_file)], Settings(), overlays={str(included): fixed}) == []
    broken = main_file.read_text().replace("feature_flags", "feature_flag")
    found = check_project([str(main_file)], Settings(), overlays={str(main_file): broken, str(included): fixed})
    assert [(d.code, d.hint) for d in found] == [("TSK301", "did you mean `feature_flags`?")]  # not "general config"


def test_rollout_simulate_resolves_env_in_a_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = (ROOT / "fixtures" / "delivery" / "seed_policy.tsk").read_text()
    policy = tmp_path / "policy.tsk"
    policy.write_text(seed.replace("error_rate = 0.05", "error_rate = @env(CANARY_ERROR_RATE, 0.05)", 1))
    metrics = str(ROOT / "fixtures" / "delivery" / "healthy.csv")
    monkeypatch.delenv("CANARY_ERROR_RATE", raising=False)
    code, out, err = run(["rollout", "simulate", str(policy), "--metrics", metrics, "--format", "json"], capsys)
    assert code == 0, err  # was an unpositioned TSK800: the @env call reached the policy model
    assert json.loads(out)["final"]["status"] == "promoted"
    monkeypatch.setenv("CANARY_ERROR_RATE", "0.0001")  # the healthy history breaches this threshold
    code, out, err = run(["rollout", "simulate", str(policy), "--metrics", metrics, "--format", "json"], capsys)
    assert code == 0 and json.loads(out)["final"]["status"] != "promoted"


def test_policy_problems_are_at_their_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = (ROOT / "fixtures" / "delivery" / "seed_policy.tsk").read_text()
    policy = tmp_path / "policy.tsk"
    policy.write_text(seed.replace('evaluation_period = "5 minutes"', 'evaluation_period = "5 mins"', 1))
    metrics = str(ROOT / "fixtures" / "delivery" / "healthy.csv")
    code, _, err = run(["rollout", "simulate", str(policy), "--metrics", metrics], capsys)
    line = 1 + seed.split("\n").index('            evaluation_period = "5 minutes"')
    assert code == 1 and "TSK800" in err and f"policy.tsk:{line}:" in err and "not a duration" in err


def test_provenance_names_included_files_and_their_queries(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "rows.tsk").write_text(
        'flag_definitions = @query("SELECT flag_name, enabled, rollout_strategy, rollout_percentage '
        "FROM feature_flags WHERE flag_name = 'search_v2'\")\n"
    )
    (tmp_path / "main.tsk").write_text('feature_flags_data = @file("sub/rows.tsk")\n')
    provenance = compile_files([str(tmp_path / "main.tsk")], database=SEED_DB).snapshot["provenance"]
    # the snapshot depends on every file read: each is listed with its hash, relative to the root
    assert [s["path"] for s in provenance["sources"]] == ["main.tsk", "sub/rows.tsk"]
    assert [q["location"] for q in provenance["queries"]] == ["sub/rows.tsk:1:20"]
