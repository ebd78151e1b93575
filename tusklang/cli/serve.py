"""`tusk serve`: answer OpenFeature Remote Evaluation Protocol (OFREP) requests from a snapshot file.

The file is watched and hot-reloaded; a bad replacement is rejected and the last good snapshot keeps
serving. Access logs go to stderr as JSON lines (context attribute names, never their values). SIGTERM
and Ctrl-C stop gracefully: requests in progress finish, queued events are written, exit 0 (130 for
Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from ._common import EXIT_OK, UsageError, add_command, invalid_snapshot, io_error


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "serve",
        "Serve a JSON snapshot over HTTP with the OpenFeature Remote Evaluation Protocol (OFREP).",
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
        "--auth-token-file",
        default=None,
        metavar="FILE",
        help="require `Authorization: Bearer <token>` on the OFREP routes and /metrics, the tokens one per line "
        "in FILE (re-read when it changes; /health stays open; docs/serve.md#authentication)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="serve from N processes sharing the port (one per core; docs/serve.md#performance) (default: 1)",
    )
    limits = parser.add_argument_group("connection limits (docs/serve.md#timeouts-and-limits)")
    limits.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="close a connection whose request headers are not complete S seconds after it opened (or "
        "after the first byte of a kept-alive connection's next request); a partial request gets 408 (default: 10)",
    )
    limits.add_argument(
        "--body-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="close a connection whose request body is not complete S seconds after its headers (default: 10)",
    )
    limits.add_argument(
        "--keep-alive-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="close a kept-alive connection idle for S seconds between requests (default: 5)",
    )
    limits.add_argument(
        "--max-connections",
        type=int,
        default=1000,
        metavar="N",
        help="with N connections open (or N requests in progress), new requests get 503 (default: 1000)",
    )
    limits.add_argument(
        "--max-header-bytes",
        type=int,
        default=16 * 1024,
        metavar="B",
        help="a request line and headers larger than B bytes get 431 (400 while still incomplete) (default: 16384)",
    )
    limits.add_argument(
        "--shutdown-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="on SIGTERM/Ctrl-C, wait at most S seconds for requests in progress (default: 10)",
    )
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
        "--keyring",
        default=None,
        metavar="FILE",
        help="under access control, apply only overrides signed by its keys (default: $TUSK_KEYRING)",
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


class _Terminated(BaseException):
    """SIGTERM arrived: stop as on Ctrl-C, but it is the normal way to stop a service, so exit 0.

    A BaseException, as KeyboardInterrupt is (and the LSP worker's Cancelled): raised from the signal
    handler wherever start-up happens to be, it must pass the `except Exception` of the layers below."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated


def run(args: argparse.Namespace) -> int:
    # Installed before anything else, so a SIGTERM during start-up also stops cleanly. While uvicorn runs
    # it takes SIGTERM over (a graceful stop: no new connections, requests in progress finish, then the
    # app's lifespan shutdown closes the watchers and flushes the event store), and afterwards re-raises
    # it to this handler, which ends the command with exit 0 instead of death by signal (exit 143).
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        _serve(args)
    except _Terminated:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return EXIT_OK


def _check(args: argparse.Namespace) -> None:
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, not {args.port}")
    if args.max_body_bytes <= 0 or args.watch_interval <= 0:
        raise UsageError("--max-body-bytes and --watch-interval must be positive")
    if args.poll_interval is not None and args.poll_interval <= 0:
        raise UsageError("--poll-interval must be positive")
    for name in ("header_timeout", "body_timeout", "keep_alive_timeout", "shutdown_timeout"):
        if not getattr(args, name) > 0:  # also refuses nan
            raise UsageError(f"--{name.replace('_', '-')} must be a positive number of seconds")
    if args.max_connections < 1 or args.max_header_bytes < 1024:
        raise UsageError("--max-connections must be at least 1 and --max-header-bytes at least 1024")
    if not 1 <= args.workers <= 256:
        raise UsageError(f"--workers must be between 1 and 256, not {args.workers}")


def _serve(args: argparse.Namespace) -> None:
    from ..diagnostics import TuskError
    from ..snapshot import load_snapshot

    _check(args)
    try:  # checked before anything connects, so a bad file is one clear line (exit 2)
        snapshot_bytes = Path(args.snapshot).read_bytes()
        load_snapshot(snapshot_bytes)
    except TuskError as exc:
        raise invalid_snapshot(args.snapshot, exc) from None
    except OSError as exc:
        raise io_error(f"{args.snapshot}: {exc.strerror or exc}") from None
    auth = _auth(args.auth_token_file)
    if args.workers > 1 and not hasattr(os, "fork"):
        raise UsageError("--workers needs a platform with fork(); run one process per port instead")
    from ._listen import bind

    # The port before anything connects: a port in use is one line, exit 2, and nothing was started.
    sock = bind(args.host, args.port)
    try:
        if args.workers == 1:
            _connect_and_run(args, snapshot_bytes, sock, auth)
        else:
            _run_workers(args, snapshot_bytes, sock, auth)
    finally:
        sock.close()


def _auth(path: str | None) -> Any:
    if path is None:
        return None
    from ..serve.auth import TokenAuth, TokenFileError

    try:
        return TokenAuth(path)
    except TokenFileError as exc:
        raise io_error(f"--auth-token-file: {exc}") from None


def _run_workers(args: argparse.Namespace, snapshot_bytes: bytes, sock: socket.socket, auth: Any) -> None:
    """``--workers N``: N forked processes accepting on the one bound socket, each a whole server (its own
    snapshot watcher, override watcher and event store connection). Forked before anything starts a
    thread. SIGTERM or Ctrl-C here stops every worker gracefully; a worker that dies stops the rest,
    so a supervisor (systemd, Kubernetes) sees the server fail and restarts it."""
    metrics_dir = tempfile.mkdtemp(prefix="tusk-serve-metrics-")
    children: dict[int, int] = {}
    parent = os.getpid()
    try:
        for worker in range(args.workers):
            pid = os.fork()
            if pid == 0:  # the worker: serve, then leave without running the parent's cleanup
                code = 1
                try:
                    _stop_with_parent(parent)
                    _connect_and_run(args, snapshot_bytes, sock, auth, worker=worker, metrics_dir=metrics_dir)
                    code = EXIT_OK
                except _Terminated:
                    code = EXIT_OK
                except KeyboardInterrupt:
                    code = 130
                except UsageError as exc:
                    print(f"tusk serve: worker {worker}: {exc}", file=sys.stderr)
                    code = 2
                except BaseException:
                    traceback.print_exc()
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            children[pid] = worker
        _supervise(children)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _stop_with_parent(parent: int) -> None:
    """A worker gets SIGTERM when the parent dies, even by SIGKILL: it must not keep serving the port
    with no one to stop it (Linux; elsewhere the parent's own stop is the only way)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the call above
        raise _Terminated


def _supervise(children: dict[int, int]) -> None:
    stopping: BaseException | None = None
    failed: list[str] = []
    while children:
        try:
            pid, status = os.wait()
        except (_Terminated, KeyboardInterrupt) as exc:  # stop every worker, then stop as they did
            stopping = stopping or exc
            _signal_all(children)
            continue
        except ChildProcessError:
            break
        worker = children.pop(pid, None)
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 130) and stopping is None:
            failed.append(f"worker {worker} exited with {code}")
            stopping = io_error("; ".join(failed) + "; stopping the others")
            _signal_all(children)
    if stopping is not None:
        raise stopping


def _signal_all(children: dict[int, int]) -> None:
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def _connect_and_run(
    args: argparse.Namespace,
    snapshot_bytes: bytes,
    sock: socket.socket,
    auth: Any = None,
    *,
    worker: int = 0,
    metrics_dir: str | None = None,
) -> None:
    overrides = None
    if args.redis:
        from ..overrides import RedisOverrides

        try:
            overrides = RedisOverrides(
                args.redis, prefix=args.prefix, poll_interval=args.poll_interval, keyring=args.keyring
            )
        except ValueError as exc:
            raise UsageError(f"--redis: {exc}") from None
    store, tracker = _tracking(args, snapshot_bytes)
    try:
        _run_server(args, overrides, store, tracker, sock, auth, worker, metrics_dir)
    finally:
        if store is not None:
            store.close()  # idempotent: the app's shutdown normally did it already


def _run_server(
    args: argparse.Namespace,
    overrides: Any,
    store: Any,
    tracker: Any,
    sock: socket.socket,
    auth: Any,
    worker: int,
    metrics_dir: str | None,
) -> None:
    import uvicorn

    from ..diagnostics import TuskError
    from ..serve import ACCESS_LOGGER, create_app
    from ..serve.protocol import TimeoutStats, httptools_protocol_class

    stats = TimeoutStats()
    try:
        app = create_app(
            args.snapshot,
            max_body_bytes=args.max_body_bytes,
            max_header_bytes=args.max_header_bytes,
            watch_interval=args.watch_interval,
            overrides=overrides,
            tracker=tracker,
            event_store=store,
            timeout_stats=stats,
            auth=auth,
            # Queued: formatting and writing the line happen on a thread, off the request path.
            queue_access_log=True,
            metrics_worker=worker,
            metrics_dir=metrics_dir,
        )
    except TuskError as exc:  # the file changed since it was checked
        raise invalid_snapshot(args.snapshot, exc) from None
    except OSError as exc:
        raise io_error(f"{args.snapshot}: {exc.strerror or exc}") from None

    # The snapshot, the compiled evaluator and the imported modules live as long as the process: frozen,
    # the collector's full passes no longer walk them (a pause in some request's latency each time).
    gc.collect()
    gc.freeze()
    # A thread that wants the GIL (the request loop, when the access-log or a watcher thread holds it)
    # gets it within 1 ms instead of 5.
    sys.setswitchinterval(0.001)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in (ACCESS_LOGGER, "tusklang.serve", "tusklang.evaluate", "tusklang.overrides", "tusklang.events"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING if args.quiet and name == ACCESS_LOGGER else logging.INFO)
        logger.propagate = False
    if worker == 0:  # once, not once per worker
        workers = f", {args.workers} workers" if args.workers > 1 else ""
        print(
            f"tusk serve: OFREP on http://{args.host}:{args.port}/ofrep/v1/ ({args.snapshot}{workers})",
            file=sys.stderr,
        )
        if overrides is not None:
            # The prefix, never the URL: a connection string may carry a password.
            state = overrides.status()
            print(f"tusk serve: overrides under {state['prefix']!r} ({state['status']})", file=sys.stderr)
        if store is not None:
            print(f"tusk serve: recording events in {store.url}", file=sys.stderr)
        if auth is not None:
            print(f"tusk serve: bearer tokens required ({auth.token_count} in {auth.path})", file=sys.stderr)
        _warn_about_file_limit(args.max_connections)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        loop=_event_loop(),
        http=httptools_protocol_class(
            args.header_timeout,
            args.body_timeout,
            stats,
            max_header_bytes=args.max_header_bytes,
            service=app.service,
        ),
        limit_concurrency=args.max_connections,
        timeout_keep_alive=args.keep_alive_timeout,
        timeout_graceful_shutdown=args.shutdown_timeout,
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits when the app's startup fails; it logged why
        if exc.code not in (0, None):
            raise io_error(f"cannot serve on {args.host}:{args.port}") from None


def _event_loop() -> str:
    try:
        import uvloop  # noqa: F401  (a dependency, but not built for every platform)
    except ImportError:
        return "asyncio"
    return "uvloop"


def _warn_about_file_limit(max_connections: int) -> None:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return
    if soft != resource.RLIM_INFINITY and soft < max_connections + 64:
        print(
            f"tusk serve: warning: the open-file limit ({soft}) is below --max-connections ({max_connections}) "
            "plus the server's own files; raise it (ulimit -n) or lower --max-connections",
            file=sys.stderr,
        )


def _tracking(args: argparse.Namespace, snapshot: bytes) -> tuple[Any, Any]:
    if not args.events_db:
        return None, None
    from ..events import EventStore, EventTracker

    try:
        store = EventStore(args.events_db)
    except Exception as exc:  # unreachable database, bad URL: a usage problem, without the URL
        raise io_error(f"--events-db: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    try:
        tracker = EventTracker(store, snapshot=snapshot)
    except (ValueError, OSError) as exc:
        store.close()
        raise UsageError(f"--events-db: {exc}") from None
    return store, tracker
