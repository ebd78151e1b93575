"""The access log: one JSON line per request, written in the request or, queued, off the request path.

A line is ``{"method", "path", "status", "latency_ms", ...fields}``, the fields being what the handler
chose to add (flag, reason, error_code, flags, context_keys: attribute names, never their values).

Queued (``tusk serve``): a request appends its line's parts to a deque; a thread formats what arrived
every ``interval`` seconds and hands it to the logger as one record of several lines, so the request
pays neither most of the formatting nor a write system call per line (and formatting a batch in a row
costs less CPU than a line at a time between requests). The parts are queued as five plain values, the
fields already encoded to JSON bytes by the request: a queued tuple, a fields dict or its
``context_keys`` list would be containers the garbage collector tracks, and thousands of them alive
between two flushes set off young and middle collections (1-3 ms pauses at 20,000 requests/s, in some
requests' latency); with none queued, the request path leaves the collector nothing to do.
``close()`` writes what is still queued.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from typing import Any

import orjson


def format_line(method: str, path: str, status: int, latency_s: float, fields: dict[str, Any]) -> str:
    line = {"method": method, "path": path, "status": status, "latency_ms": round(latency_s * 1000, 3), **fields}
    try:
        return orjson.dumps(line, default=str).decode("utf-8")
    except (orjson.JSONEncodeError, UnicodeDecodeError):  # a lone surrogate in a path: the json module escapes it
        return json.dumps(line, ensure_ascii=False, default=str)


def _queued_line(method: str, path: str, status: int, latency_s: float, encoded: bytes | str) -> str:
    """``format_line`` of a queued entry: ``encoded`` is the fields as orjson wrote them (b"" for none),
    or the whole line when the request had to format it."""
    if isinstance(encoded, str):
        return encoded
    dumps = orjson.dumps
    try:
        # orjson writes a dict as its keys and values in order, without spaces: so these pieces.
        head = b'{"method":%b,"path":%b,"status":%b,"latency_ms":%b' % (
            dumps(method),
            dumps(path),
            dumps(status),
            dumps(round(latency_s * 1000, 3)),
        )
    except orjson.JSONEncodeError:
        return format_line(method, path, status, latency_s, orjson.loads(encoded) if encoded else {})
    return (head + b"," + encoded[1:] if encoded else head + b"}").decode("utf-8")


class AccessLog:
    def __init__(self, logger: logging.Logger, *, queued: bool = False, interval: float = 0.05) -> None:
        self.logger = logger
        self.queued = queued
        # Five values per line: method, path, status, latency, encoded fields (see _queued_line).
        self._pending: collections.deque[Any] = collections.deque()
        self._interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one writer at a time: the thread, or close()
        self._thread: threading.Thread | None = None
        if queued:
            self._thread = threading.Thread(target=self._run, name="tusk-access-log", daemon=True)
            self._thread.start()

    def record(self, method: str, path: str, status: int, latency_s: float, fields: dict[str, Any]) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        if self.queued:
            try:
                encoded: bytes | str = orjson.dumps(fields, default=str) if fields else b""
            except orjson.JSONEncodeError:  # rare (an integer beyond 64 bits): formatted here, whole
                encoded = format_line(method, path, status, latency_s, fields)
            # One call, so the thread never sees part of an entry; a tuple queued instead would be tracked.
            self._pending.extend((method, path, status, latency_s, encoded))
        else:
            self.logger.info(format_line(method, path, status, latency_s, fields))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines: list[str] = []
            pending = self._pending
            take = pending.popleft
            while len(pending) >= 5:
                for _ in range(min(len(pending) // 5, 64)):
                    lines.append(_queued_line(take(), take(), take(), take(), take()))
                if self.queued:
                    # Let the request thread have the GIL between short stretches: on a busy core, a
                    # thread preempted while holding it stalls every request behind it.
                    time.sleep(0)
            if lines:
                try:
                    self.logger.info("\n".join(lines))
                except Exception:  # a broken log must not stop the writer
                    time.sleep(self._interval)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()
