"""The pre-commit hooks (.pre-commit-hooks.yaml) as a user's repository runs them: `pre-commit try-repo`.

try-repo installs the hook repository into a fresh virtualenv with pip, as `pre-commit install` would
for a user, so this checks the hook definitions, the package's installability from its sources and the
commands together. The hook repository is a copy of this project's sources (the files the package is
built from), committed in a temporary git repository: the tests see the working tree, in CI a fresh
clone. pip reads its usual configuration (index, find-links), so an offline mirror serves the install.
Each try-repo run installs anew into its own store (pip: most of its time), so the two runs go at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import IN_CI

ROOT = Path(__file__).resolve().parents[1]
# What `pip install .` of the hook repository reads (pyproject.toml: readme, packages, force-include).
SOURCES = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "grammar", "tusklang")

GOOD = """\
# A flag project that passes `tusk check`, laid out as `tusk fmt` writes it.
feature_flags = {
    storage = {
        type = "memory"
    }
    flags = {
        new_checkout = {
            enabled = true
            rollout_percentage = 25
        }
    }
}
"""

# A plain configuration file beside it: checked for syntax and semantics only (docs/lint.md).
SETTINGS = """\
# app settings

[server]
port = 8080
"""

# TSK301: `server` is not a block of a flag project; and the layout is not tusk fmt's.
BAD = """\
feature_flags = {
  storage = { type = "memory" }
  flags = { new_checkout = { enabled = true } }
}
server {
  port: 8080
}
"""

BAD_FORMATTED = """\
feature_flags = {
    storage = {
        type = "memory"
    }
    flags = {
        new_checkout = {
            enabled = true
        }
    }
}
server = {
    port = 8080
}
"""


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=tusk tests", "-c", "user.email=tests@tusk.invalid", "-c", "commit.gpgsign=false",
         *args],
        cwd=cwd, check=True, capture_output=True,
    )


def _environ(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k != "PRE_COMMIT_HOME"}
    env["PRE_COMMIT_HOME"] = str(home)  # logs; try-repo installs into a temporary store of its own
    env["PRE_COMMIT_COLOR"] = "never"
    return env


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None:
        if IN_CI:
            pytest.fail("git is not on PATH (CI=true: a missing tool is a failure, not a skip)", pytrace=False)
        pytest.skip("git is not on PATH")
    repo = tmp_path_factory.mktemp("hook-repo")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=ignore)
        else:
            shutil.copy2(source, repo / name)
    _git("init", "-q", cwd=repo)
    _git("add", ".", cwd=repo)
    _git("commit", "-q", "-m", "hook repository", cwd=repo)
    return repo


def _user_repo(root: Path, files: dict[str, str]) -> Path:
    repo = root / "user"
    repo.mkdir(parents=True)
    _git("init", "-q", cwd=repo)
    for name, text in files.items():
        (repo / name).write_text(text, encoding="utf-8")
    _git("add", ".", cwd=repo)
    return repo


def _try_repo(hook_repo: Path, user: Path) -> subprocess.Popen[str]:
    # No hook id: every hook of the repository runs, tusk-check and then tusk-fmt.
    return subprocess.Popen(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo), "--all-files", "--verbose"],
        cwd=user, env=_environ(user.parent / "pre-commit-home"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _hook_lines(output: str) -> dict[str, str]:
    """pre-commit's result line per hook: `tusk check....Passed`."""
    return {line.split(".")[0]: line for line in output.splitlines() if line.startswith(("tusk check", "tusk fmt"))}


@pytest.mark.slow
def test_try_repo_passes_on_a_good_file_and_fails_on_tsk301(hook_repo: Path, tmp_path: Path) -> None:
    # Two user repositories, run at once: each try-repo spends its time installing (pip), not in the hooks.
    good = _user_repo(tmp_path / "good", {"flags.tsk": GOOD, "settings.tsk": SETTINGS, "notes.txt": "server {\n"})
    # One flag project per run: pre-commit hands tusk check every staged file at once (one project).
    bad = _user_repo(tmp_path / "bad", {"settings.tsk": SETTINGS, "bad.tsk": BAD})
    runs = [_try_repo(hook_repo, good), _try_repo(hook_repo, bad)]
    try:
        (good_output, _), (bad_output, _) = (run.communicate(timeout=240) for run in runs)
    finally:
        for run in runs:
            run.kill()

    assert runs[0].returncode == 0, good_output
    lines = _hook_lines(good_output)
    assert set(lines) == {"tusk check", "tusk fmt"}, good_output
    assert all(line.endswith("Passed") for line in lines.values()), lines
    assert (good / "flags.tsk").read_text(encoding="utf-8") == GOOD  # tusk fmt left it as it was

    assert runs[1].returncode == 1, bad_output
    lines = _hook_lines(bad_output)
    assert lines["tusk check"].endswith("Failed"), bad_output
    assert "error[TSK301]: unknown top-level block `server`" in bad_output
    assert "bad.tsk:5:1" in bad_output and "settings.tsk:" not in bad_output  # the good file has no finding
    # tusk-fmt rewrites in place; pre-commit then fails the commit because a file changed.
    assert lines["tusk fmt"].endswith("Failed"), bad_output
    assert "files were modified by this hook" in bad_output
    assert (bad / "bad.tsk").read_text(encoding="utf-8") == BAD_FORMATTED
    assert (bad / "settings.tsk").read_text(encoding="utf-8") == SETTINGS
