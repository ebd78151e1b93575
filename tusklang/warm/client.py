"""The `tusk` script's side: hand `tusk check` to a warm server, or start one for the next check.

Only C modules of the standard library are imported here: a check the server answers costs the
interpreter's start, this module and one round trip (docs/lint.md, "A warm check").
"""

from __future__ import annotations

import _socket
import marshal
import os
import sys

from . import wire

# What a child needs to run the check as this process would: file descriptors 0, 1 and 2 go beside it.
_STREAMS = ("stdin", "stdout", "stderr")


def forward(argv: list[str], path: str) -> int | None:
    """The exit code of `tusk ARGV` run by the warm server listening at ``path`` (its output written to
    this process's streams), or None when no server took it: none runs, it is stale, or a stream is closed."""
    try:
        if not wire.is_private(os.path.dirname(path)):
            return None
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    except OSError:
        return None
    try:
        try:
            sock.settimeout(wire.START_TIMEOUT)
            sock.connect(path)
            _send_request(sock, argv)
            first = wire.read_reply(sock)
            if first is None or first[0] != wire.STARTED:
                return None  # stale (it exits now) or gone: run here
            # The streams go with GO, only to a child that is there to take them: descriptors queued on a
            # socket nobody reads would hold this process's pipes open after it ends.
            sock.sendmsg([wire.GO], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, _descriptors())])
            sock.settimeout(None)
        except OSError:  # a timeout, or a closed stream (EBADF): the child sees the socket close, runs nothing
            return None
        return _await_exit(sock, first[1])
    finally:
        sock.close()


def _send_request(sock: _socket.socket, argv: list[str]) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    streams = tuple(_stream_settings(getattr(sys, name)) for name in _STREAMS)
    payload = marshal.dumps((sys.argv[0], argv, os.getcwd(), dict(os.environ), umask, streams))
    sock.sendall(wire.LENGTH.pack(len(payload)) + payload)


def _descriptors() -> bytes:
    import array

    return array.array("i", (0, 1, 2)).tobytes()


def _stream_settings(stream: object) -> tuple[str, str, bool, bool] | None:
    """Encoding, error handler and buffering of one of this process's standard streams, for the child's."""
    try:
        return (stream.encoding, stream.errors, stream.line_buffering, stream.write_through)  # type: ignore[attr-defined]
    except AttributeError:
        return None


def _await_exit(sock: _socket.socket, child: int) -> int:
    """Wait for the child's exit code; Ctrl-C, a hang-up or a TERM sent to this process go to the child."""
    import signal

    def relay(signum: int, frame: object) -> None:
        try:
            os.kill(child, signum)
        except OSError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, relay)
    try:
        done = wire.read_reply(sock)
    except OSError:
        done = None
    if done is None or done[0] != wire.EXITED:
        print(
            "tusk: the warm check server stopped before the check ended (TUSK_CHECK_SERVER=0 runs it here)",
            file=sys.stderr,
        )
        return 2
    return done[1]


def start_server(path: str) -> None:
    """Start a server at ``path`` for the next `tusk check`, detached from this process, its terminal and
    its folder.

    It gets this interpreter, import path and environment. Errors are ignored: the check has run already,
    and without a server the next one runs here again.
    """
    code = f"import sys; sys.path[:] = {sys.path!r}; from tusklang.warm.server import main; main({path!r})"
    devnull = os.devnull
    try:
        os.posix_spawn(
            sys.executable,
            [sys.executable, "-c", code],
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0),
            ],
            setsid=True,
        )
    except OSError:
        pass
