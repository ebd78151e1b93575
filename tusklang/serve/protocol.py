"""uvicorn's protocols with deadlines for receiving a request, which uvicorn does not have.

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
import urllib.parse
from typing import Any

import h11
import httptools
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .handler import BULK
from .service import Service

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


# --- httptools (what `tusk serve` runs) ---------------------------------------------------------------

_HEADERS_TOO_LARGE = b'{"errorCode":"GENERAL","errorDetails":"request headers too large"}'
_STATUS_LINES = {
    status: f"HTTP/1.1 {status} {phrase}\r\n".encode("ascii")
    for status, phrase in (
        (200, "OK"),
        (304, "Not Modified"),
        (400, "Bad Request"),
        (401, "Unauthorized"),
        (404, "Not Found"),
        (408, "Request Timeout"),
        (413, "Content Too Large"),
        (415, "Unsupported Media Type"),
        (431, "Request Header Fields Too Large"),
        (500, "Internal Server Error"),
    )
}


# request target (bytes) -> (decoded path, route or None, raw path, query): clients ask for the same few
# flags over and over, so parsing and decoding the target is done once per distinct target. Bounded in
# entries and in the length of a target kept (a long query string is parsed each time).
_TARGETS: dict[bytes, tuple[str, str | None, bytes, bytes]] = {}
_TARGETS_LIMIT = 4096
_TARGET_BYTES = 256


def _target(url: bytes) -> tuple[str, str | None, bytes, bytes]:
    parsed = httptools.parse_url(url)
    path = parsed.path.decode("ascii", "replace")
    if "%" in path:
        path = urllib.parse.unquote(path)
    target = (path, Service.fast_route("POST", path), parsed.path, parsed.query or b"")
    if len(url) <= _TARGET_BYTES:
        if len(_TARGETS) >= _TARGETS_LIMIT:
            _TARGETS.clear()
        _TARGETS[url] = target
    return target


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the same two deadlines as ``DeadlineH11Protocol``, a limit on
    incomplete request headers, and the evaluation routes answered from the parser callbacks.

    Deadlines: a timer is armed only when a phase (headers, body) is still incomplete after the bytes
    at hand are parsed, at the phase's start plus its timeout, so a request that arrives in one read,
    the usual case, arms none. Fast path: with ``service`` set, ``POST`` to an evaluation route is
    answered by ``Service.answer`` in ``on_message_complete`` and written to the transport, without
    an ASGI task; anything unusual about the request (pipelined behind an unfinished one, ``Expect``,
    an upgrade, over the concurrency limit, headers over the limit) takes uvicorn's ASGI path instead.
    """

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    max_header_bytes: int = 16 * 1024
    stats: TimeoutStats = TimeoutStats()
    service: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._phase: str | None = None  # "headers" or "body" while a request is incomplete
        self._phase_started = 0.0
        self._head_bytes = 0
        self._received = False  # bytes of the current request seen (408 rather than a silent close)
        self._fast: str | None = None  # the route of the request being answered by the fast path
        self._fast_body: list[bytes] = []
        self._fast_size = 0
        self._fast_too_large = False
        self._fast_started = 0.0
        self._fast_path = ""
        self._fast_keep_alive = True
        self._closing = False
        self._idle_timer: asyncio.TimerHandle | None = None
        self._pipelined = False  # the current request's bytes came in the read of the one before
        self._last_answer = 0.0
        self._last_data = 0.0
        self._defaults: list[tuple[bytes, bytes]] | None = None  # server_state.default_headers, as encoded
        self._defaults_bytes = b""

    # --- the deadlines -------------------------------------------------------------------------------

    def _start(self, phase: str) -> None:
        self._phase = phase
        self._phase_started = self.loop.time()
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _arm_if_incomplete(self) -> None:
        phase = self._phase
        if phase is None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            return
        if self._deadline is None:
            timeout = self.header_timeout if phase == "headers" else self.body_timeout
            self._deadline = self.loop.call_at(self._phase_started + timeout, self._expired, phase, timeout)

    def _idle_check(self) -> None:
        self._idle_timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if (
            self._phase is not None
            or self._fast is not None
            or (self.cycle is not None and not self.cycle.response_complete)
        ):
            return  # a request is in progress: its deadlines, then its answer, take over
        if self.timeout_keep_alive_task is not None:
            return  # the ASGI path answered last: uvicorn's own keep-alive timer runs
        due = max(self._last_answer, self._last_data) + self.timeout_keep_alive
        if self.loop.time() >= due:
            transport.close()
        else:
            self._idle_timer = self.loop.call_at(due, self._idle_check)

    def _expired(self, phase: str, timeout: float) -> None:
        self._deadline = None
        if self._phase != phase or self.transport is None or self.transport.is_closing():
            return
        self._phase = None
        self.stats.count(phase, timeout)
        if phase == "headers" and self._received:
            self.transport.write(_TIMEOUT_408)  # half a request: say why before closing
        if self._fast is not None:  # a body that never arrived: logged as 408, answered to nobody
            self.service.finish("POST", self._fast_path, 408, self._fast_started, {})
            self._fast = None
        self.transport.close()

    # --- asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A fresh connection must send its headers in time too: one that sends nothing would otherwise
        # be held for ever (uvicorn arms keep-alive only after a first response).
        self._start("headers")
        self._received = False
        self._arm_if_incomplete()

    def data_received(self, data: bytes) -> None:
        phase = self._phase
        if phase is None:  # the first byte of the next request
            self._phase = phase = "headers"
            self._phase_started = self._last_data = self.loop.time()
            self._head_bytes = 0
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
        if phase == "headers":
            self._received = True
            self._head_bytes += len(data)
            self._pipelined = False
        # uvicorn's data_received, inlined: two calls less on every read.
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        phase = self._phase
        if phase is None:  # the usual case: the whole request was in this read
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            return
        if phase == "headers" and self._head_bytes > self.max_header_bytes and not self.transport.is_closing():
            # Still incomplete past the limit: refuse before buffering more of it.
            self._reply(431, [(b"content-type", b"application/json")], _HEADERS_TOO_LARGE, keep_alive=False)
            return
        self._arm_if_incomplete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._phase = None
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._fast is not None:
            self.service.finish("POST", self._fast_path, 408, self._fast_started, {})
            self._fast = None
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self._fast is not None:
            self._closing = True  # answer the request whose body is arriving, then close
            return
        super().shutdown()

    # --- parser callbacks ----------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        # uvicorn's on_message_begin also builds the ASGI scope; the fast path never needs it, so it is
        # built in on_headers_complete, only for a request that takes the ASGI path.
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        if self._phase != "headers":
            self._start("headers")  # pipelined: this request's bytes arrived with the previous one's
            self._head_bytes = 0
            self._received = True
            self._pipelined = True

    def on_headers_complete(self) -> None:
        # self._start("body"), inlined: this runs for every request, and each call saved is a measurable
        # part of answering one (the target's path and route come from the _TARGETS memo).
        self._phase = "body"
        self._phase_started = self.loop.time()
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        service = self.service
        if service is not None and self.parser.get_method() == b"POST" and self._can_answer_here():
            target = _TARGETS.get(self.url)
            if target is None:
                target = _target(self.url)
            path, route, raw_path, query = target
            limit = service.max_header_bytes
            if route is not None and (
                limit is None
                # The bytes of this request so far bound its headers: only near the limit (or for a
                # request that arrived behind another in one read) are the headers measured.
                or (not self._pipelined and self._head_bytes + 64 <= limit)
                or not service.headers_too_large(raw_path, query, self.headers)
            ):
                # A declared length over the body limit needs no look here: on_body counts what arrives.
                self._fast = route
                self._fast_path = path
                self._fast_body = []
                self._fast_size = 0
                self._fast_too_large = False
                self._fast_started = time.perf_counter()
                parser = self.parser
                self._fast_keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
                return
        url, headers, expect_100_continue = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()  # the scope, as uvicorn builds it; then what was parsed meanwhile
        self.url, self.headers, self.expect_100_continue = url, headers, expect_100_continue
        self.scope["headers"] = headers
        super().on_headers_complete()

    def _can_answer_here(self) -> bool:
        if self.expect_100_continue or self.parser.should_upgrade() or self.pipeline:
            return False
        if self.cycle is not None and not self.cycle.response_complete:
            return False  # pipelined behind a request still in the ASGI app: answers must stay in order
        limit = self.limit_concurrency
        return limit is None or (len(self.connections) < limit and len(self.tasks) < limit)

    def on_body(self, body: bytes) -> None:
        if self._fast is None:
            super().on_body(body)
            return
        if self._fast_too_large:
            return
        self._fast_size += len(body)
        if self._fast_size > self.service.handler.max_body_bytes:
            self._fast_too_large = True  # a chunked body has no Content-Length: count while reading
            self._fast_body = []
            return
        self._fast_body.append(body)

    def on_message_complete(self) -> None:
        self._phase = None
        route = self._fast
        if route is None:
            super().on_message_complete()
            return
        self._fast = None
        service = self.service
        fields: dict[str, Any] = {}
        try:
            status, extra, payload = service.answer(
                route, self.headers, b"".join(self._fast_body), self._fast_too_large, fields
            )
        except Exception:  # an evaluator bug: a 500 for this request, the connection and server go on
            log.exception("answering %s failed", self._fast_path)
            status, extra, payload = 500, [], b'{"errorCode":"GENERAL","errorDetails":"internal error"}'
        self._fast_body = []
        headers = [(b"content-type", b"application/json"), *extra] if payload else extra
        self._reply(status, headers, payload, keep_alive=self._fast_keep_alive and not self._closing)
        service.finish("POST", self._fast_path, status, self._fast_started, fields, "bulk" if route is BULK else "flag")

    def _reply(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes, *, keep_alive: bool) -> None:
        defaults = self.server_state.default_headers
        if defaults is not self._defaults:
            # uvicorn replaces the list (the date header) once a second: encoded once per connection then.
            self._defaults = defaults
            self._defaults_bytes = b"".join(b"%s: %s\r\n" % pair for pair in defaults)
        out = [_STATUS_LINES.get(status) or f"HTTP/1.1 {status} \r\n".encode("ascii"), self._defaults_bytes]
        for name, value in headers:
            out += (name, b": ", value, b"\r\n")
        if status != 304:
            out += (b"content-length: ", str(len(body)).encode("ascii"), b"\r\n")
        if not keep_alive:
            out.append(b"connection: close\r\n")
        out += (b"\r\n", body)
        self.transport.write(b"".join(out))
        if keep_alive:
            # uvicorn's on_response_complete arms a keep-alive timer per response (and the next request
            # cancels it); here one timer per connection checks the idle time when it fires.
            self.server_state.total_requests += 1
            self._last_answer = self.loop.time()
            if self._idle_timer is None:
                self._idle_timer = self.loop.call_at(self._last_answer + self.timeout_keep_alive, self._idle_check)
        else:
            self.server_state.total_requests += 1
            self.transport.close()


def httptools_protocol_class(
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    stats: TimeoutStats | None = None,
    *,
    max_header_bytes: int = 16 * 1024,
    service: Any = None,
) -> type[DeadlineHttpToolsProtocol]:
    """A ``DeadlineHttpToolsProtocol`` subclass with these settings, for ``uvicorn.Config(http=...)``.

    ``service``: a ``tusklang.serve.service.Service`` answering the evaluation routes from the parser."""
    if not (header_timeout > 0 and body_timeout > 0):
        raise ValueError("header_timeout and body_timeout must be positive")
    return type(
        "ConfiguredDeadlineHttpToolsProtocol",
        (DeadlineHttpToolsProtocol,),
        {
            "header_timeout": header_timeout,
            "body_timeout": body_timeout,
            "stats": stats or TimeoutStats(),
            "max_header_bytes": max_header_bytes,
            "service": service,
        },
    )
