"""`tusk compile FILE... -o OUT`: validate a project and write its JSON flag snapshot atomically."""

from __future__ import annotations

import argparse
import os
import sys

from ._common import EXIT_OK, UsageError, add_command, add_format, read_text, report
from ._lint_options import add_lint_options, lint_options, severity_policy


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "compile",
        "Compile TuskLang flag configs into a validated, versioned JSON snapshot (written atomically).",
        "tusk compile fixtures/seed/project.tsk --db sqlite:///fixtures/db/seed.db -o flags.json",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help=".tsk files of one project")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="snapshot file to write")
    parser.add_argument("--env-file", metavar="F", help="KEY=VALUE lines used by @env (instead of os.environ)")
    parser.add_argument("--db", metavar="URL", help="database for @query (sqlite:///path or postgresql://...)")
    parser.add_argument(
        "--root", metavar="DIR", help="project root for provenance paths (default: first file's folder)"
    )
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


def parse_env_file(text: str, path: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{path}:{number}: expected KEY=VALUE")
        env[name.strip()] = value.strip().strip('"').strip("'")
    return env


def run(args: argparse.Namespace) -> int:
    from ..compiler import compile_files
    from ..compiler.emit import write_snapshot
    from ..diagnostics import TuskError

    env = parse_env_file(read_text(args.env_file), args.env_file) if args.env_file else None
    for path in args.files:
        read_text(path)  # one-line usage errors for missing or unreadable files
    if not args.output:
        raise UsageError("-o/--output: the path is empty")
    if os.path.isdir(args.output):  # before the work, not after it (write_atomic says the same)
        raise UsageError(f"{args.output}: is a directory, not a file")
    options = lint_options(args)
    policy = severity_policy(args)
    try:
        result = compile_files(
            args.files,
            env=env,
            database=args.db,
            root=args.root,
            lint_options=options,
            verify=args.verify,
            strict_secrets=args.strict_secrets,
        )
    except TuskError as exc:
        # the previous OUT stays untouched: nothing is written on failure
        report(policy.apply(exc.diagnostics), args.format)
        return 1
    diagnostics = policy.apply(result.diagnostics)
    text = result.text
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
    write_snapshot(args.output, text)
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
