"""Where the warm check server listens, whether to use it, and the messages client and server exchange.

Imported by the `tusk` script before anything else of tusklang: standard-library C modules only.

The request is a 4-byte length, then the caller's state as ``marshal`` data (both ends are the same
interpreter: the socket's name is derived from it). The child answers STARTED; the client then sends GO
with its standard input, output and error attached as file descriptors (SCM_RIGHTS), and the child answers
EXITED when the check is over. Each reply is 5 bytes: a kind and a signed 32-bit number.
"""

from __future__ import annotations

import os
import struct
import sys

TYPE_CHECKING = False  # typing is not imported at run time (the script's start-up)
if TYPE_CHECKING:
    import _socket
    from collections.abc import Mapping

# TUSK_CHECK_SERVER: unset or "1" uses a running server and starts one for the next check; "0" never does
# either; "required" uses a running server and fails (exit 2) when none answers (what the start-up benchmark
# and the tests use to measure and prove the warm path).
MODE_ENV = "TUSK_CHECK_SERVER"
# Seconds a server waits for a check before it exits (default 600).
IDLE_ENV = "TUSK_CHECK_SERVER_IDLE"
DEFAULT_IDLE = 600.0

OFF, ON, REQUIRED = "off", "on", "required"

# Replies: the child running the check (its pid, which the client signals on Ctrl-C), the check's exit
# code, or "this server is older than the installed code: run the check yourself".
STARTED, EXITED, STALE = b"P", b"X", b"S"
# The client's answer to STARTED: run it. A client that gave up waiting closes instead, and the child
# exits without running anything, so a check never runs twice (there, and in the calling process).
GO = b"G"
# Seconds the client waits for STARTED before it runs the check itself (a server stopped or swamped).
START_TIMEOUT = 3.0
REPLY = struct.Struct("!ci")
LENGTH = struct.Struct("!I")
MAX_REQUEST = 64 * 1024 * 1024  # an environment and arguments, never near this


def mode(environ: Mapping[str, str] = os.environ) -> str:
    """What TUSK_CHECK_SERVER asks for. Linux only: the server forks, and passes descriptors over a socket."""
    value = environ.get(MODE_ENV, "").strip().lower()
    if value in {"0", "off", "no", "false"} or not sys.platform.startswith("linux"):
        return OFF
    return REQUIRED if value == "required" else ON


def idle_seconds(environ: Mapping[str, str] = os.environ) -> float:
    try:
        value = float(environ.get(IDLE_ENV, ""))
    except ValueError:
        return DEFAULT_IDLE
    return value if value > 0 else DEFAULT_IDLE


def folder(environ: Mapping[str, str] = os.environ) -> str:
    """The user's runtime folder (`$XDG_RUNTIME_DIR/tusklang`), else `/tmp/tusklang-<uid>`, as tmux does.
    Socket paths are limited to ~100 bytes, which rules out the cache folder."""
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return os.path.join(runtime, "tusklang")
    return f"/tmp/tusklang-{os.geteuid()}"


def is_private(path: str) -> bool:
    """A folder only this user can enter: another user's socket there could answer with their code."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (info.st_mode & 0o170000) == 0o040000 and info.st_uid == os.geteuid() and not info.st_mode & 0o077


def socket_path(environ: Mapping[str, str] = os.environ) -> str:
    """One server per interpreter and import path: a server answers only for the code this `tusk` would
    import (a virtualenv, another Python or a PYTHONPATH gets its own)."""
    from _blake2 import blake2b

    identity = repr((sys.executable, sys.version, sys.path, sys.flags)).encode("utf-8", "surrogatepass")
    return os.path.join(folder(environ), f"check-{blake2b(identity, digest_size=8).hexdigest()}.sock")


def reply(kind: bytes, value: int) -> bytes:
    return REPLY.pack(kind, value)


def read_exact(sock: _socket.socket, size: int) -> bytes | None:
    """The next ``size`` bytes, or None when the other end closed first."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(min(size - len(data), 1 << 20))
        if not chunk:
            return None
        data += chunk
    return data


def read_reply(sock: _socket.socket) -> tuple[bytes, int] | None:
    """The next reply, or None when the other end closed first."""
    data = read_exact(sock, REPLY.size)
    if data is None:
        return None
    kind, value = REPLY.unpack(data)
    return kind, value
