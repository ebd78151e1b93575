"""`tusk db init|purge|erase|export`: the event tables, data retention, and a data subject's erasure and
export (docs/events.md)."""

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
    UsageError,
    add_command,
    add_deprecated_alias,
    add_format,
    io_error,
    missing_subcommand,
    now_seconds,
    print_json,
    read_text,
    write_atomic,
)
from ._db_errors import one_line, usage_error

_SHORT = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_SHORT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "db",
        "The event store's tables: create them, purge old events, erase or export a unit's events.",
        "tusk db init --events-db sqlite:///events.db",
    )
    nested = parser.add_subparsers(dest="db_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: missing_subcommand(parser))

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

    erase = add_command(
        nested,
        "erase",
        "delete every event of the given units from every table of the event store and record the erasure "
        "(without any id); under pii_masking the ids' keyed hashes (TUSK_PII_KEY) are matched too",
        "tusk db erase --events-db sqlite:///events.db --units-file request-117.txt --request GDPR-117",
    )
    _events_db_option(erase)
    _unit_options(erase)
    erase.add_argument(
        "--request",
        metavar="REF",
        help="a reference for the erasure record, e.g. the ticket: GDPR-2024-117 (letters, digits, . _ : / # -)",
    )
    erase.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    add_format(erase)
    erase.set_defaults(func=_run_erase)

    export = add_command(
        nested,
        "export",
        "every event of the given units as JSON (data portability); under pii_masking the ids' keyed hashes "
        "(TUSK_PII_KEY) are matched too",
        "tusk db export --events-db sqlite:///events.db --unit u123 --format json -o u123.json",
    )
    _events_db_option(export)
    _unit_options(export)
    export.add_argument("-o", "--output", help="write the export to this file (atomically) instead of stdout")
    add_format(export, "json", default="json")
    export.set_defaults(func=_run_export)


def _events_db_option(parser: argparse.ArgumentParser) -> None:
    # --events-db, as `tusk serve` and `tusk experiment report` name the event store (--db is the @query
    # database); --db keeps working with a warning. Required, checked in `_url`: argparse's `required`
    # would refuse the old name.
    parser.add_argument(
        "--events-db", metavar="URL", help="the event store (required): sqlite:///path.db or postgresql://..."
    )
    add_deprecated_alias(parser, "--db", "--events-db")


def _unit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--unit",
        action="append",
        default=[],
        metavar="ID",
        help="a unit id as the application knows it (user id, account id); repeatable",
    )
    parser.add_argument(
        "--units-file",
        metavar="FILE",
        help="unit ids, one per line ('-' for stdin): keeps them out of the shell history and `ps`",
    )
    parser.add_argument(
        "--config",
        metavar="FILE.tsk",
        help="the project's config: with security_config.data_protection.pii_masking on, TUSK_PII_KEY is "
        "required (a store of keyed hashes cannot be matched without it)",
    )


def _url(args: argparse.Namespace) -> str:
    if not args.events_db:
        raise UsageError("--events-db URL is required (the event store: sqlite:///path.db or postgresql://...)")
    return str(args.events_db)


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


_TABLES = ["tusk_schema", "tusk_events", "tusk_event_drops", "tusk_erasures"]


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


def _config_data(path: str) -> dict[str, Any]:
    from ..project import Settings, load_project

    # read as `tusk check` reads a project (includes followed, @env read, @query not run), not with loads()
    project = load_project([path], Settings.from_environment(), execute=False, overlays={path: read_text(path)})
    if project.has_errors:
        raise UsageError(f"{path}: cannot read the config:\n{TuskError(project.diagnostics).render()}")
    return project.merge().data


def _config_retention(path: str) -> timedelta:
    from ..events.tracker import tracking_config

    data = _config_data(path)
    try:
        retention = tracking_config(data).retention
    except ValueError as exc:
        raise UsageError(f"{path}: security_config.data_protection.data_retention: {exc}") from None
    if retention is None:
        raise UsageError(f"{path}: no security_config.data_protection.data_retention; pass --retention")
    if retention <= timedelta(0):
        raise UsageError(f"{path}: data_retention must be longer than zero")
    return retention


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
    now = now_seconds(args.now)
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


