"""One project model: every front door reports the same problems at the same places.

For every fixture project, `tusk check` (``check_project``) reports the same set of (code, file, line) as
`tusk compile` (``compile_files``) minus what needs execution: findings at or about a value that only a
compile knows (a `@query` result, an `@env` that is not set), and check's own TSK332 notes saying so.
A policy file (not a flag project) is compared with the loader `tusk rollout` reads it with.

Each front door is a function ``Case -> set[Finding]`` (``FRONT_DOORS``); the language server joins by
adding its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tusklang.compiler import compile_files
from tusklang.compiler.check import check_project
from tusklang.compiler.pipeline import analyse
from tusklang.diagnostics import Diagnostic, Span, TuskError
from tusklang.project import FLAG_BLOCKS, Settings, load_project
from tusklang.project.loader import POLICY_BLOCK

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SEED_DB = f"sqlite:///{FIXTURES / 'db' / 'seed.db'}"
EPOCH = "1706832000"  # 2024-02-02: the fixtures' "now", so age lint rules do not drift with the date

Finding = tuple[str, str, int]  # (code, file as the diagnostics name it, line)


@dataclass(frozen=True)
class Case:
    name: str
    paths: tuple[str, ...]  # relative to the repository root (the working folder of the test)
    env_file: str | None = None
    database: str | None = None

    def settings(self) -> Settings:
        # hermetic: nothing from the machine's environment, a fixed clock; one Settings for every door
        return Settings.from_environment(
            env_file=self.env_file, database=self.database, environ={"SOURCE_DATE_EPOCH": EPOCH}
        )


def _cases() -> list[Case]:
    cases = [
        Case("seed", ("fixtures/seed/project.tsk",), "fixtures/seed/seed.env", SEED_DB),
        Case("seed-data", ("fixtures/seed/feature_flags_data.tsk",), database=SEED_DB),
        Case("split-with-includes", ("fixtures/project/split/main.tsk",), database=SEED_DB),
        Case("dashboard", ("fixtures/dashboard/dashboard.tsk",), database=SEED_DB),
        # a file of its own with a top-level progressive_delivery block (`tusk rollout --config`): a
        # project like any other, so compile accepts what check accepts and reports what it reports
        Case("delivery-policy", ("fixtures/delivery/seed_policy.tsk",)),
        Case(
            # the seed's blocks, one per file, as one project; feature_flags_data.tsk there is the MySQL
            # original (fixtures/seed/feature_flags_data.tsk is its portable form, a case above)
            "valid-seed-blocks",
            tuple(
                sorted(_rel(p) for p in (FIXTURES / "valid" / "seed").glob("*.tsk") if p.stem != "feature_flags_data")
            ),
            "fixtures/seed/seed.env",  # REDIS_URL: compile must be able to run what it runs
        ),
    ]
    cases += [
        # issue 16: the typed flag model, and projects given as a directory of files
        Case("typed", ("fixtures/typed/project.tsk",)),
        Case("typed-requires-a-row-flag", ("fixtures/typed/rows.tsk",), database=SEED_DB),
        # files of one project, each adding flags (a directory given instead is tests/test_many_files.py's:
        # the language server's projects name files)
        Case(
            "typed-many-files",
            (
                "fixtures/typed/many/main.tsk",
                "fixtures/typed/many/teams/checkout.tsk",
                "fixtures/typed/many/teams/search.tsk",
            ),
        ),
        Case("typed-duplicate-across-files", ("fixtures/typed/duplicate/a.tsk", "fixtures/typed/duplicate/b.tsk")),
    ]
    cases += [Case(f"compile-invalid/{p.stem}", (_rel(p),)) for p in sorted((FIXTURES / "compile").rglob("*.tsk"))]
    return cases


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


CASES = _cases()


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(ROOT)  # diagnostics name files as given, relative to here
    yield


def _findings(diagnostics: list[Diagnostic]) -> set[Finding]:
    return {(d.code, d.span.file if d.span else "", d.span.line if d.span else 0) for d in diagnostics}


# --- the front doors -----------------------------------------------------------------------------


def compile_diagnostics(case: Case) -> list[Diagnostic]:
    try:
        return compile_files(list(case.paths), settings=case.settings()).diagnostics
    except TuskError as exc:
        return exc.diagnostics


def compile_findings(case: Case) -> set[Finding]:
    return _findings(compile_diagnostics(case))


def check_findings(case: Case) -> set[Finding]:
    """`tusk check`, without its notes that a value was not run (TSK332)."""
    found = check_project(list(case.paths), case.settings())
    return {f for f in _findings(found) if f[0] != "TSK332"}


FRONT_DOORS: dict[str, Callable[[Case], set[Finding]]] = {"check": check_findings}


def expected_findings(case: Case) -> set[Finding]:
    """What every static front door must report: the executing door's findings minus what needs execution."""
    needs = _needs_execution(case)
    return {_finding for _finding, d in _keyed(compile_diagnostics(case)) if not needs(d)}


