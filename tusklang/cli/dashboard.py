"""`tusk dashboard`: render `real_time_feature_dashboard` to one HTML file, or serve it live (docs/reports.md).

Exit codes: 0 every widget rendered, 1 a problem in the config or a widget's query failed (the page is
still written, the failed widget shows its error), 2 usage, unreadable file or unreachable database.
"""

from __future__ import annotations

import argparse
import sys

from ._common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    add_command,
    add_format,
    io_error,
    print_json,
    read_text,
    report,
    write_atomic,
)
from ._db_errors import one_line
from ._resolve_options import add_settings_options, settings_from_args
from ._severity import add_severity_options, severity_policy


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "dashboard",
        "Render the widgets of `real_time_feature_dashboard` from their SQL queries (HTML, inline SVG charts).",
        "tusk dashboard fixtures/dashboard/dashboard.tsk --db sqlite:///fixtures/db/seed.db -o dashboard.html",
    )
    parser.add_argument("config", help="TuskLang file with a `real_time_feature_dashboard` block")
    add_settings_options(parser)
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="WIDGET=VALUE",
        help="bind a value to a widget's `?` (repeat for several, in order); replaces the widget's `params`. "
        "WIDGET is its name or PANEL.WIDGET",
    )
    parser.add_argument("-o", "--output", help="write the page here (atomically); default: stdout")
    parser.add_argument("--serve", action="store_true", help="serve the live dashboard on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8050, help="port for --serve (default 8050)")
    add_severity_options(parser)
    add_format(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..db import DatabaseError, connect, redact_url
    from ..diagnostics import TuskError
    from ..reports import dashboard

    settings = settings_from_args(args)  # --query-timeout and --max-rows are checked there
    policy = severity_policy(args)
    if args.serve and args.output:
        raise UsageError("--serve and -o are exclusive: serve the live page, or write one file")
    if args.format == "json" and not args.output:
        raise UsageError("--format json prints a report on stdout: write the page with -o FILE")
    if args.serve and not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, not {args.port}")
    text = read_text(args.config)
    url = settings.database  # --db, else TUSK_DATABASE_URL (Settings reads it once)
    if not isinstance(url, str):
        raise UsageError("--db: no database given (pass --db URL or set TUSK_DATABASE_URL)")
    try:
        db = connect(url, timeout=settings.query_timeout, max_rows=settings.max_rows)
    except DatabaseError as exc:
        # An unsupported URL or an unreachable database: exit 2, with the code, without the password.
        where = f"{redact_url(url)}: " if exc.kind != "url" else "--db: "
        raise io_error(f"{where}{one_line(exc)}", exc.first.code) from None
    with db:
        try:
            spec = dashboard.load(args.config, text, database=db, settings=settings)
        except TuskError as exc:
            return report(policy.apply(exc.diagnostics), args.format)
        try:
            spec = dashboard.override_params(spec, args.param)
        except TuskError as exc:  # DashboardParamError (TSK947): a usage problem
            raise UsageError(one_line(exc)) from None
        notes = policy.apply(spec.diagnostics)  # the config's warnings and infos, as --error/--ignore say
        if args.format == "text":
            report(notes, "text")
        if args.serve:
            return _serve(db, spec, args.port)
        panels = dashboard.run_all(db, spec)
    page = dashboard.render_page(spec, panels)
    if args.output:
        write_atomic(args.output, page)
    else:
        sys.stdout.write(page)
    failed = dashboard.failures(panels)
    # a widget that failed, or a note --error made an error: exit 1 (the page is written either way)
    code = EXIT_PROBLEMS if failed or any(d.is_error for d in notes) else EXIT_OK
    widgets = sum(len(p.widgets) for p in panels)
    if args.format == "json":
        print_json(
            {
                "output": args.output,
                "widgets": [
                    {
                        "widget": w.spec.key,
                        "type": w.spec.config.type,
                        "rows": len(w.rows),
                        "error": w.error,
                    }
                    for panel in panels
                    for w in panel.widgets
                ],
                "diagnostics": [d.to_dict() for d in (*notes, *failed)],
            }
        )
        return code
    report(failed, "text")
    if args.output:
        print(f"wrote {args.output}: {widgets - len(failed)} of {widgets} widgets rendered", file=sys.stderr)
    return code


def _serve(db: object, spec: object, port: int) -> int:
    import uvicorn

    from ..reports.server import create_app
    from ._listen import bind

    sock = bind("127.0.0.1", port)  # a port in use: one line, exit 2 (uvicorn would log it and exit 3)
    try:
        app = create_app(db, spec)  # type: ignore[arg-type]
        print(f"serving the dashboard on http://127.0.0.1:{port}/ (Ctrl-C stops)", file=sys.stderr, flush=True)
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        uvicorn.Server(config).run(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits when the app's startup fails; it logged why
        if exc.code not in (0, None):
            raise io_error(f"cannot serve the dashboard on 127.0.0.1:{port}") from None
    finally:
        sock.close()
    return EXIT_OK