# --- a data subject's rights: erase, export ---------------------------------------------------------


def _units(args: argparse.Namespace) -> list[str]:
    from ..events.privacy import MAX_UNITS

    units = [str(u) for u in args.unit]
    if args.units_file is not None:
        units += [line.strip() for line in read_text(args.units_file).splitlines() if line.strip()]
    if not units:
        raise UsageError("name the units: --unit ID (repeatable) or --units-file FILE")
    if any(not u for u in units):
        raise UsageError("--unit: a unit id is empty")
    if len(units) > MAX_UNITS:
        raise UsageError(f"at most {MAX_UNITS} unit ids per run, got {len(units)}: split the list")
    return list(dict.fromkeys(units))


def _masker(args: argparse.Namespace) -> Any:
    """The keyed hash of unit ids, when a key is at hand; required when --config says pii_masking is on."""
    import os

    from ..events.masking import ENV_KEY, Masker, MaskingKeyError

    required = False
    if args.config is not None:
        from ..events.tracker import tracking_config

        try:
            required = bool(tracking_config(_config_data(args.config)).pii_masking)
        except ValueError as exc:
            raise UsageError(f"{args.config}: {exc}") from None
    if not os.environ.get(ENV_KEY) and not required:
        return None
    try:
        return Masker()
    except MaskingKeyError as exc:
        why = f" ({args.config} turns pii_masking on: the stored ids are keyed hashes)" if required else ""
        raise io_error(f"{one_line(exc)}{why}", exc.first.code) from None


def _no_key_note(masker: Any) -> None:
    if masker is None:
        print(
            "note: TUSK_PII_KEY is not set, so only ids stored in clear were matched; events recorded under "
            "pii_masking need the key (pass --config FILE.tsk to make it required)",
            file=sys.stderr,
        )


def _run_erase(args: argparse.Namespace) -> int:
    from ..events.privacy import erase_units

    units = _units(args)
    if args.request is not None:
        from ..events.privacy import valid_request

        if not valid_request(args.request):
            raise UsageError(
                "--request: a ticket-like reference (letters, digits, . _ : / # -; at most 64 characters); "
                "the erasure record must not hold personal data"
            )
    masker = _masker(args)
    now = now_seconds(None)
    with _connect(_url(args), existing=True) as conn:
        try:
            erasure = erase_units(conn, units, masker=masker, now=now, request=args.request, dry_run=args.dry_run)
        except DatabaseError as exc:
            if exc.kind == "missing_table":
                raise io_error(f"{one_line(exc)} (run `tusk db init --events-db URL` first)") from None
            _fail(exc)
        shown = conn.url
    _no_key_note(masker)
    if args.format == "json":
        print_json(
            {
                "database": shown,
                "dry_run": args.dry_run,
                "units": erasure.units,
                "deleted": erasure.deleted,
                "masked_forms_matched": erasure.masked_forms,
                "erasure_record": erasure.record_id,
                "erased_at": _iso(erasure.erased_at),
            }
        )
    else:
        verb = "would delete" if args.dry_run else "deleted"
        tables = ", ".join(f"{table} {count}" for table, count in erasure.deleted.items())
        forms = "ids and their keyed hashes" if erasure.masked_forms else "ids in clear only"
        record = f"; erasure record {erasure.record_id}" if erasure.record_id is not None else ""
        print(f"{verb} {erasure.total} rows of {erasure.units} units ({tables}; matched {forms}) from {shown}{record}")
    return EXIT_OK


def _run_export(args: argparse.Namespace) -> int:
    from ..events.privacy import dumps, export_document, export_units

    units = _units(args)
    masker = _masker(args)
    with _connect(_url(args), existing=True) as conn:
        try:
            events = export_units(conn, units, masker=masker)
        except DatabaseError as exc:
            if exc.kind == "missing_table":
                raise io_error(f"{one_line(exc)} (run `tusk db init --events-db URL` first)") from None
            _fail(exc)
    _no_key_note(masker)
    text = dumps(export_document(events, units, masker is not None, now_seconds(None)))
    if args.output:
        write_atomic(args.output, text)
        print(f"wrote {args.output}: {len(events)} events of {len(units)} units", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK
