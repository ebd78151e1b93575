"""`tusk db init` / `tusk db purge`: create the event tables, enforce data retention (docs/events.md)."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from ..db.errors import DatabaseError
from ..diagnostics import TuskError
from ._common import (
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    add_command,
    add_deprecated_alias,
    add_format,
    io_error,
    print_json,
    read_text,
)
from ._db_errors import one_line, usage_error

_SHORT = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_SHORT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "db",
        "the event store's tables: create them, purge old events",
        "tusk db init --events-db sqlite:///events.db",
    )
    nested = parser.add_subparsers(dest="db_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: _missing_subcommand(parser))

    init = add_command(
        nested,
        "init",
        "create the event tables and indexes if missing (idempotent; SQLite or PostgreSQL)",
        "tusk db init --events-db postgresql://tusk@db.internal/analytics",
    )
    _events_db_option(init)
    add_format(init)
    init.set_defaults(func=_run_init)

    purge = add_command(
        nested,
        "purge",
        "delete events older than the retention period (security_config.data_protection.data_retention)",
        "tusk db purge --events-db sqlite:///events.db --retention 90d --format json",
    )
    _events_db_option(purge)
    purge.add_argument(
        "--retention",
        metavar="PERIOD",
        help='keep this much history: 90d, 12h, 2w or "90 days" (default: from --config)',
    )
    purge.add_argument(
        "--config",
        metavar="FILE.tsk",
        help="read the retention from this config's security_config.data_protection.data_retention",
    )
    purge.add_argument(
        "--now", metavar="ISO-8601", help="the current time (default: now); rows before now - retention go"
    )
    add_format(purge)
    purge.set_defaults(func=_run_purge)


def _events_db_option(parser: argparse.ArgumentParser) -> None:
    # --events-db, as `tusk serve` and `tusk experiment report` name the event store (--db is the @query
    # database); --db keeps working with a warning. Required, checked in `_url`: argparse's `required`
    # would refuse the old name.
    parser.add_argument(
        "--events-db", metavar="URL", help="the event store (required): sqlite:///path.db or postgresql://..."
    )
    add_deprecated_alias(parser, "--db", "--events-db")


def _url(args: argparse.Namespace) -> str:
    if not args.events_db:
        raise UsageError("--events-db URL is required (the event store: sqlite:///path.db or postgresql://...)")
    return str(args.events_db)


def _missing_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _fail(exc: TuskError) -> NoReturn:
    """A database problem (unreachable, unsupported URL, newer tables) is an I/O error: exit 2."""
    raise usage_error(exc) from None


def _connect(url: str, *, existing: bool = False) -> Any:
    from ..db.urls import dialect_of, sqlite_path
    from ..events.schema import Connection

    try:
        if existing and dialect_of(url) == "sqlite":
            path = sqlite_path(url)
            if str(path) != ":memory:" and not path.exists():
                # Opening would create an empty database; purging one that does not exist is a typo.
                raise io_error(f"{path}: no such file (create the tables with `tusk db init --events-db URL`)")
        return Connection(url)
    except TuskError as exc:
        _fail(exc)


def _run_init(args: argparse.Namespace) -> int:
    from ..events.schema import init_schema

    with _connect(_url(args)) as conn:
        try:
            version = init_schema(conn)
        except TuskError as exc:
            _fail(exc)
        shown = conn.url
    if args.format == "json":
        print_json({"database": shown, "schema_version": version, "tables": _TABLES})
    else:
        print(f"event tables ready at {shown} (schema version {version})")
    return EXIT_OK


_TABLES = ["tusk_schema", "tusk_events", "tusk_event_drops"]


def parse_retention(text: str) -> timedelta:
    """`90d`, `12h`, `2w`, `30m`, `45s`, or the config language's `"90 days"`."""
    from ..schema.durations import parse_duration

    match = _SHORT.match(text)
    if match:
        period = timedelta(seconds=int(match[1]) * _SHORT_SECONDS[match[2]])
    else:
        try:
            period = parse_duration(text)
        except ValueError:
            raise UsageError(f'--retention: expected a period like 90d, 12h, 2w or "90 days", got {text!r}') from None
    if period <= timedelta(0):
        raise UsageError(f"--retention must be longer than zero, got {text!r}")
    return period


def _config_retention(path: str) -> timedelta:
    from ..events.tracker import tracking_config
    from ..project import Settings, load_project

    # read as `tusk check` reads a project (includes followed, @env read, @query not run), not with loads()
    project = load_project([path], Settings.from_environment(), execute=False, overlays={path: read_text(path)})
    if project.has_errors:
        raise UsageError(f"{path}: cannot read the config:\n{TuskError(project.diagnostics).render()}")
    data = project.merge().data
    try:
        retention = tracking_config(data).retention
    except ValueError as exc:
        raise UsageError(f"{path}: security_config.data_protection.data_retention: {exc}") from None
    if retention is None:
        raise UsageError(f"{path}: no security_config.data_protection.data_retention; pass --retention")
    if retention <= timedelta(0):
        raise UsageError(f"{path}: data_retention must be longer than zero")
    return retention


def _now(text: str | None) -> float:
    if text is None:
        return datetime.now(UTC).timestamp()
    from ..evaluate.client import epoch

    try:
        value = epoch(text)
    except ValueError:
        raise UsageError(f"--now: expected an ISO-8601 time like 2024-05-01T00:00:00Z, got {text!r}") from None
    assert value is not None
    return value


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _run_purge(args: argparse.Namespace) -> int:
    from ..events.schema import purge

    # Deleting data on a guessed default would be worse than refusing: one of the two must say how long.
    if args.retention is not None:
        retention = parse_retention(args.retention)
    elif args.config is not None:
        retention = _config_retention(args.config)
    else:
        raise UsageError("say how much history to keep: --retention 90d, or --config FILE.tsk with data_retention")
    now = _now(args.now)
    cutoff = now - retention.total_seconds()
    with _connect(_url(args), existing=True) as conn:
        try:
            deleted = purge(conn, cutoff)
        except DatabaseError as exc:
            if exc.kind == "missing_table" or "tusk_event" in str(exc):
                raise io_error(f"{one_line(exc)} (run `tusk db init --events-db URL` first)") from None
            _fail(exc)
        shown = conn.url
    if args.format == "json":
        print_json(
            {
                "database": shown,
                "cutoff": _iso(cutoff),
                "retention_seconds": int(retention.total_seconds()),
                "deleted": deleted,
            }
        )
    else:
        print(
            f"deleted {deleted['tusk_events']} events and {deleted['tusk_event_drops']} drop records "
            f"older than {_iso(cutoff)} (retention {_human(retention)}) from {shown}"
        )
    return EXIT_OK


def _human(period: timedelta) -> str:
    seconds = int(period.total_seconds())
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"
