"""uvicorn's h11 protocol with deadlines for receiving a request, which uvicorn does not have.

uvicorn's only timeout on an open connection is ``timeout_keep_alive``, armed after a response and
cancelled by the next byte received: a client that sends a request a byte at a time (slowloris), or
opens a connection and sends nothing, or sends headers and then a body that never ends, holds its
connection (and a slot of ``limit_concurrency``) for ever. ASGI middleware cannot help: the app is only
called once the headers are complete. (uvicorn issue #157 lists ``--timeout-request-start`` as not
done.) So this subclass adds two absolute deadlines:

- ``header_timeout``: from the moment the server waits for a request (the connection opened, or the
  first byte of the next request on a kept-alive connection) until its headers are complete. On expiry a
  partly received request gets ``408 Request Timeout``; a connection that sent nothing is just closed.
- ``body_timeout``: from the headers until the end of the body. On expiry the connection is closed (the
  handler sees the client gone and answers nobody).

Both are deadlines, not idle timers: trickling bytes does not extend them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("tusklang.serve")

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 10.0

_TIMEOUT_BODY = b"request headers not received in time"
_TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class TimeoutStats:
    """Connections closed by each deadline (shared by every connection of one server), and a log line at
    most every ``log_every`` seconds so a flood of slow clients does not flood the log."""

    def __init__(self, log_every: float = 10.0) -> None:
        self.header_timeouts = 0
        self.body_timeouts = 0
        self._log_every = log_every
        self._last_log = -1e9

    def count(self, phase: str, timeout: float) -> None:
        if phase == "headers":
            self.header_timeouts += 1
        else:
            self.body_timeouts += 1
        now = time.monotonic()
        if now - self._last_log >= self._log_every:
            self._last_log = now
            log.warning(
                "closed a connection whose request %s did not arrive within %g s "
                "(so far: %d without headers, %d without a body)",
                phase,
                timeout,
                self.header_timeouts,
                self.body_timeouts,
            )

    def as_dict(self) -> dict[str, int]:
        return {"header_timeouts": self.header_timeouts, "body_timeouts": self.body_timeouts}


class DeadlineH11Protocol(H11Protocol):
    """``H11Protocol`` plus the two request deadlines; configure with ``protocol_class``."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    stats: TimeoutStats = TimeoutStats()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._phase: str | None = None  # "headers" or "body" while a deadline runs
        self._received = False  # bytes of the current request seen (decides between 408 and a close)

    # --- the deadlines -----------------------------------------------------------------------------

    def _arm(self, phase: str) -> None:
        self._disarm()
        timeout = self.header_timeout if phase == "headers" else self.body_timeout
        self._phase = phase
        self._deadline = self.loop.call_later(timeout, self._expired, phase, timeout)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = None

    def _expired(self, phase: str, timeout: float) -> None:
        self._deadline = None
        self._phase = None
        if self.transport is None or self.transport.is_closing():
            return
        self.stats.count(phase, timeout)
        if phase == "headers" and self._received and self.conn.their_state is h11.IDLE:
            # Half a request: say why before closing. (h11 cannot send a response before it has parsed
            # a request, so these few bytes are written directly.)
            self.transport.write(_TIMEOUT_408)
        self.transport.close()

    def _follow(self) -> None:
        """Move the deadline along with what h11 has parsed of the current request."""
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._phase is None and self._received:
                self._arm("headers")
        elif state is h11.SEND_BODY:
            if self._phase != "body":
                self._arm("body")
        else:  # DONE, MUST_CLOSE, CLOSED, ERROR: the request is in (or the connection is over)
            self._disarm()
            self._received = False

    # --- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A fresh connection must send its headers in time too: one that sends nothing would otherwise
        # be held for ever (uvicorn arms keep-alive only after a first response).
        self._arm("headers")

    def data_received(self, data: bytes) -> None:
        if data and self.conn.their_state is h11.IDLE:
            self._received = True
            if self._phase is None:
                self._arm("headers")
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next request, if already buffered (pipelining), has been parsed by now.
        self._received = bool(self.conn.trailing_data[0])
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def protocol_class(
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    stats: TimeoutStats | None = None,
) -> type[DeadlineH11Protocol]:
    """A ``DeadlineH11Protocol`` subclass with these settings, for ``uvicorn.Config(http=...)``."""
    if not (header_timeout > 0 and body_timeout > 0):
        raise ValueError("header_timeout and body_timeout must be positive")
    return type(
        "ConfiguredDeadlineH11Protocol",
        (DeadlineH11Protocol,),
        {"header_timeout": header_timeout, "body_timeout": body_timeout, "stats": stats or TimeoutStats()},
    )
