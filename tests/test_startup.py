"""Start-up (issue 19): what `tusk --help`, `import tusklang` and `tusk check` load, checked in a fresh process.

Editors and pre-commit hooks run `tusk check` on every save, so the commands must not import what they do
not use. These tests assert which modules a fresh interpreter holds (behaviour); the wall times are
benchmarks/bench_startup.py's, never a timed test.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import tusklang.cli
from tusklang.cli import COMMANDS

# Heavy third-party packages, each only for the commands that need it.
HEAVY = ("pydantic", "scipy", "numpy", "starlette", "uvicorn", "jinja2", "psycopg", "redis")

FLAG_FILE = """\
feature_flags = {
    flags = {
        new_checkout = { enabled = true, rollout_percentage = 25, metadata = { owner = "payments" } }
    }
}
"""


def _loaded_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules a fresh interpreter holds after running ``code`` (its own output goes to /dev/null)."""
    probe = (
        "import sys, json, os\n"
        "out = sys.stdout\n"
        "sys.stdout = sys.stderr = open(os.devnull, 'w')\n"
        "try:\n" + "".join(f"    {line}\n" for line in code.splitlines()) + "except SystemExit:\n"
        "    pass\n"
        "out.write(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env or dict(os.environ)
    )
    return set(json.loads(proc.stdout))


def _heavy(modules: set[str]) -> list[str]:
    return sorted({name.split(".")[0] for name in modules} & set(HEAVY))


def test_help_imports_no_command_module_and_nothing_heavy() -> None:
    loaded = _loaded_after("from tusklang.cli import main\nmain(['--help'])")
    commands = sorted(name for name in loaded if name.startswith("tusklang.cli.") and not name[13:].startswith("_"))
    assert commands == []
    assert _heavy(loaded) == []
    assert "lark" not in loaded and "tusklang.syntax.parser" not in loaded


def test_help_lists_every_command_with_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        tusklang.cli.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps the help lines
    for name, help in COMMANDS.items():
        assert name in out
        assert " ".join(help.split()) in out


def test_a_command_imports_only_its_own_module() -> None:
    loaded = _loaded_after("from tusklang.cli import main\nmain(['diff', '--help'])")
    commands = sorted(name for name in loaded if name.startswith("tusklang.cli.") and not name[13:].startswith("_"))
    assert commands == ["tusklang.cli.diff"]


def test_import_tusklang_is_the_facade_only() -> None:
    loaded = _loaded_after("import tusklang")
    assert sorted(name for name in loaded if name.startswith("tusklang")) == ["tusklang", "tusklang._version"]
    assert _heavy(loaded) == [] and "lark" not in loaded


def test_parsing_imports_nothing_heavy() -> None:
    loaded = _loaded_after(
        "import tusklang\nassert tusklang.loads('a = 1\\nb { c = [1, 2] }') == {'a': 1, 'b': {'c': [1, 2]}}"
    )
    assert _heavy(loaded) == []


@pytest.mark.parametrize("command", ["check", "compile"])
def test_check_and_compile_of_a_flag_file_import_only_pydantic(tmp_path: Path, command: str) -> None:
    path = tmp_path / "flags.tsk"
    path.write_text(FLAG_FILE, encoding="utf-8")
    argv = [command, str(path)] + (["-o", str(tmp_path / "flags.json")] if command == "compile" else [])
    # A misspelt flag key too: the schema really ran (exit 1, TSK301), not only the syntax.
    typo = tmp_path / "typo.tsk"
    typo.write_text(FLAG_FILE.replace("rollout_percentage", "rollout_percent"), encoding="utf-8")
    bad = [command, str(typo), *argv[2:]]
    # a cache folder of its own: findings cached by an earlier run would spare the schema (test_check_cache.py)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = f"from tusklang.cli import main\nassert main({argv!r}) == 0\nassert main({bad!r}) == 1"
    loaded = _loaded_after(code, env)
    assert _heavy(loaded) == ["pydantic"]  # the schema and the snapshot are pydantic models
    if command == "check":  # the compiler checks values with snapshot/format.py, never the snapshot's models
        assert "tusklang.snapshot.models" not in loaded and "tusklang.snapshot.validate" not in loaded


def test_the_public_names_resolve() -> None:
    import tusklang

    for name in tusklang.__all__:
        assert getattr(tusklang, name) is not None, name
    assert "parse" in dir(tusklang)
    with pytest.raises(AttributeError):
        tusklang.no_such_name  # noqa: B018


def test_command_table_matches_the_modules() -> None:
    """The static table `tusk --help` prints is what each command module registers, one module a command."""
    modules = sorted(info.name for info in pkgutil.iter_modules(tusklang.cli.__path__) if not info.name.startswith("_"))
    assert sorted(COMMANDS) == modules
    for name in modules:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"tusklang.cli.{name}").register(sub)
        assert [(action.dest, action.help) for action in sub._choices_actions] == [(name, COMMANDS[name])]


def test_unknown_command_names_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        tusklang.cli.main(["chek", "x.tsk"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'chek'" in err and "'check'" in err


# The grammar's LALR tables are cached on disk so a later process need not import Lark.

PARSE_AND_REPORT = (
    "import sys, tusklang\n"
    "data = tusklang.loads('a = 1\\nb { c = [1, \"x\"] }')\n"
    "print(data == {'a': 1, 'b': {'c': [1, 'x']}}, 'lark' in sys.modules)\n"
)


def _run(code: str, env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout


def test_grammar_tables_cached_and_used(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    env.pop("TUSK_NO_CACHE", None)
    assert _run(PARSE_AND_REPORT, env).split() == ["True", "True"]  # compiled with Lark, then cached
    (cached,) = (tmp_path / "tusklang").iterdir()
    assert _run(PARSE_AND_REPORT, env).split() == ["True", "False"]  # from the cache: Lark not imported
    cached.write_bytes(cached.read_bytes()[:100])  # a truncated or foreign file is ignored and rewritten
    assert _run(PARSE_AND_REPORT, env).split() == ["True", "True"]
    assert _run(PARSE_AND_REPORT, env).split() == ["True", "False"]


def test_grammar_cache_can_be_turned_off(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "TUSK_NO_CACHE": "1"}
    assert _run(PARSE_AND_REPORT, env).split() == ["True", "True"]
    assert not (tmp_path / "tusklang").exists()
