"""The warm process: import and build what `tusk check` needs once, then fork a child per check.

Started by the `tusk` script after a check it had to run itself (tusklang/warm/client.py), one per
interpreter and import path. It exits after TUSK_CHECK_SERVER_IDLE seconds without a check (default 600),
on SIGTERM, or when a check finds that the installed code changed since it started (that check, and the
next, run in the calling process; the one after starts a new server).

A child takes on the caller's arguments, working folder, environment, umask and standard streams before it
runs `tusklang.cli.main`, so the check is the one the command line would run; the caller's user is checked
on the socket (SO_PEERCRED) and the socket lives in a folder only that user can enter.
"""

from __future__ import annotations

import fcntl
import gc
import io
import marshal
import os
import signal
import socket
import struct
import sys

from . import wire

# A check of this text builds the parser's tables, the interpreter and the validators of the flag blocks
# and their rules (pydantic builds a model's validator on first use); what it leaves out is built by the
# first check that needs it, in that check's child.
WARM_UP = """\
feature_flags = {
    defaults = { rollout_strategy = "percentage", environment = "production" }
    flags = {
        plain = { enabled = true, rollout_percentage = 50, metadata = { owner = "a", description = "b" } }
        layout = {
            variants = { compact = { rows = 50 }, roomy = { rows = 20 } }
            fallback = "roomy"
            rules = [
                { id = "nl", when = { attribute = "country", op = "in", values = ["NL"] }, serve = "compact" },
                { when = { any = [{ attribute = "v", op = "semver_ge", value = "2.0.0" }] }, rollout = 25 },
            ]
        }
    }
}
"""


def main(path: str) -> None:
    folder = os.path.dirname(path)
    os.chdir("/")  # hold no folder of the caller's
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return
    if not wire.is_private(folder):
        return
    lock = _lock(path + ".lock")
    if lock is None:
        return  # another server for this interpreter is starting or running
    _warm_up()
    installed = _fingerprint()
    listener = _listen(path)
    os.ftruncate(lock, 0)
    os.write(lock, f"{os.getpid()}\n".encode())
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    listener.settimeout(wire.idle_seconds())
    # What the warm-up built is kept out of the collector's passes: a child never walks or copies it.
    gc.freeze()
    try:
        _serve(listener, lock, installed)
    except _Stopped:
        pass
    finally:
        os.unlink(path)  # the lock is still held: the path is this server's
        listener.close()


class _Stopped(BaseException):
    """SIGTERM: stop accepting; a child already running its check goes on to the end."""


def _stop(signum: int, frame: object) -> None:
    raise _Stopped


def _lock(path: str) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _listen(path: str) -> socket.socket:
    try:
        os.unlink(path)  # left by a server that was killed: the lock says none runs
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        listener.bind(path)
    finally:
        os.umask(old)
    listener.listen(64)
    return listener


def _warm_up() -> None:
    """Run one check (of WARM_UP, from a pipe, with no findings cache) through the command line's code."""
    from tusklang.cli import main as cli_main

    read, write = os.pipe()
    os.write(write, WARM_UP.encode())
    os.close(write)
    saved = {fd: os.dup(fd) for fd in (0, 1, 2)}
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(read, 0)
    os.dup2(null, 1)
    os.dup2(null, 2)
    environ = dict(os.environ)
    os.environ["TUSK_NO_CACHE"] = "1"
    try:
        cli_main(["check", "-"])
    except BaseException:  # a failed warm-up leaves the work to the first check
        pass
    finally:
        os.environ.clear()
        os.environ.update(environ)
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        os.close(read)
        os.close(null)


def _fingerprint() -> tuple[tuple[str, int, int], ...]:
    """The files this process runs: tusklang's loaded modules and grammar, and each import folder (whose
    time changes when a package is installed, upgraded or removed)."""
    import tusklang
    from tusklang.syntax.parser import grammar_paths

    root = os.path.dirname(tusklang.__file__)
    files = {getattr(module, "__file__", None) or "" for module in list(sys.modules.values())}
    paths = sorted(name for name in files if name.startswith(root + os.sep))
    paths += grammar_paths()
    paths.extend(entry for entry in sys.path if entry and os.path.isdir(entry))
    stamps = []
    for name in paths:
        try:
            info = os.stat(name)
        except OSError:
            stamps.append((name, -1, -1))
        else:
            stamps.append((name, info.st_mtime_ns, info.st_size))
    return tuple(stamps)


