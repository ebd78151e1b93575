"""The VS Code extension (editors/vscode/): its grammar and client tests under Node, and the `.vsix`.

The Node tests (editors/vscode/test/) tokenize with vscode-textmate and vscode-oniguruma, as VS Code
does; here they also get the places the parser finds in every fixture it accepts
(tests/highlight_oracle.py), so each key, section, string, interpolation, number, range, constant,
variable, directive, foreign call and comment must start with a token of its scope. The packages are
pinned in editors/vscode/package-lock.json (`npm ci --prefix editors/vscode`, which .ci/run does);
without Node.js or them the tests skip outside CI and fail under CI=true.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from .conftest import IN_CI
from .highlight_oracle import write_expectations

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = ROOT / "editors" / "vscode"


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    problem = None
    if found is None:
        problem = "Node.js (`node`) is not on PATH"
    elif not (EXTENSION / "node_modules" / "vscode-textmate").is_dir():
        problem = "the extension's packages are not installed: run `npm ci --prefix editors/vscode`"
    if problem:
        if IN_CI:
            pytest.fail(problem + " (CI=true: a missing tool is a failure, not a skip)", pytrace=False)
        pytest.skip(problem)
    assert found is not None
    return found


def test_grammar_and_client_tests_pass_on_every_fixture(node: str, tmp_path: Path) -> None:
    places = tmp_path / "places.json"
    count = write_expectations(places)
    assert count > 3000
    run = subprocess.run(
        [node, "--test", "test/"],
        cwd=EXTENSION, env={"PATH": str(Path(node).parent), "TUSK_GRAMMAR_PLACES": str(places)},
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    summary = dict(re.findall(r"^# (pass|fail|skipped|cancelled) (\d+)$", run.stdout, re.MULTILINE))
    # Nothing skipped: the test of the parser's places ran.
    assert summary == {"pass": summary["pass"], "fail": "0", "skipped": "0", "cancelled": "0"}, run.stdout[-2000:]
    assert int(summary["pass"]) >= 10


def test_vsix_builds_with_grammar_configuration_and_client(node: str, tmp_path: Path) -> None:
    vsix = tmp_path / "tusklang.vsix"
    vsce = EXTENSION / "node_modules" / "@vscode" / "vsce" / "vsce"
    run = subprocess.run(
        [node, str(vsce), "package", "--allow-missing-repository", "--out", str(vsix)],
        cwd=EXTENSION, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    with zipfile.ZipFile(vsix) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("extension/package.json"))
        grammar = json.loads(archive.read("extension/syntaxes/tusk.tmLanguage.json"))
    for name in ("extension/extension.js", "extension/language-configuration.json", "extension/readme.md",
                 "extension/node_modules/vscode-languageclient/node.js"):
        assert name in names
    assert not any(name.startswith("extension/test/") for name in names)
    assert not any("/node_modules/vscode-textmate/" in name or "/@vscode/vsce/" in name for name in names)
    assert manifest["contributes"]["languages"][0]["extensions"] == [".tsk"]
    assert grammar["scopeName"] == manifest["contributes"]["grammars"][0]["scopeName"] == "source.tusk"


def test_extension_settings_are_the_servers() -> None:
    # The settings VS Code shows are those docs/editors.md lists for the server, plus the extension's own.
    manifest = json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))
    shown = set(manifest["contributes"]["configuration"]["properties"])
    docs = (ROOT / "docs" / "editors.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(tusk\.[A-Za-z]+)` \|", docs, re.MULTILINE))
    assert documented and shown == documented | {"tusk.server.path", "tusk.trace.server"}
    forwarded = re.search(r"const SERVER_SETTINGS = \[(.*?)\];", (EXTENSION / "extension.js").read_text()).group(1)
    assert {"tusk." + name for name in re.findall(r'"(\w+)"', forwarded)} == documented
    lock = json.loads((EXTENSION / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"][""]["devDependencies"] == manifest["devDependencies"]
