"""`tusk diff OLD.json NEW.json`: what changed between two snapshots, for people or as JSON."""

from __future__ import annotations

import argparse

from ._common import EXIT_OK, UsageError, add_command, add_format, print_json, read_text


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "diff",
        "Show what changed between two flag snapshots: flags added or removed, rollout and weight changes, targeting.",
        "tusk diff old/flags.json new/flags.json --format json",
    )
    parser.add_argument("old", metavar="OLD.json")
    parser.add_argument("new", metavar="NEW.json")
    add_format(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from ..compiler.diff import diff_snapshots

    snapshots = []
    for path in (args.old, args.new):
        try:
            snapshots.append(json.loads(read_text(path)))
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    changes = diff_snapshots(*snapshots)
    if args.format == "json":
        print_json({"changes": [c.to_dict() for c in changes]})
    elif changes:
        for change in changes:
            print(change.message)
    else:
        print("no changes")
    return EXIT_OK
