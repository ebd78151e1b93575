"""`tusk report flags`: per flag, evaluations over time, variant and reason shares, units exposed, last
evaluation and stale candidates, from the event store (docs/reports.md).

Exit codes: 0 report written; 1 nothing to report (no evaluations and no flags known), or stale candidates
with --fail-on-stale; 2 usage, an unreadable file or a database error.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from ._common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    add_command,
    add_format,
    invalid_snapshot,
    io_error,
    missing_subcommand,
    now_seconds,
    read_text,
    write_atomic,
)
from ._common import report as report_diagnostics
from ._db_errors import one_line

_FLAG_IN_MESSAGE = re.compile(r"flag `([^`]+)`")


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "report",
        "Reports from the event store.",
        "tusk report flags --db sqlite:///events.db --config project.tsk --format html -o flags.html",
    )
    nested = parser.add_subparsers(dest="report_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: missing_subcommand(parser))

    flags = add_command(
        nested,
        "flags",
        "per flag: evaluations over time, share of each variant and reason, units exposed, last evaluation, and "
        "stale candidates (no evaluation in N days) next to the TSK403 stale-flag lint",
        "tusk report flags --db sqlite:///events.db --config project.tsk --days 30 --stale-days 14\n"
        "  tusk report flags --db postgresql://reader@db/analytics --snapshot flags.json --format html -o flags.html",
    )
    flags.add_argument(
        "--db",
        "--events-db",
        dest="events_db",
        metavar="URL",
        help="the event store: sqlite:///events.db or postgresql://... (default: $TUSK_DATABASE_URL)",
    )
    flags.add_argument(
        "--config",
        metavar="FILE.tsk",
        help="the project: its flags are listed even when never evaluated, with their TSK403 (stale-flag) lint",
    )
    flags.add_argument(
        "--snapshot", metavar="FILE.json", help="a compiled snapshot: its flags and experiments are listed"
    )
    flags.add_argument("--days", type=float, default=30.0, help="the window: the last N days (default 30)")
    flags.add_argument(
        "--bucket", choices=("hour", "day"), default="day", help="evaluations over time per (default day)"
    )
    flags.add_argument(
        "--stale-days",
        type=float,
        default=30.0,
        metavar="N",
        help="a flag with no evaluation in N days (or never) is a stale candidate (default 30)",
    )
    flags.add_argument("--fail-on-stale", action="store_true", help="exit 1 when there are stale candidates (for CI)")
    flags.add_argument("--now", metavar="ISO8601", help="the report's 'now' (default: the clock), e.g. for a rerun")
    flags.add_argument("--query-timeout", type=float, default=30.0, help="seconds per query (default 30)")
    add_format(flags, "text", "json", "html")
    flags.add_argument("-o", "--output", help="write the report to this file (atomically) instead of stdout")
    flags.set_defaults(func=_run_flags)


def _project(path: str) -> tuple[set[str], dict[str, list[dict[str, Any]]]]:
    """The project's flag keys and its TSK403 findings per flag (read as `tusk check` reads it)."""
    from ..compiler.check import check_project
    from ..diagnostics import TuskError
    from ..project import Settings, load_project

    text = read_text(path)
    project = load_project([path], Settings.from_environment(), execute=False, overlays={path: text})
    if project.has_errors:
        raise UsageError(f"{path}: cannot read the config:\n{TuskError(project.diagnostics).render()}")
    data = project.merge().data
    block = data.get("feature_flags") if isinstance(data, dict) else None
    defined = block.get("flags") if isinstance(block, dict) else None
    keys = {str(k) for k in defined} if isinstance(defined, dict) else set()
    lint: dict[str, list[dict[str, Any]]] = {}
    for diagnostic in check_project([path], Settings.from_environment(), overlays={path: text}):
        found = _FLAG_IN_MESSAGE.search(diagnostic.message) if diagnostic.code == "TSK403" else None
        if found is None:
            continue
        span = diagnostic.span
        lint.setdefault(found.group(1), []).append(
            {
                "code": diagnostic.code,
                "message": diagnostic.message,
                "file": span.file if span is not None else path,
                "line": span.line if span is not None else None,
            }
        )
    return keys, lint


def _run_flags(args: argparse.Namespace) -> int:
    from ..db import DatabaseError, connect, redact_url
    from ..diagnostics import TuskError
    from ..reports import flags as rep

    url = args.events_db or os.environ.get("TUSK_DATABASE_URL", "").strip()
    if not url:
        raise UsageError("--db: no event store given (pass --db URL or set TUSK_DATABASE_URL)")
    if args.query_timeout <= 0:
        raise UsageError("--query-timeout must be positive")
    try:
        win = rep.window(now_seconds(args.now), args.days, args.bucket, args.stale_days)
    except ValueError as exc:
        raise UsageError(f"--days/--stale-days/--bucket: {exc}") from None
    known: set[str] = set()
    lint: dict[str, list[dict[str, Any]]] = {}
    if args.config:
        known, lint = _project(args.config)
    if args.snapshot:
        from ..snapshot.validate import load_snapshot

        try:
            snapshot = load_snapshot(read_text(args.snapshot))
        except TuskError as exc:
            raise invalid_snapshot(args.snapshot, exc) from None
        known |= set(snapshot.flags) | set(snapshot.experiments)
    try:
        with connect(url, timeout=args.query_timeout, max_rows=1_000_000) as db:
            result = rep.collect(db, win, known=known, lint=lint)
    except DatabaseError as exc:
        hint = " (a missing table: create the tables with `tusk db init`)" if exc.kind == "missing_table" else ""
        where = "--db" if exc.kind == "url" else redact_url(url)
        raise io_error(f"{where}: {one_line(exc)}{hint}", exc.first.code) from None
    except TuskError as exc:  # ReportError: nothing to report
        if args.format == "json":
            report_diagnostics(exc.diagnostics, "json")
        else:
            print(exc.render(), file=sys.stderr)
        return EXIT_PROBLEMS
    result = {"database": redact_url(url), **result}
    text = {"text": rep.render_text, "json": rep.render_json, "html": rep.render_html}[args.format](result)
    if args.output:
        write_atomic(args.output, text)
        print(f"wrote {args.output}: {len(result['flags'])} flags, {len(result['stale'])} stale", file=sys.stderr)
    else:
        sys.stdout.write(text)
    for warning in result["warnings"]:
        if args.output or args.format != "text":
            print(f"warning: {warning}", file=sys.stderr)
    return EXIT_PROBLEMS if args.fail_on_stale and result["stale"] else EXIT_OK
