"""`tusk check FILE...`: report every problem in TuskLang files without running directives."""

from __future__ import annotations

import argparse

from ._common import add_command, add_format, report
from ._lint_options import add_lint_options, lint_options, severity_policy
from ._project_files import project_texts
from ._resolve_options import add_settings_options, settings_from_args


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "check",
        "Check TuskLang files: syntax, duplicate keys, variables, expressions, and for flag configs the "
        "schema and lint rules (docs/lint.md), following @file includes. Nothing is executed: @query and "
        "@date are not run; @env reads the environment (a variable that is not set is its default).",
        "tusk check fixtures/seed/project.tsk --error TSK401 --ignore TSK403 --format json",
    )
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help=".tsk files (one project) to check, or directories of them"
    )
    add_settings_options(parser, database=False, limits=False, root=True)
    add_lint_options(parser)
    parser.add_argument(
        "--strict-secrets",
        action="store_true",
        help="as `tusk compile --strict-secrets`: a value from @env in metadata or a description is an error",
    )
    parser.set_defaults(func=run)
    add_format(parser)
    parser.description = (
        f"{parser.description}\n\n"
        "Run as the `tusk` script on Linux, a check after the first is handed to a warm background process\n"
        '(~45 ms instead of ~400): TUSK_CHECK_SERVER=0 turns it off (docs/lint.md, "A warm check").'
    )


def run(args: argparse.Namespace) -> int:
    from ..compiler.check import check_project

    options = lint_options(args)
    policy = severity_policy(args)
    settings = settings_from_args(args)
    # read here: one-line usage errors for missing or unreadable files, and `-` is standard input
    texts = project_texts(args.files)  # one-line usage errors for unreadable files
    diagnostics = check_project(args.files, settings, overlays=texts, lint_options=options, cache=True)
    return report(policy.apply(diagnostics), args.format)
