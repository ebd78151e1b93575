"""`tusk parse FILE`: print a TuskLang file's data as JSON or canonical TuskLang."""

from __future__ import annotations

import argparse
import json
import sys

from ._common import EXIT_OK, add_command, read_text, report
from ._resolve_options import add_settings_options, settings_from_args


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "parse",
        "Print a TuskLang file's data as JSON (directives shown, not run) or as canonical TuskLang.",
        "tusk parse fixtures/valid/seed/feature_flags.tsk --format json",
    )
    parser.add_argument("file", help="a .tsk file, or - for standard input")
    parser.add_argument("--format", choices=("json", "tusk"), default="json", help="output format (default json)")
    parser.add_argument(
        "--resolve",
        action="store_true",
        help="run directives (@env, @query, @file, ...) instead of showing them",
    )
    add_settings_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import dumps, loads
    from ..diagnostics import TuskError
    from ..values import to_jsonable

    settings = settings_from_args(args) if args.resolve else None
    text = read_text(args.file)
    path = "<stdin>" if args.file == "-" else args.file
    try:
        if settings is not None:
            from ..project import load_project

            project = load_project([path], settings, execute=True, overlays={path: text})
            if project.has_errors:
                raise TuskError(project.diagnostics)
            data = project.sources[0].data or {}
        else:
            data = loads(text, path)
        # rendered before anything is printed: a value `dumps` refuses (TSK130) is a diagnostic too
        out = (
            dumps(data) if args.format == "tusk" else json.dumps(to_jsonable(data), indent=2, ensure_ascii=False) + "\n"
        )
    except TuskError as exc:
        return report(exc.diagnostics, "text")
    sys.stdout.write(out)
    return EXIT_OK
