"""Bind a server's port before the server starts: a port in use is one line and exit 2.

uvicorn binds inside `Server.run`, logs the OSError on its own logger and calls `sys.exit(3)`. Binding
here first (the way uvicorn does: SO_REUSEADDR, IPv6 when the host has a `:`) and handing uvicorn the
socket means the command knows the port is ours before it says it is serving, and says why it is not
in one line of its own.
"""

from __future__ import annotations

import socket

from ._common import io_error


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except (OSError, OverflowError) as exc:  # in use, no such address, not allowed; a name that does not resolve
        sock.close()
        shown = f"[{host}]" if ":" in host else host
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise io_error(f"cannot listen on {shown}:{port}: {reason.lower()}") from None
    sock.set_inheritable(True)
    return sock
