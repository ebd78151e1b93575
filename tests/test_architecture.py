"""The import graph of tusklang/ follows the stage order of docs/architecture.md: no arrow points up.

The stages are read from the table in docs/architecture.md, so the page and the check cannot drift.
Every import counts: at the top of a file, inside a function (a lazy import is a dependency too) and
under ``TYPE_CHECKING``; relative imports are resolved against the importing module's package.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tusklang"
DOC = ROOT / "docs" / "architecture.md"

# Arrows still being removed, each with the issue that removes it. Keep empty: an entry here is
# tolerated only while someone is working on it, and must say so.
ALLOWED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Stage:
    rank: int  # position in the table: lower may not import higher
    label: str  # "6a evaluation"


@dataclass(frozen=True)
class Arrow:
    module: str
    path: Path
    line: int
    target: str


def read_stages(text: str) -> dict[str, Stage]:
    """``{"tusklang.syntax": Stage(...), ...}`` from the table rows of docs/architecture.md."""
    stages: dict[str, Stage] = {}
    rank = 0
    for row in text.splitlines():
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        if len(cells) != 3 or not re.match(r"\d+[a-z]? ", cells[0]):
            continue
        for name in re.findall(r"`([\w.]+)`", cells[2]):
            assert name not in stages, f"docs/architecture.md lists `{name}` twice"
            stages[name] = Stage(rank, cells[0])
        rank += 1
    return stages


def modules(package: Path = PACKAGE) -> dict[str, tuple[Path, bool]]:
    """Every module under ``package``: dotted name -> (file, is a package's __init__)."""
    found: dict[str, tuple[Path, bool]] = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


def imports(module: str, is_package: bool, source: str, known: set[str], path: Path) -> list[Arrow]:
    """Every import of a tusklang module in ``source``, wherever it sits, with relative ones resolved.

    ``from pkg import name`` is an import of ``pkg.name`` when that is a module, else of ``pkg``.
    """
    arrows: list[Arrow] = []
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "tusklang":
                    arrows.append(Arrow(module, path, node.lineno, alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                target = node.module or ""
                if target.split(".")[0] != "tusklang":
                    continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                arrows.append(Arrow(module, path, node.lineno, sub if sub in known else target))
    return arrows


def stage_of(module: str, stages: dict[str, Stage]) -> Stage | None:
    """The stage of the longest listed prefix; ``tusklang`` alone is the facade, never a prefix."""
    parts = module.split(".")
    for end in range(len(parts), 1, -1):
        found = stages.get(".".join(parts[:end]))
        if found is not None:
            return found
    return stages.get(module) if module == "tusklang" else None


def upward(arrows: list[Arrow], stages: dict[str, Stage]) -> list[str]:
    problems = []
    for arrow in sorted(arrows, key=lambda a: (str(a.path), a.line, a.target)):
        source, target = stage_of(arrow.module, stages), stage_of(arrow.target, stages)
        if source is None or target is None or target.rank <= source.rank:
            continue
        if (arrow.module, arrow.target) in ALLOWED:
            continue
        where = arrow.path.relative_to(ROOT) if arrow.path.is_relative_to(ROOT) else arrow.path
        problems.append(
            f"{where}:{arrow.line}: {arrow.module} (stage {source.label}) imports {arrow.target} "
            f"(stage {target.label}), a higher stage"
        )
    return problems


def graph() -> list[Arrow]:
    found = modules()
    known = set(found)
    arrows: list[Arrow] = []
    for name, (path, is_package) in found.items():
        arrows += imports(name, is_package, path.read_text(encoding="utf-8"), known, path)
    return arrows


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    return read_stages(DOC.read_text(encoding="utf-8"))


def test_the_table_lists_the_stages_in_order(stages: dict[str, Stage]) -> None:
    labels = sorted({(s.rank, s.label) for s in stages.values()})
    assert [label.split()[0] for _, label in labels] == ["1", "2", "3", "4", "5", "6a", "6b", "7", "8"]
    assert stages["tusklang.source"].rank < stages["tusklang.syntax"].rank < stages["tusklang.compiler"].rank


def test_every_module_has_a_stage(stages: dict[str, Stage]) -> None:
    unplaced = [name for name in modules() if stage_of(name, stages) is None]
    assert not unplaced, f"add these to the table in docs/architecture.md: {unplaced}"


def test_no_import_points_to_a_higher_stage(stages: dict[str, Stage]) -> None:
    problems = upward(graph(), stages)
    assert not problems, "imports against the stage order (docs/architecture.md):\n" + "\n".join(problems)


def test_the_allow_list_names_only_arrows_that_exist(stages: dict[str, Stage]) -> None:
    present = {(a.module, a.target) for a in graph()}
    for arrow, reason in ALLOWED.items():
        assert arrow in present, f"{arrow} is gone: remove it from ALLOWED"
        assert "issue" in reason, f"{arrow}: say which issue removes it"


def test_the_evaluator_imports_no_runtime_neighbour() -> None:
    # The rule behind 6a/6b, spelled out: a Client needs no Redis, server or exporter to evaluate, and
    # takes its override source from the caller (evaluate/sources.py).
    neighbours = ("tusklang.overrides", "tusklang.openfeature", "tusklang.export", "tusklang.serve")
    offending = [
        f"{a.path.name}:{a.line} imports {a.target}"
        for a in graph()
        if a.module.startswith("tusklang.evaluate") and a.target.startswith(neighbours)
    ]
    assert not offending


# --- the checker itself: it must see what it claims to see ----------------------------------------

PLANTED = """
from __future__ import annotations
from typing import TYPE_CHECKING
from ..diagnostics import Diagnostic
if TYPE_CHECKING:
    from ..compiler.lint import LintOptions

def later():
    from ...tusklang import cli
    from .. import evaluate
    import tusklang.serve.ofrep
"""


def test_the_checker_finds_imports_in_functions_type_checking_and_relative_forms(stages: dict[str, Stage]) -> None:
    known = set(modules())
    path = PACKAGE / "syntax" / "planted.py"
    arrows = imports("tusklang.syntax.planted", False, PLANTED, known, path)
    assert {(a.target, a.line) for a in arrows} == {
        ("tusklang.diagnostics", 4),
        ("tusklang.compiler.lint", 6),
        ("tusklang.cli", 9),
        ("tusklang.evaluate", 10),
        ("tusklang.serve.ofrep", 11),
    }
    problems = upward(arrows, stages)
    assert len(problems) == 4
    assert problems[0] == (
        "tusklang/syntax/planted.py:6: tusklang.syntax.planted (stage 2 syntax and snapshot) imports "
        "tusklang.compiler.lint (stage 5 schema and compiler), a higher stage"
    )


def test_a_package_init_resolves_relative_imports_from_itself(stages: dict[str, Stage]) -> None:
    known = set(modules())
    arrows = imports("tusklang.evaluate", True, "from .client import Client\nfrom ..cli import main\n", known, PACKAGE)
    assert [a.target for a in arrows] == ["tusklang.evaluate.client", "tusklang.cli"]
    assert len(upward(arrows, stages)) == 1
