"""LSP base-protocol framing (`Content-Length` headers + body), read defensively.

pygls 2.x reads a header line with an unbounded `readline`, takes only an exact `Content-Length: <digits>`
and then `read(n)`s whatever length was declared. A frame with a negative, non-numeric or missing length is
skipped together with the body that follows, and a length larger than the body swallows the next frames
while the client waits for an answer: the server hangs for good. Here frames are cut by a small state
machine that never trusts the declared length:

* a header line that is not `Name: value`, a `Content-Length` that is not a decimal number, a frame
  without one, or two that disagree: logged, and the stream is resynchronised on the next
  `Content-Length:`;
* a declared length above `MAX_CONTENT_LENGTH` is refused before anything is allocated (the client gets
  an InvalidRequest error with a null id) and its body is skipped the same way;
* a body that turns out to hold the next frame's header (its declared length was too large) is cut
  there: the client gets a ParseError and the next frame is read normally. The pattern
  `Content-Length: <digits><newline>` cannot occur in valid JSON (a bare word outside a string, a raw
  newline inside one), so this never cuts a good body.

Memory is bounded by `MAX_CONTENT_LENGTH` plus one read chunk; header lines by `MAX_HEADER_BYTES`.
docs/editors.md documents the limits.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import BinaryIO, Final, Protocol

log = logging.getLogger(__name__)

MAX_CONTENT_LENGTH: Final = 64 * 1024 * 1024
"""Largest message body accepted (64 MiB: a whole workspace's text fits many times over)."""

MAX_HEADER_BYTES: Final = 8 * 1024
"""Largest header block of one frame (real ones are about 60 bytes)."""

READ_CHUNK: Final = 64 * 1024

INVALID_REQUEST: Final = -32600
PARSE_ERROR: Final = -32700

# Where a frame starts, wherever it sits: resynchronisation looks for this anywhere in the stream. The
# patterns start at "-length" because a leading literal lets `re` scan fast (about 10x: every body is
# searched); `_find_header` checks the "content" before it.
_HEADER_START = re.compile(rb"-length[ \t]*:", re.IGNORECASE)
# A complete Content-Length header line; impossible inside valid JSON (see the module docstring).
_HEADER_IN_BODY = re.compile(rb"-length[ \t]*:[ \t]*[0-9]+[ \t]*\r?\n", re.IGNORECASE)
_CONTENT = b"content"
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)
_KEEP_WHILE_SEARCHING = 128  # tail kept while skipping, so a header split across two reads is still found
_MAX_LENGTH_DIGITS = 12


@dataclass(frozen=True)
class Frame:
    body: bytes


@dataclass(frozen=True)
class Problem:
    """Something wrong in the byte stream. `code` set: the client is told too (JSON-RPC error, id null)."""

    message: str
    code: int | None = None


Event = Frame | Problem


class FrameDecoder:
    """Bytes in, frames and problems out; never raises, never blocks, memory bounded (see module doc)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._state = "headers"  # "headers" | "body" | "skip"
        self._length: int | None = None
        self._header_bytes = 0
        self._seen_header = False
        self._scanned = 0  # body bytes already searched for an embedded header
        self._skipped = 0

    @property
    def buffered(self) -> int:
        """Bytes held back: at most one body (up to the cap) plus one read chunk."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Event]:
        self._buf += data
        out: list[Event] = []
        while True:
            if self._state == "skip":
                if not self._skip():
                    return out
                out.append(Problem(f"skipped {self._skipped} bytes up to the next Content-Length header"))
                self._skipped = 0
            elif self._state == "headers":
                if not self._header_line(out):
                    return out
            elif not self._body(out):
                return out

    def _start_frame(self) -> None:
        self._state = "headers"
        self._length = None
        self._header_bytes = 0
        self._seen_header = False

    def _resync(self, out: list[Event], message: str, code: int | None = None) -> None:
        """Report `message` and skip to the next frame. The caller has consumed the offending bytes."""
        out.append(Problem(message, code))
        self._state = "skip"

    def _skip(self) -> bool:
        start = _find_header(_HEADER_START, self._buf)
        if start < 0:
            drop = max(0, len(self._buf) - _KEEP_WHILE_SEARCHING)
            self._skipped += drop
            del self._buf[:drop]
            return False
        self._skipped += start
        del self._buf[:start]
        self._start_frame()
        return True

    def _header_line(self, out: list[Event]) -> bool:
        newline = self._buf.find(b"\n", 0, MAX_HEADER_BYTES - self._header_bytes + 1)
        if newline < 0:
            if len(self._buf) + self._header_bytes > MAX_HEADER_BYTES:
                del self._buf[:1]  # so the search for the next frame starts past this one
                self._resync(out, f"frame headers longer than {MAX_HEADER_BYTES} bytes")
                return True
            return False
        line = bytes(self._buf[:newline]).rstrip(b"\r")
        start = _find_header(_HEADER_START, line)
        if start > 0:
            # Bytes before a header: the tail of a body shorter than its declared length, or garbage.
            # Start over at the header, dropping what this frame had gathered.
            del self._buf[:start]
            out.append(Problem(f"skipped {start} bytes of garbage before a Content-Length header"))
            self._start_frame()
            return True
        del self._buf[: newline + 1]
        self._header_bytes += newline + 1
        if not line:
            if not self._seen_header:
                self._header_bytes = 0
                return True  # blank lines between frames are harmless
            if self._length is None:
                self._resync(out, "frame without a Content-Length header")
                return True
            self._state = "body"
            self._scanned = 0
            return True
        self._seen_header = True
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            self._resync(out, f"not a header line: {_preview(line)}")
            return True
        if name.lower() != b"content-length":
            return True  # Content-Type and unknown headers: the body is UTF-8 JSON whatever they say
        digits = value.strip(b" \t")
        if not digits.isdigit():  # bytes.isdigit: ASCII digits only, so no sign, no spaces, no "1e3"
            self._resync(out, f"Content-Length is not a non-negative integer: {_preview(digits)}")
            return True
        if len(digits) > _MAX_LENGTH_DIGITS or int(digits) > MAX_CONTENT_LENGTH:
            declared = digits.decode() if len(digits) <= _MAX_LENGTH_DIGITS else f"a {len(digits)}-digit number"
            self._resync(
                out,
                f"message refused: Content-Length {declared} is above the limit of {MAX_CONTENT_LENGTH} bytes",
                INVALID_REQUEST,
            )
            return True
        length = int(digits)
        if self._length is not None and self._length != length:
            self._resync(out, f"two different Content-Length headers ({self._length} and {length})")
            return True
        self._length = length
        return True

    def _body(self, out: list[Event]) -> bool:
        assert self._length is not None
        length = self._length
        end = min(len(self._buf), length + _KEEP_WHILE_SEARCHING)
        embedded = _find_header(_HEADER_IN_BODY, self._buf, max(0, self._scanned - _KEEP_WHILE_SEARCHING), end)
        if 0 <= embedded < length:
            # The declared length ran past this body into the next frame: answer this one, keep that one.
            del self._buf[:embedded]
            out.append(
                Problem(f"message body cut short by the next frame after {embedded} of {length} bytes", PARSE_ERROR)
            )
            self._start_frame()
            return True
        if len(self._buf) < length:
            self._scanned = len(self._buf)
            return False
        out.append(Frame(bytes(self._buf[:length])))
        del self._buf[:length]
        self._start_frame()
        return True