def _keyed(diagnostics: list[Diagnostic]) -> list[tuple[Finding, Diagnostic]]:
    return [((d.code, d.span.file if d.span else "", d.span.line if d.span else 0), d) for d in diagnostics]


def _needs_execution(case: Case) -> Callable[[Diagnostic], bool]:
    """A compile finding that needs execution: on the line of a value only a compile knows (or its key),
    or on a span that encloses one (an object whose member is unknown may well be complete)."""
    project = load_project(list(case.paths), case.settings(), execute=False)
    flag_sources = [s for s in project.sources if s.is_flag_file]
    if not flag_sources or project.has_errors:
        return lambda d: False
    merged = project.merge(flag_sources)
    unknown = analyse(project, flag_sources).unknown
    spans: list[Span] = [s for s in unknown.values() if s is not None]
    spans += [s for s in map(merged.locator.written_key, unknown) if s is not None]
    lines = {(s.file, s.line) for s in spans}

    def needs(d: Diagnostic) -> bool:
        if d.span is None:
            return False
        if (d.span.file, d.span.line) in lines:
            return True
        return any(s.source is d.span.source and d.span.start <= s.start and s.end <= d.span.end for s in spans)

    return needs


# --- the tests -----------------------------------------------------------------------------------


# Problems of running a directive (an unset variable, a failed query): a compile that has one stops
# before the schema, so it would say nothing about the rest. Every case must compile past them.
EXECUTION_CODES = {"TSK223", "TSK224", "TSK228", "TSK230", "TSK231", "TSK232", "TSK243"}


@pytest.mark.parametrize("door", sorted(FRONT_DOORS))
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_front_doors_report_what_compile_reports(case: Case, door: str) -> None:
    assert not {f for f in compile_findings(case) if f[0] in EXECUTION_CODES}, "the case must be runnable"
    assert FRONT_DOORS[door](case) == expected_findings(case)


def test_the_comparison_sees_problems_and_unknown_values() -> None:
    """Not vacuous: the cases hold errors, warnings, findings inside included files and unknown values."""
    by_name = {c.name: c for c in CASES}
    split = by_name["split-with-includes"]
    assert ("TSK301", "fixtures/project/split/flags/search.tsk", 10) in expected_findings(split)
    seed = by_name["seed"]
    # the seed's flag rows come from @query: compile judges them (TSK341 at the query), check cannot
    assert ("TSK341", "fixtures/seed/project.tsk", 449) in compile_findings(seed)
    assert ("TSK341", "fixtures/seed/project.tsk", 449) not in expected_findings(seed)
    assert len(expected_findings(seed)) >= 15  # lints of every kind, TSK331 (4), TSK350
    errors = sum(1 for c in CASES if c.name.startswith("compile-invalid/") and expected_findings(c))
    assert errors >= 40


def test_flag_blocks_are_the_schema_blocks() -> None:
    from tusklang.schema.project import ProjectConfig

    assert set(ProjectConfig.model_fields) == FLAG_BLOCKS | {POLICY_BLOCK}


def test_cases_cover_every_fixture_project() -> None:
    named = {p for c in CASES for p in c.paths}
    for folder in ("seed", "compile", "delivery", "dashboard", "project", "typed"):
        for path in (FIXTURES / folder).rglob("*.tsk"):
            rel = _rel(path)
            if path.name == "feature_flags_data.original.tsk":
                continue  # the seed's MySQL original, kept for reference; not portable SQL
            included = path.parent.name == "flags" and folder == "project"  # reached through @file
            # beside the many-files project: reached through @file, or not a flag file (test_many_files.py)
            aside = rel in ("fixtures/typed/many/teams/search_flags.tsk", "fixtures/typed/many/settings.tsk")
            assert rel in named or included or aside, f"{rel}: add it to CASES"
    assert os.path.isdir(FIXTURES / "project" / "split")
