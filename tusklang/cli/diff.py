"""`tusk diff OLD NEW`: what changed between two snapshots, for people or as JSON.

OLD and NEW are snapshots, or TuskLang sources (a `.tsk` file, a directory of them, or any file that is
not JSON: `<(git show main:flags.tsk)`), compiled first as `tusk compile` would (`--db`, `--env-file`), so
a change can be reviewed before anything is compiled or deployed.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ._common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    add_command,
    add_format,
    invalid_snapshot,
    io_error,
    print_json,
    read_text,
    report,
)
from ._resolve_options import add_settings_options, settings_from_args


class _NotCompiled(Exception):
    """A source side did not compile: its diagnostics were reported."""


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "diff",
        "Show what changed between two flag snapshots (or two TuskLang sources, compiled first): flags "
        "added or removed, rollout and weight changes, targeting.",
        "tusk diff old/flags.json new/flags.json --exit-code --format json\n"
        "  tusk diff <(git show main:flags.tsk) flags.tsk",
    )
    parser.add_argument("old", metavar="OLD", help="snapshot JSON, or a .tsk file or directory to compile")
    parser.add_argument("new", metavar="NEW", help="snapshot JSON, or a .tsk file or directory to compile")
    parser.add_argument(
        "--exit-code",
        action="store_true",
        help="exit 1 when the snapshots differ, 0 when they do not (as `git diff --exit-code`)",
    )
    add_settings_options(parser, root=True)
    add_format(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..compiler.diff import diff_snapshots

    try:
        old, new = (_side(path, args) for path in (args.old, args.new))
    except _NotCompiled:
        return EXIT_PROBLEMS
    changes = diff_snapshots(old, new)
    if args.format == "json":
        print_json({"changed": bool(changes), "changes": [c.to_dict() for c in changes]})
    elif changes:
        for change in changes:
            print(change.message)
    else:
        print("no changes")
    return EXIT_PROBLEMS if args.exit_code and changes else EXIT_OK


def _side(path: str, args: argparse.Namespace) -> dict[str, Any]:
    """The snapshot ``path`` holds, or the one its TuskLang source compiles to."""
    if os.path.isdir(path) or path.endswith(".tsk"):
        return _compiled(path, None, args)
    if path.endswith(".json"):
        return _snapshot(path)
    text = read_text(path)  # once: it may be a pipe
    from ..safejson import JSONInputError, loads

    try:
        data = loads(text)
    except JSONInputError:
        return _compiled(path, text, args)
    return _snapshot(path, text, data)


def _compiled(path: str, text: str | None, args: argparse.Namespace) -> dict[str, Any]:
    from ..compiler import compile_files
    from ..diagnostics import TuskError
    from ._project_files import project_texts

    texts = {path: text} if text is not None else project_texts([path])
    try:
        result = compile_files([path], settings=settings_from_args(args), overlays=texts)
    except TuskError as exc:
        report(exc.diagnostics, args.format)
        raise _NotCompiled from None
    return dict(result.snapshot)


def _snapshot(path: str, text: str | None = None, data: Any = None) -> dict[str, Any]:
    """The file's snapshot as data, checked by the evaluator's own loader first: the diff reads its fields
    as a snapshot has them, so anything else is a one-line error (exit 2), never a traceback."""
    from ..diagnostics import TuskError
    from ..safejson import JSONInputError, loads
    from ..snapshot import load_snapshot

    if text is None:
        text = read_text(path)
    try:
        if data is None:  # not parsed already (by _side, sniffing what the file holds)
            data = loads(text)
    except JSONInputError as exc:
        raise io_error(f"{path}: not JSON ({str(exc).removeprefix('not valid JSON: ')})") from None
    try:
        load_snapshot(text)
    except TuskError as exc:
        raise invalid_snapshot(path, exc) from None
    assert isinstance(data, dict)  # load_snapshot refuses anything but an object
    return data