def _find_header(pattern: re.Pattern[bytes], data: bytes | bytearray, pos: int = 0, endpos: int | None = None) -> int:
    """Offset of the first `Content-Length` header (as `pattern` completes it) in data[pos:endpos], or -1."""
    stop = len(data) if endpos is None else endpos
    for match in pattern.finditer(data, pos + len(_CONTENT), stop):
        start = match.start() - len(_CONTENT)
        if data[start : match.start()].lower() == _CONTENT:
            return start
    return -1


def _preview(data: bytes, limit: int = 40) -> str:
    text = repr(bytes(data[:limit]))
    return text + ("..." if len(data) > limit else "")


# --- the read loop ---------------------------------------------------------------------------------


class Receiver(Protocol):
    def receive_body(self, body: bytes) -> None: ...

    def reply_error(self, msg_id: int | str | None, code: int, message: str) -> None: ...


async def pump(read: Callable[[], Awaitable[bytes]], receiver: Receiver, stop: threading.Event) -> None:
    """Read until end of input (or `stop`), handing each frame to `receiver`; problems are logged."""
    decoder = FrameDecoder()
    while not stop.is_set():
        try:
            data = await read()
        except OSError as exc:  # a reset TCP connection
            log.info("input closed: %s", exc)
            break
        if not data:
            break
        for event in decoder.feed(data):
            if isinstance(event, Frame):
                try:
                    receiver.receive_body(event.body)
                except BrokenPipeError:
                    raise  # the client is gone: end the session (start_io reports it)
                except Exception:  # a bug in dispatch must cost one message, not the session
                    log.exception("could not handle a message")
                continue
            log.error("bad frame from the client: %s", event.message)
            if event.code is not None:
                receiver.reply_error(None, event.code, event.message)


class ThreadReader:
    """Chunks of a blocking binary stream (stdin), read on a daemon thread one request at a time.

    One read in flight at a time keeps memory bounded when the server is slower than the client, and a
    daemon thread (unlike an executor's worker) does not keep the process alive on `exit` while it
    blocks in `read`.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._wanted = threading.Semaphore(0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._result: asyncio.Future[bytes] | None = None
        self._thread: threading.Thread | None = None

    async def read(self) -> bytes:
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._run, name="tusk-lsp-stdin", daemon=True)
            self._thread.start()
        assert self._loop is not None
        self._result = self._loop.create_future()
        self._wanted.release()
        return await self._result

    def _run(self) -> None:
        read1 = getattr(self._stream, "read1", None)
        while True:
            self._wanted.acquire()
            try:
                data = read1(READ_CHUNK) if read1 is not None else self._stream.read(READ_CHUNK)
            except (OSError, ValueError):  # closed or broken stream: same as end of input
                data = b""
            assert self._loop is not None
            try:
                self._loop.call_soon_threadsafe(self._deliver, data)
            except RuntimeError:  # the loop is closed: the server is exiting
                return
            if not data:
                return

    def _deliver(self, data: bytes) -> None:
        if self._result is not None and not self._result.done():
            self._result.set_result(data)
