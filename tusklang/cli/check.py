"""`tusk check FILE...`: report every problem in TuskLang files without running directives."""

from __future__ import annotations

import argparse

from ._common import add_command, add_format, read_text, report


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "check",
        "Check TuskLang files: syntax, duplicate keys, variables, expressions (nothing is executed).",
        "tusk check fixtures/valid/seed/*.tsk --format json",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help=".tsk files to check")
    add_format(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..check import check_text

    diagnostics = []
    for path in args.files:
        diagnostics.extend(check_text(read_text(path), path))
    return report(diagnostics, args.format)
