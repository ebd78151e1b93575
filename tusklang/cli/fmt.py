"""`tusk fmt FILE...`: rewrite TuskLang files in the canonical layout, comments kept."""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import Any

from ._common import EXIT_OK, EXIT_PROBLEMS, add_command, add_format, print_json, read_text, write_atomic


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
    add_format(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..diagnostics import Diagnostic, TuskError
    from ..format import format_text

    as_json = args.format == "json"
    changed: list[str] = []
    files: list[dict[str, Any]] = []  # --format json: one entry per file, in order
    problems: list[Diagnostic] = []
    for path in args.files:
        original = read_text(path)
        try:
            formatted = format_text(original, path)
        except TuskError as exc:
            problems.extend(exc.diagnostics)
            if not as_json:
                print(exc.render() + "\n", file=sys.stderr)
            files.append({"path": path, "parsed": False})
            continue
        entry: dict[str, Any] = {"path": path, "parsed": True, "changed": formatted != original}
        files.append(entry)
        if path == "-" and not (args.check or args.diff):
            if as_json:
                entry["text"] = formatted
            else:
                sys.stdout.write(formatted)
            continue
        if formatted == original:
            continue
        changed.append(path)
        if args.diff:
            diff = "".join(
                difflib.unified_diff(
                    original.splitlines(keepends=True),
                    formatted.splitlines(keepends=True),
                    fromfile=f"{path} (original)",
                    tofile=f"{path} (formatted)",
                )
            )
            if as_json:
                entry["diff"] = diff
            else:
                sys.stdout.write(diff)
        elif args.check:
            if not as_json:
                print(f"would reformat {path}")
        else:
            write_atomic(path, formatted)
            entry["written"] = True
            if not as_json:
                print(f"reformatted {path}", file=sys.stderr)
    if as_json:
        print_json({"files": files, "diagnostics": [d.to_dict() for d in problems]})
    if problems:
        return EXIT_PROBLEMS
    if (args.check or args.diff) and changed:
        return EXIT_PROBLEMS
    return EXIT_OK
