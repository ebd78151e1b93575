"""The code registry (tusklang.codes) and the one severity policy (--error / --ignore) every command applies."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tusklang.cli import main
from tusklang.cli._severity import PolicyError, SeverityPolicy
from tusklang.codes import CODES, lookup
from tusklang.diagnostics import Diagnostic, Severity

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tusklang"
DOC = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")


def _literals(pattern: str) -> dict[str, str]:
    """Each code literal in tusklang/'s sources, with one place it occurs."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for code in re.findall(pattern, line):
                found.setdefault(code, f"{path.relative_to(ROOT)}:{number}")
    return found


# The example of a code that does not exist (`tusk check --error TSK999` is a usage error): comments
# and messages may name it, and it must never be registered.
NOT_A_CODE = "TSK999"


def test_every_tsk_code_in_the_sources_is_registered() -> None:
    literals = _literals(r"\bTSK\d{3}\b")
    assert len(literals) > 100  # the scan reads the sources
    assert NOT_A_CODE not in CODES
    missing = {code: where for code, where in literals.items() if code not in CODES and code != NOT_A_CODE}
    assert not missing, f"add these to tusklang/codes.py (and docs/diagnostics.md): {missing}"


def test_every_named_code_in_the_sources_is_registered() -> None:
    literals = _literals(r"\"((?:snapshot|flagd)-[a-z-]+)\"")
    assert {"snapshot-invalid", "flagd-unsupported"} <= set(literals)
    assert not {c: w for c, w in literals.items() if c not in CODES}


def _documented() -> set[str]:
    covered = set(re.findall(r"\bTSK\d{3}\b", DOC)) | set(re.findall(r"`([a-z]+-[a-z-]+)`", DOC))
    for low, high in re.findall(r"\bTSK(\d{3})-(?:TSK)?(\d{3})\b", DOC):
        covered |= {f"TSK{n:03d}" for n in range(int(low), int(high) + 1)}
    return covered


def test_every_registered_code_is_documented_in_docs_diagnostics_md() -> None:
    assert set(CODES) - _documented() == set()


def test_every_registered_code_has_a_one_line_title() -> None:
    for code, info in CODES.items():
        assert info.code == code
        assert info.title and "\n" not in info.title and len(info.title) <= 100, code


def test_lint_codes_are_registered_with_their_rule_name_and_severity() -> None:
    from tusklang.compiler.lint import RULES

    for code, (name, severity) in RULES.items():
        assert CODES[code].severity is severity
        assert CODES[code].title.startswith(f"{name}: ")


def _fixture_projects() -> list[Path]:
    return [
        *sorted((ROOT / "fixtures" / "invalid").glob("*.tsk")),
        *sorted((ROOT / "fixtures" / "compile" / "invalid").rglob("*.tsk")),
        ROOT / "fixtures" / "seed" / "project.tsk",
    ]


def test_codes_are_emitted_with_their_registered_severity(capsys: pytest.CaptureFixture[str]) -> None:
    """`--ignore` is refused for codes registered as errors: the registry must match what is emitted."""
    seen: dict[str, set[str]] = {}
    for path in _fixture_projects():
        main(["check", str(path), "--format", "json"])
        for d in json.loads(capsys.readouterr().out)["diagnostics"]:
            seen.setdefault(d["code"], set()).add(d["severity"])
    assert len(seen) > 40
    wrong = {code: sev for code, sev in seen.items() if sev != {CODES[code].severity.value}}
    assert not wrong


def test_lookup_normalises_case_and_spaces() -> None:
    assert lookup(" tsk401 ") is CODES["TSK401"]
    assert lookup("FLAGD-UNSUPPORTED") is CODES["flagd-unsupported"]
    assert lookup("TSK999") is None


# --- the policy -------------------------------------------------------------------------------------


def _d(code: str, severity: Severity) -> Diagnostic:
    return Diagnostic(code, "m", severity=severity)


def test_error_promotes_any_warning_or_info_and_ignore_drops_it() -> None:
    policy = SeverityPolicy.from_codes(["TSK330,flagd-time-horizon"], ["tsk331"])
    out = policy.apply(
        [
            _d("TSK330", Severity.WARNING),
            _d("TSK331", Severity.WARNING),
            _d("flagd-time-horizon", Severity.INFO),
            _d("TSK405", Severity.INFO),
        ]
    )
    assert [(d.code, d.severity) for d in out] == [
        ("TSK330", Severity.ERROR),
        ("flagd-time-horizon", Severity.ERROR),
        ("TSK405", Severity.INFO),
    ]


