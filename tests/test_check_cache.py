"""`tusk check`'s findings cache (tusklang/compiler/check_cache.py): the same output, from less work.

Every test runs `tusk check` in fresh processes with a cache folder of its own, as an editor or a
pre-commit hook would run it twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# An error in an included file (its findings have spans, hints and the include chain); fixed, a warning.
MAIN = """\
feature_flags = {
    flags = {
        new_checkout = {
            enabled = true
            rollout_percentage = @env(CHECKOUT_ROLLOUT, 25)
            targeting = { regions = [] }
            metadata = { owner = "payments" }
        }
    }
    targeting = @file("targeting.tsk")
}
"""
TARGETING = 'user_segments = { beta = { criteria = { plan = "pro" }, match = "sometimes" } }\n'
# A lint age rule: what it finds depends on the clock.
AGED = """\
feature_flags = { flags = { old = { rollout_percentage = 100, metadata = { created_at = "2020-01-01" } } } }
management_config = { flag_lifecycle = { cleanup_threshold = "30 days" } }
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / "targeting.tsk").write_text(TARGETING, encoding="utf-8")
    main = tmp_path / "flags.tsk"
    main.write_text(MAIN, encoding="utf-8")
    return main


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), **extra}
    env.pop("TUSK_NO_CACHE", None)
    env.pop("CHECKOUT_ROLLOUT", None)
    env.update(extra)
    return env


def _check(args: list[str], env: dict[str, str], probe: bool = False) -> tuple[int, str, str]:
    """`tusk check ARGS`: exit code, stdout, stderr; with ``probe``, stdout is whether pydantic was loaded."""
    code = "import sys\nfrom tusklang.cli import main\nstatus = main(sys.argv[1:])\n"
    if probe:
        code += "print('pydantic' in sys.modules, 'tusklang.schema' in sys.modules, file=sys.__stderr__)\n"
    code += "sys.exit(status)\n"
    proc = subprocess.run([sys.executable, "-c", code, "check", *args], capture_output=True, text=True, env=env)
    return proc.returncode, proc.stdout, proc.stderr


def _entries(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "cache" / "tusklang" / "check"
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_second_check_says_the_same_without_pydantic(tmp_path: Path, fmt: str) -> None:
    main = _project(tmp_path)
    env = _env(tmp_path)
    fresh = _check([str(main), "--format", fmt], {**env, "TUSK_NO_CACHE": "1"})
    assert fresh[0] == 1 and "TSK304" in fresh[1] + fresh[2] and "targeting.tsk" in fresh[1] + fresh[2]
    first = _check([str(main), "--format", fmt], env, probe=True)
    assert len(_entries(tmp_path)) == 1
    second = _check([str(main), "--format", fmt], env, probe=True)
    assert first[:2] == second[:2] == fresh[:2]
    assert first[2].splitlines()[:-1] == second[2].splitlines()[:-1] == fresh[2].splitlines()
    assert first[2].splitlines()[-1] == "True True"  # validated, and stored
    assert second[2].splitlines()[-1] == "False False"  # from the cache: no schema, no pydantic


def test_what_the_check_read_is_the_key(tmp_path: Path) -> None:
    main = _project(tmp_path)
    env = _env(tmp_path)
    base = _check([str(main)], env)
    assert "TSK403" not in base[2]
    # a value @env reads, an included file, an option: each is another entry with its own findings
    out_of_range = _check([str(main)], _env(tmp_path, CHECKOUT_ROLLOUT="250"))
    assert "rollout_percentage" in out_of_range[2] and out_of_range[2] != base[2]
    (tmp_path / "targeting.tsk").write_text(TARGETING.replace("sometimes", "all"), encoding="utf-8")
    fixed = _check([str(main)], env)
    assert "TSK304" in base[2] and "TSK304" not in fixed[2] and "TSK406" in fixed[2]
    ignored = _check([str(main), "--ignore", "TSK406"], env)
    assert "TSK406" not in ignored[2]
    assert len(_entries(tmp_path)) == 4
    assert _check([str(main), "--ignore", "TSK406"], env) == ignored


def test_clock_dependent_findings_are_kept_only_under_a_fixed_clock(tmp_path: Path) -> None:
    aged = tmp_path / "aged.tsk"
    aged.write_text(AGED, encoding="utf-8")
    env = _env(tmp_path)
    assert "TSK404" in _check([str(aged)], env)[2]
    assert _entries(tmp_path) == []
    early = _check([str(aged), "--now", "2020-01-10T00:00:00"], env)
    assert "TSK40" not in early[2] and len(_entries(tmp_path)) == 1
    assert _check([str(aged), "--now", "2020-01-10T00:00:00"], env) == early
    assert "TSK404" in _check([str(aged), "--now", "2021-01-10T00:00:00"], env)[2]


def test_no_cache_and_a_damaged_entry(tmp_path: Path) -> None:
    main = _project(tmp_path)
    env = _env(tmp_path)
    assert _check([str(main)], {**env, "TUSK_NO_CACHE": "1"})[0] == 1
    assert _entries(tmp_path) == []
    first = _check([str(main)], env)
    (entry,) = _entries(tmp_path)
    entry.write_bytes(entry.read_bytes()[:40])  # truncated: ignored, checked afresh and rewritten
    assert _check([str(main)], env) == first
    assert _check([str(main)], env) == first
    assert len(entry.read_bytes()) > 40
