"""`tusk serve`: answer OpenFeature Remote Evaluation Protocol (OFREP) requests from a snapshot file.

The file is watched and hot-reloaded; a bad replacement is rejected and the last good snapshot keeps
serving. Access logs go to stderr as JSON lines (context attribute names, never their values).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from ._common import EXIT_OK, UsageError, add_command


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "serve",
        "serve a JSON snapshot over HTTP with the OpenFeature Remote Evaluation Protocol (OFREP)",
        "tusk serve flags.json --host 127.0.0.1 --port 8016",
    )
    parser.add_argument("snapshot", help="compiled snapshot JSON file (watched and reloaded on change)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8016, help="TCP port (default: 8016)")
    parser.add_argument(
        "--max-body-bytes", type=int, default=64 * 1024, help="larger request bodies get 413 (default: 65536)"
    )
    parser.add_argument(
        "--watch-interval", type=float, default=1.0, help="seconds between snapshot file checks (default: 1)"
    )
    parser.add_argument("--quiet", action="store_true", help="no access log")
    parser.add_argument(
        "--redis",
        default=None,
        metavar="URL",
        help="layer runtime overrides from this Redis (`tusk flags ...`; docs/overrides.md); default: none",
    )
    parser.add_argument(
        "--prefix", default=None, help="override key prefix (default: the snapshot's storage key_prefix)"
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=None,
        help="seconds between override polls besides pub/sub (default: the snapshot's storage ttl, else 300)",
    )
    parser.add_argument(
        "--events-db",
        default=None,
        metavar="URL",
        help="record evaluations and exposures in this event store (`tusk db init`; docs/events.md); "
        "the snapshot's runtime.tracking and data_protection apply (TUSK_PII_KEY for pii_masking)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..diagnostics import TuskError
    from ..serve import ACCESS_LOGGER, create_app

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, not {args.port}")
    if args.max_body_bytes <= 0 or args.watch_interval <= 0:
        raise UsageError("--max-body-bytes and --watch-interval must be positive")
    if args.poll_interval is not None and args.poll_interval <= 0:
        raise UsageError("--poll-interval must be positive")
    overrides = None
    if args.redis:
        from ..overrides import RedisOverrides

        try:
            overrides = RedisOverrides(args.redis, prefix=args.prefix, poll_interval=args.poll_interval)
        except ValueError as exc:
            raise UsageError(f"--redis: {exc}") from None
    store, tracker = _tracking(args)
    try:
        app = create_app(
            args.snapshot,
            max_body_bytes=args.max_body_bytes,
            watch_interval=args.watch_interval,
            overrides=overrides,
            tracker=tracker,
        )
    except TuskError as exc:
        more = f" (+{len(exc.diagnostics) - 1} more)" if len(exc.diagnostics) > 1 else ""
        raise UsageError(f"{args.snapshot}: invalid snapshot: {exc.first.message}{more}") from None
    except OSError as exc:
        raise UsageError(f"{args.snapshot}: {exc.strerror or exc}") from None

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in (ACCESS_LOGGER, "tusklang.evaluate", "tusklang.overrides"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING if args.quiet and name == ACCESS_LOGGER else logging.INFO)
        logger.propagate = False
    print(f"tusk serve: OFREP on http://{args.host}:{args.port}/ofrep/v1/ ({args.snapshot})", file=sys.stderr)
    if overrides is not None:
        # The prefix, never the URL: a connection string may carry a password.
        state = overrides.status()
        print(f"tusk serve: overrides under {state['prefix']!r} ({state['status']})", file=sys.stderr)
    if store is not None:
        print(f"tusk serve: recording events in {store.url}", file=sys.stderr)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    finally:
        if store is not None:
            store.close()  # flushes what is queued
    return EXIT_OK


def _tracking(args: argparse.Namespace) -> tuple[Any, Any]:
    if not args.events_db:
        return None, None
    from pathlib import Path

    from ..events import EventStore, EventTracker

    try:
        store = EventStore(args.events_db)
    except Exception as exc:  # unreachable database, bad URL: a usage problem, without the URL
        raise UsageError(f"--events-db: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    try:
        tracker = EventTracker(store, snapshot=Path(args.snapshot).read_bytes())
    except (ValueError, OSError) as exc:
        store.close()
        raise UsageError(f"--events-db: {exc}") from None
    return store, tracker
