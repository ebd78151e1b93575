"""`tusk diff OLD.json NEW.json`: what changed between two snapshots, for people or as JSON."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import EXIT_OK, EXIT_PROBLEMS, add_command, add_format, io_error, print_json, read_text


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "diff",
        "Show what changed between two flag snapshots: flags added or removed, rollout and weight changes, targeting.",
        "tusk diff old/flags.json new/flags.json --exit-code --format json",
    )
    parser.add_argument("old", metavar="OLD.json")
    parser.add_argument("new", metavar="NEW.json")
    parser.add_argument(
        "--exit-code",
        action="store_true",
        help="exit 1 when the snapshots differ, 0 when they do not (as `git diff --exit-code`)",
    )
    add_format(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..compiler.diff import diff_snapshots

    old, new = (_snapshot(path) for path in (args.old, args.new))
    changes = diff_snapshots(old, new)
    if args.format == "json":
        print_json({"changed": bool(changes), "changes": [c.to_dict() for c in changes]})
    elif changes:
        for change in changes:
            print(change.message)
    else:
        print("no changes")
    return EXIT_PROBLEMS if args.exit_code and changes else EXIT_OK


def _snapshot(path: str) -> dict[str, Any]:
    """The file's snapshot as data, checked by the evaluator's own loader first: the diff reads its fields
    as a snapshot has them, so anything else is a one-line error (exit 2), never a traceback."""
    from ..diagnostics import TuskError
    from ..safejson import JSONInputError, loads
    from ..snapshot import load_snapshot

    text = read_text(path)
    try:
        data = loads(text)
    except JSONInputError as exc:
        raise io_error(f"{path}: not JSON ({str(exc).removeprefix('not valid JSON: ')})") from None
    try:
        load_snapshot(text)
    except TuskError as exc:
        more = f" (+{len(exc.diagnostics) - 1} more)" if len(exc.diagnostics) > 1 else ""
        raise io_error(f"{path}: invalid snapshot: {exc.first.message}{more}") from None
    assert isinstance(data, dict)  # load_snapshot refuses anything but an object
    return data