def test_an_error_is_never_dropped_and_ignore_wins_over_error() -> None:
    policy = SeverityPolicy.from_codes(["TSK401"], ["TSK401"])
    assert policy.apply([_d("TSK401", Severity.WARNING), _d("TSK401", Severity.ERROR)]) == [
        _d("TSK401", Severity.ERROR)
    ]


@pytest.mark.parametrize(
    ("error", "ignore", "message"),
    [
        (["TSK999"], [], "--error TSK999: no such diagnostic code (docs/diagnostics.md lists them)"),
        ([], ["nonsense"], "--ignore nonsense: no such diagnostic code"),
        (["TSK410"], [], "did you mean TSK401 (missing-documentation"),
        (["TSK331,"], [], "an empty code"),
        ([], ["flagd-variant-type"], "did you mean flagd-variant-types"),
        ([], ["TSK301"], "TSK301 (unknown key) is an error and cannot be ignored"),
    ],
)
def test_unusable_codes_are_refused(error: list[str], ignore: list[str], message: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(message)):
        SeverityPolicy.from_codes(error, ignore)


# --- the commands -------------------------------------------------------------------------------------

PROJECT = (
    "feature_flags = {\n"
    "    flags = {\n"
    "        a = {\n"
    "            enabled = true\n"
    "            rollout_percentage = 50\n"
    '            targeting = { user_segments = ["computed_elsewhere"] }\n'
    "        }\n"
    "    }\n"
    "}\n"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "p.tsk"
    path.write_text(PROJECT)
    return path


def _codes(out: str) -> list[tuple[str, str]]:
    return [(d["code"], d["severity"]) for d in json.loads(out)["diagnostics"]]


@pytest.mark.parametrize("command", ["check", "compile"])
def test_check_and_compile_apply_the_policy_identically(
    command: str, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "flags.json"
    extra = ["-o", str(out)] if command == "compile" else []
    base = [command, str(project), *extra, "--format", "json"]
    assert main(base) == 0
    assert ("TSK330", "warning") in _codes(capsys.readouterr().out)

    # a warning that is not a lint rule becomes an error: exit 1, and compile writes nothing
    assert main([*base, "--error", "TSK330"]) == 1
    assert ("TSK330", "error") in _codes(capsys.readouterr().out)
    assert main([*base, "--ignore", "TSK330"]) == 0
    assert "TSK330" not in {c for c, _ in _codes(capsys.readouterr().out)}


def test_compile_writes_nothing_when_error_promotes_a_warning(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "flags.json"
    out.write_text("previous")
    assert main(["compile", str(project), "-o", str(out), "--error", "TSK330"]) == 1
    assert "error[TSK330]" in capsys.readouterr().err
    assert out.read_text() == "previous"


@pytest.mark.parametrize("command", ["check", "compile"])
@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--error", "TSK999"], "tusk {}: --error TSK999: no such diagnostic code"),
        (["--ignore", "nonsense"], "tusk {}: --ignore nonsense: no such diagnostic code"),
        (["--ignore", "TSK301"], "tusk {}: --ignore TSK301: TSK301 (unknown key) is an error and cannot be ignored"),
    ],
)
def test_a_mistyped_gate_is_a_usage_error(
    command: str,
    option: list[str],
    expected: str,
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    extra = ["-o", str(tmp_path / "flags.json")] if command == "compile" else []
    assert main([command, str(project), *extra, *option]) == 2
    assert capsys.readouterr().err.startswith(expected.format(command))
    assert not (tmp_path / "flags.json").exists()


DASHBOARD = """real_time_feature_dashboard = {
    main = {
        refresh_interval = "5 seconds"
        widgets = { a = { type = "counter", query = "SELECT 1 AS value" } }
    }
}
feature_analytics_config = {
    reporting = { real_time_dashboard = { enabled = true, refresh_interval = "30 seconds", widgets = ["a", "nope"] } }
}
"""


def test_dashboard_applies_the_same_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "dash.tsk"
    config.write_text(DASHBOARD)
    page = tmp_path / "page.html"
    base = ["dashboard", str(config), "--db", f"sqlite:///{ROOT / 'fixtures' / 'db' / 'seed.db'}", "-o", str(page)]
    assert main([*base, "--format", "json"]) == 0
    assert _codes(capsys.readouterr().out) == [("TSK943", "info"), ("TSK942", "warning")]
    assert main([*base, "--format", "json", "--error", "TSK942", "--ignore", "TSK943"]) == 1
    assert _codes(capsys.readouterr().out) == [("TSK942", "error")]
    assert page.exists()  # the page is still written, as for a widget that failed
    assert main([*base, "--ignore", "TSK944"]) == 2
    assert "TSK944 (a dashboard widget's query failed) is an error" in capsys.readouterr().err