_CREDENTIALS = struct.Struct("3i")
_INT = struct.Struct("i")


def _serve(listener: socket.socket, lock: int, installed: tuple[tuple[str, int, int], ...]) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            return
        with conn:
            _pid, uid, _gid = _CREDENTIALS.unpack(
                conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
            )
            if uid != os.geteuid():
                continue
            if _fingerprint() != installed:
                conn.sendall(wire.reply(wire.STALE, 0))
                return
            if os.fork() == 0:
                # The child never returns into main's cleanup (which would remove the server's socket).
                try:
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                    listener.close()
                    os.close(lock)
                    _child(conn)
                finally:
                    os._exit(2)


def _child(conn: socket.socket) -> None:
    code = 2
    try:
        request = _receive(conn)
        conn.sendall(wire.reply(wire.STARTED, os.getpid()))
        descriptors = _streams(conn)
        if descriptors is None:
            os._exit(0)  # the client gave up waiting and runs the check itself
        code = _run(request, descriptors)
    except BaseException:  # the client reports a child that ends without a code
        os._exit(code)
    try:
        conn.sendall(wire.reply(wire.EXITED, code))
    finally:
        os._exit(code)


def _receive(conn: socket.socket) -> tuple:  # type: ignore[type-arg]
    """The caller's state: a 4-byte length, then marshal data."""
    head = wire.read_exact(conn, wire.LENGTH.size)
    if head is None:
        raise ConnectionError("a request cut short")
    (length,) = wire.LENGTH.unpack(head)
    if length > wire.MAX_REQUEST:
        raise ConnectionError("a request too long")
    body = wire.read_exact(conn, length)
    if body is None:
        raise ConnectionError("a request cut short")
    return marshal.loads(body)  # type: ignore[no-any-return]


def _streams(conn: socket.socket) -> list[int] | None:
    """GO and the caller's descriptors 0-2, or None when the client closed instead."""
    data, ancillary, _flags, _address = conn.recvmsg(1, socket.CMSG_SPACE(3 * _INT.size))
    descriptors: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % _INT.size
            descriptors.extend(struct.unpack(f"{usable // _INT.size}i", payload[:usable]))
    if data != wire.GO or len(descriptors) != 3:
        for fd in descriptors:
            os.close(fd)
        return None
    return descriptors


def _run(request: tuple, descriptors: list[int]) -> int:  # type: ignore[type-arg]
    argv0, argv, cwd, environ, umask, streams = request
    for target, fd in enumerate(descriptors):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(environ)
    os.umask(umask)
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv = [argv0, *argv]
    _reopen_streams(streams)
    try:
        os.chdir(cwd)
    except OSError as exc:
        print(f"tusk: cannot enter the working folder {cwd}: {exc.strerror}", file=sys.stderr)
        return 2
    gc.enable()
    try:
        return _exit_code(argv)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass


def _exit_code(argv: list[str]) -> int:
    """What the interpreter's exit status would be for `tusk ARGV`."""
    from tusklang.cli import main as cli_main

    try:
        return int(cli_main(argv) or 0)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BaseException:  # printed as the interpreter prints an uncaught exception
        sys.excepthook(*sys.exc_info())
        return 1


def _reopen_streams(streams: tuple) -> None:  # type: ignore[type-arg]
    """Standard streams over descriptors 0-2 with the caller's encodings and buffering."""
    for fd, (name, mode, settings) in enumerate(
        (("stdin", "rb", streams[0]), ("stdout", "wb", streams[1]), ("stderr", "wb", streams[2]))
    ):
        encoding, errors, line_buffering, write_through = settings or ("utf-8", "strict", False, False)
        raw = io.FileIO(fd, mode, closefd=False)
        buffered = io.BufferedReader(raw) if mode == "rb" else io.BufferedWriter(raw)
        stream = io.TextIOWrapper(
            buffered,
            encoding=encoding,
            errors=errors,
            newline="\n",
            line_buffering=line_buffering,
            write_through=write_through,
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
