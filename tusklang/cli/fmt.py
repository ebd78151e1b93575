"""`tusk fmt FILE...`: rewrite TuskLang files in the canonical layout, comments kept."""

from __future__ import annotations

import argparse
import difflib
import sys

from ._common import EXIT_OK, EXIT_PROBLEMS, add_command, read_text, write_atomic


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "fmt",
        "Format TuskLang files in place (4-space indentation, `key = value`, comments kept).",
        "tusk fmt --check flags/*.tsk",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help=".tsk files to format ('-' for stdin)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", action="store_true", help="change nothing; list files that would change, exit 1 if any"
    )
    mode.add_argument("--diff", action="store_true", help="change nothing; print a unified diff")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..diagnostics import TuskError
    from ..format import format_text

    changed: list[str] = []
    failed = False
    for path in args.files:
        original = read_text(path)
        try:
            formatted = format_text(original, path)
        except TuskError as exc:
            print(exc.render() + "\n", file=sys.stderr)
            failed = True
            continue
        if path == "-":
            if not (args.check or args.diff):
                sys.stdout.write(formatted)
                continue
        if formatted == original:
            continue
        changed.append(path)
        if args.diff:
            sys.stdout.writelines(
                difflib.unified_diff(
                    original.splitlines(keepends=True),
                    formatted.splitlines(keepends=True),
                    fromfile=f"{path} (original)",
                    tofile=f"{path} (formatted)",
                )
            )
        elif args.check:
            print(f"would reformat {path}")
        else:
            write_atomic(path, formatted)
            print(f"reformatted {path}", file=sys.stderr)
    if failed:
        return EXIT_PROBLEMS
    if (args.check or args.diff) and changed:
        return EXIT_PROBLEMS
    return EXIT_OK
