"""`tusk check FILE...`: report every problem in TuskLang files without running directives."""

from __future__ import annotations

import argparse

from ..diagnostics import Diagnostic, TuskError
from ._common import add_command, add_format, read_text, report
from ._lint_options import add_lint_options, lint_options, severity_policy


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "check",
        "Check TuskLang files: syntax, duplicate keys, variables, expressions, and for flag configs the "
        "schema and lint rules (docs/lint.md). Nothing is executed: @env, @query, ... are not run.",
        "tusk check fixtures/seed/project.tsk --error TSK401 --ignore TSK403 --format json",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help=".tsk files (one project) to check")
    add_lint_options(parser)
    parser.add_argument(
        "--strict-secrets",
        action="store_true",
        help="as `tusk compile --strict-secrets`: a value from @env in metadata or a description is an error",
    )
    parser.set_defaults(func=run)
    add_format(parser)


def run(args: argparse.Namespace) -> int:
    from ..check import check_source
    from ..schema.project import ProjectConfig

    options = lint_options(args)
    blocks = set(ProjectConfig.model_fields)
    diagnostics: list[Diagnostic] = []
    project: list[str] = []
    for path in args.files:
        found, data = check_source(read_text(path), path)
        diagnostics.extend(found)
        if data is not None and blocks & set(data):
            project.append(path)
    if project and not any(d.is_error for d in diagnostics):
        diagnostics.extend(_project_diagnostics(project, options, diagnostics, args.strict_secrets))
    return report(severity_policy(args).apply(diagnostics), args.format)


def _project_diagnostics(
    project: list[str], options: object, seen: list[Diagnostic], strict_secrets: bool = False
) -> list[Diagnostic]:
    """Schema and lint findings for the files that define a flag block, checked as one project.

    A TuskLang file that defines none of the flag blocks is general configuration: it is checked
    for syntax and semantics only, never against the flag schema.
    """
    from ..compiler import compile_files

    try:
        found = compile_files(
            project,
            static=True,
            lint_options=options,  # type: ignore[arg-type]
            strict_secrets=strict_secrets,
        ).diagnostics
    except TuskError as exc:
        found = exc.diagnostics
    known = {_identity(d) for d in seen}
    return [d for d in found if _identity(d) not in known]


def _identity(d: Diagnostic) -> tuple[str, str, str, int]:
    return (d.code, d.message, d.span.file if d.span else "", d.span.start if d.span else -1)
