"""`tusk compile FILE... -o OUT`: validate a project and write its JSON flag snapshot atomically."""

from __future__ import annotations

import argparse
import os
import sys

from ._common import EXIT_OK, UsageError, add_command, add_format, report, write_atomic
from ._lint_options import add_lint_options, lint_options, severity_policy
from ._project_files import project_texts
from ._resolve_options import add_settings_options, settings_from_args


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "compile",
        "Compile TuskLang flag configs into a validated, versioned JSON snapshot (written atomically).",
        "tusk compile fixtures/seed/project.tsk --db sqlite:///fixtures/db/seed.db "
        "--env-file fixtures/seed/seed.env -o flags.json",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help=".tsk files of one project, or directories of them")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="snapshot file to write")
    add_settings_options(parser, root=True)
    add_lint_options(parser)
    parser.add_argument(
        "--verify", action="store_true", help="re-read the snapshot through the evaluator's loader before writing"
    )
    parser.add_argument(
        "--strict-secrets",
        action="store_true",
        help="a value from @env in metadata or a description is an error (TSK271), not left out with a warning",
    )
    parser.add_argument(
        "--target",
        choices=("snapshot", "flagd"),
        default="snapshot",
        help="what to write: the tusklang snapshot, or a flagd flag-definition document (docs/flagd.md)",
    )
    add_format(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..compiler import compile_files
    from ..diagnostics import TuskError

    settings = settings_from_args(args)
    texts = project_texts(args.files)  # one-line usage errors for unreadable files
    if not args.output:
        raise UsageError("-o/--output: the path is empty")
    if os.path.isdir(args.output):  # before the work, not after it (write_atomic says the same)
        raise UsageError(f"{args.output}: is a directory, not a file")
    options = lint_options(args)
    policy = severity_policy(args)
    try:
        result = compile_files(args.files, settings=settings, overlays=texts, lint_options=options, verify=args.verify)
    except TuskError as exc:
        # the previous OUT stays untouched: nothing is written on failure
        report(policy.apply(exc.diagnostics), args.format)
        return 1
    diagnostics = policy.apply(result.diagnostics)
    text: str | list[str] = result.pieces
    if args.target == "flagd":
        from ..export import dumps_flagd, to_flagd

        document, exported = to_flagd(result.snapshot)
        diagnostics += policy.apply(exported)
        text = dumps_flagd(document)
    if any(d.is_error for d in diagnostics):
        # a flag flagd cannot express would change meaning, or --error made a warning an error:
        # write nothing, the old OUT stays
        report(diagnostics, args.format)
        return 1
    write_atomic(args.output, text)  # readers of OUT see the old snapshot or the new one
    code = report(diagnostics, args.format) if args.format == "text" else EXIT_OK
    if args.format == "json":
        from ._common import print_json

        print_json({"output": args.output, "diagnostics": [d.to_dict() for d in diagnostics]})
    else:
        print(
            f"wrote {args.output}: {len(result.snapshot['flags'])} flags, "
            f"{len(result.snapshot['experiments'])} experiments",
            file=sys.stderr,
        )
    return code
