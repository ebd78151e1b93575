"""`tusk experiment report`: an experiment's results from the event store (docs/reports.md).

Exit codes: 0 report written, 1 the data shows a problem (sample ratio mismatch) or cannot be analysed
(no exposures, unknown experiment), 2 usage, unreadable snapshot or database error.
"""

from __future__ import annotations

import argparse
import os
import sys

from ._common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    add_command,
    add_deprecated_alias,
    add_format,
    invalid_snapshot,
    io_error,
    missing_subcommand,
    read_text,
    write_atomic,
)
from ._common import report as report_diagnostics
from ._db_errors import one_line


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "experiment",
        "Experiment results from the recorded events.",
        "tusk experiment report checkout_optimization --events-db sqlite:///events.db --snapshot flags.json",
    )
    nested = parser.add_subparsers(dest="experiment_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: missing_subcommand(parser))

    report = add_command(
        nested,
        "report",
        "units, conversions, uplift with its interval, P(best), expected loss, adjusted p-values, SRM and the "
        "decision for one experiment",
        "tusk experiment report checkout_optimization --events-db sqlite:///events.db --snapshot flags.json "
        "--metric purchase --format html -o report.html\n"
        "  tusk experiment report checkout_optimization --events-db sqlite:///events.db --by country",
    )
    report.add_argument("name", help="experiment key (the `flag` of its exposure events)")
    report.add_argument(
        "--events-db",
        metavar="URL",
        help="the event store: sqlite:///events.db or postgresql://... (default: $TUSK_DATABASE_URL)",
    )
    add_deprecated_alias(report, "--db", "--events-db")  # --db is the @query database elsewhere
    report.add_argument(
        "--snapshot",
        help="compiled snapshot: gives the control, the configured weights (for the SRM check), the analysis "
        "settings and the default metric",
    )
    report.add_argument(
        "--metric",
        metavar="EVENT",
        help="conversion event name (default: the experiment's first primary metric, else the only event recorded)",
    )
    report.add_argument("--control", help="control variant when there is no --snapshot (default: control)")
    report.add_argument("--correction", choices=("holm", "bonferroni", "bh"), help="p-value correction (default holm)")
    report.add_argument(
        "--by",
        metavar="ATTRIBUTE",
        help="break the results down per value of this recorded attribute (EventTracker attributes=, e.g. "
        "country): per-slice intervals, corrected p-values over every slice, slices too small to judge named",
    )
    report.add_argument(
        "--min-slice-units",
        type=int,
        metavar="N",
        help="with --by: units every arm of a slice needs to be judged (default: the experiment's "
        "minimum_sample_size, else 100)",
    )
    report.add_argument("--query-timeout", type=float, default=30.0, help="seconds per query (default 30)")
    add_format(report, "text", "json", "html")
    report.add_argument("-o", "--output", help="write the report to this file (atomically) instead of stdout")
    report.set_defaults(func=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    import dataclasses

    from ..db import DatabaseError, connect, redact_url
    from ..diagnostics import TuskError
    from ..reports import report as rep

    url = args.events_db or os.environ.get("TUSK_DATABASE_URL", "").strip()
    if not url:
        raise UsageError("--events-db: no event store given (pass --events-db URL or set TUSK_DATABASE_URL)")
    if args.query_timeout <= 0:
        raise UsageError("--query-timeout must be positive")
    if args.by is not None:
        from ..reports.segments import valid_attribute

        if not valid_attribute(args.by):
            raise UsageError(f"--by: not an attribute name: {args.by!r} (letters, digits, _ . -)")
    if args.min_slice_units is not None and (args.by is None or args.min_slice_units < 1):
        raise UsageError("--min-slice-units needs --by and a positive number")
    try:
        if args.snapshot:
            from ..snapshot.validate import load_snapshot

            try:
                snapshot = load_snapshot(read_text(args.snapshot))
            except TuskError as exc:
                raise invalid_snapshot(args.snapshot, exc) from None
            spec = rep.spec_from_snapshot(snapshot, args.name)
            if args.control and args.control != spec.control:
                raise UsageError(f"--control {args.control!r} differs from the snapshot's control {spec.control!r}")
        else:
            spec = rep.ExperimentSpec(args.name, args.control or "control")
        if args.correction:
            spec = dataclasses.replace(spec, config=dataclasses.replace(spec.config, correction=args.correction))
        with connect(url, timeout=args.query_timeout, max_rows=10_000) as db:
            metric = args.metric or spec.primary_metric
            if metric is None:
                events = rep.conversion_events(db)
                if len(events) != 1:
                    found = ", ".join(events) if events else "none recorded"
                    raise UsageError(f"--metric: name the conversion event (events in the store: {found})")
                metric = events[0]
            if args.by is not None:
                from ..reports import segments

                result = segments.count_and_analyse(db, spec, metric, args.by, min_units=args.min_slice_units)
            else:
                result = rep.analyse(spec, metric, rep.count(db, args.name, metric))
    except DatabaseError as exc:
        # The store cannot be read (URL, connection, missing tables): an I/O problem, exit 2.
        hint = " (a missing table: create the tables with `tusk db init`)" if exc.kind == "missing_table" else ""
        where = "--events-db" if exc.kind == "url" else redact_url(url)
        raise io_error(f"{where}: {one_line(exc)}{hint}", exc.first.code) from None
    except TuskError as exc:
        # The data cannot be analysed (ReportError TSK945, a statistics input TSK90x): exit 1.
        if args.format == "json":
            report_diagnostics(exc.diagnostics, "json")
        else:
            print(exc.render(), file=sys.stderr)
        return EXIT_PROBLEMS

    if args.by is not None:
        from ..reports import segments

        render = {"text": segments.render_text, "json": segments.render_json, "html": segments.render_html}
        status = f"{len(result['slices'])} slices, {len(result['significant'])} significant after correction"
    else:
        render = {"text": rep.render_text, "json": rep.render_json, "html": rep.render_html}
        status = result["decision"]["status"]
    text = render[args.format](result)
    if args.output:
        write_atomic(args.output, text)
        print(f"wrote {args.output}: {status}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    for warning in result["warnings"]:
        if args.output or args.format != "text":
            print(f"warning: {warning}", file=sys.stderr)
    if args.by is not None:
        return EXIT_OK
    return EXIT_PROBLEMS if result["decision"]["status"] == "problem" else EXIT_OK
