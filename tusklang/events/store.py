"""The event store: a bounded in-memory queue drained by one background writer thread.

The request path only appends a tuple to a deque (`put`): it never waits for the database, never takes
a lock the writer holds during I/O, and never raises. When the queue holds `queue_size` events the new
event is dropped and counted. The writer flushes when `batch_size` events are waiting or every
`flush_interval` seconds, in one transaction per batch (COPY on PostgreSQL, multi-row INSERTs on SQLite).

Lost events are never silent: drops (queue full) and failures (a batch whose write failed, e.g. INSERT
revoked or a constraint broken) are recorded in `tusk_event_drops` with the time span they happened in
(`since` .. `occurred_at`), as soon as the database accepts that row: with the next batch, or right
after the failed one, or when the store comes back. `stats()` shows both counts, in memory and as
recorded, so a health endpoint and `tusk experiment report` can say that data is missing.

`close()` (or leaving the `with` block) stops the writer and writes everything still queued.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from ..db.errors import DatabaseError
from ..db.write import storable_text
from .schema import Connection, EventRow, EventStoreError, has_loss_columns, init_schema

log = logging.getLogger("tusklang.events")

DEFAULT_BATCH_SIZE = 1000
DEFAULT_FLUSH_INTERVAL = 0.2
DEFAULT_QUEUE_SIZE = 100_000
# PostgreSQL plans with table statistics that autovacuum refreshes only after a minute or so; a report
# run right after a bulk load would see a "1 row" estimate and choose nested loops (measured: 20 s instead
# of 0.1 s for 20,000 units). So the writer runs ANALYZE itself after writing 10,000 rows or 10% of the
# table, whichever is more (autovacuum's own rule, without its delay).
ANALYZE_ROWS = 10_000
ANALYZE_FRACTION = 0.1


class _DropCounter:
    """Events one producing thread had to drop (only that thread writes ``n``)."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


@dataclass(frozen=True)
class StoreStats:
    queued: int  # waiting in memory now
    written: int  # committed to the database
    dropped: int  # refused because the queue was full
    failed: int  # lost because a write failed, or still queued when closed with the database down
    dropped_recorded: int = 0  # of `dropped`, how many are recorded in tusk_event_drops
    failed_recorded: int = 0  # of `failed`, how many are recorded in tusk_event_drops

    @property
    def unrecorded(self) -> int:
        """Lost events the database does not know about yet (recorded once it accepts the row)."""
        return self.dropped - self.dropped_recorded + self.failed - self.failed_recorded

    def as_dict(self) -> dict[str, int]:
        """The counters as JSON-ready data (for /health and metrics)."""
        return {
            "queued": self.queued,
            "written": self.written,
            "dropped": self.dropped,
            "failed": self.failed,
            "dropped_recorded": self.dropped_recorded,
            "failed_recorded": self.failed_recorded,
            "unrecorded": self.unrecorded,
        }


@dataclass(frozen=True)
class _Losses:
    dropped: int
    failed: int
    since: float | None


class EventStore:
    """Batched, non-blocking writes of event rows to SQLite or PostgreSQL.

    ``create=True`` runs the idempotent `init_schema` on open (what `tusk db init` does), so a fresh
    SQLite file works out of the box; pass ``create=False`` where the tables are managed separately.
    """

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        create: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if not flush_interval > 0:
            raise ValueError("flush_interval must be a positive number of seconds")
        self._conn: Connection | None = Connection(url)
        self._secret_url = url  # kept to reconnect after the server drops the connection; never shown
        self.url = self._conn.url  # redacted
        self.dialect = self._conn.dialect
        try:
            if create:
                init_schema(self._conn)
            # A store whose tables are managed separately may not be migrated yet: then losses are
            # recorded in the version-1 shape (drops only; failures are logged and counted).
            self._loss_columns = has_loss_columns(self._conn)
        except BaseException:
            self._conn.close()
            raise
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.queue_size = queue_size
        self._clock = clock
        self._queue: deque[EventRow] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        # Held while talking to the database; the request path never touches it.
        self._io_lock = threading.Lock()
        # Drops are counted per producing thread, without a lock: a lock taken on every drop starved the
        # writer (and flush()) under a drop storm, because the dropping thread re-took it each time
        # before a waiting thread could run. Only the writer reads the counters and records drops.
        self._local = threading.local()
        self._drop_counters: list[_DropCounter] = []
        self._drops_seen = 0  # drops the writer has noticed (and dated); <= the producers' total
        self._drops_recorded = 0
        self._written = 0
        self._failed = 0
        self._failed_recorded = 0
        self._loss_since: float | None = None  # when the losses not yet recorded began
        self._last_check = clock()
        self._last_loss_log = -1e9
        self._analyze_at = ANALYZE_ROWS
        self._last_down_log = -1e9
        self._closed = False
        self._writer = threading.Thread(target=self._run, name="tusk-event-writer", daemon=True)
        self._writer.start()

    # --- the request path -------------------------------------------------------------------------

    def put(self, row: EventRow) -> bool:
        """Queue one row; False (and counted) when the queue is full or the store is closed. Never blocks."""
        queue = self._queue
        if len(queue) >= self.queue_size or self._closed:
            counter = getattr(self._local, "drops", None)
            if counter is None:
                counter = self._local.drops = _DropCounter()
                self._drop_counters.append(counter)  # list.append is atomic
            counter.n += 1  # only this thread writes its counter
            return False
        queue.append(row)
        if len(queue) >= self.batch_size:
            self._wake.set()
        return True

    # --- the writer --------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self._drain()
            except Exception:  # a bug must not end the writer: events would pile up until dropped
                log.exception("event store: the writer hit an unexpected error")

    def _connection(self) -> Connection | None:
        """The live connection, reconnecting if the last one broke; None while the database is down.

        While it is down nothing is taken from the queue, so events wait (up to queue_size, then they
        are dropped and counted) and are written once the database is back.
        """
        conn = self._conn
        if conn is not None and not conn.broken:
            return conn
        if self._closed and conn is None:
            return None
        if conn is not None:
            conn.close()
            self._conn = None
        try:
            self._conn = Connection(self._secret_url)
        except EventStoreError as exc:
            now = time.monotonic()
            if now - self._last_down_log > 30:
                self._last_down_log = now
                log.error("event store: database unavailable, events wait in memory: %s", exc)
            return None
        log.warning("event store: reconnected to %s", self.url)
        return self._conn

    def _take(self) -> list[EventRow]:
        queue, batch = self._queue, []
        popleft = queue.popleft
        try:
            for _ in range(self.batch_size):
                batch.append(popleft())
        except IndexError:
            pass
        return batch

    def _drain(self) -> None:
        """Write everything queued at call time, batch by batch, plus the losses not yet recorded.

        Only what was queued when the call began: under a steady stream of new events a drain that
        waited for an empty queue would never return (and ``flush()`` would hang its caller).
        """
        with self._io_lock:
            owed = len(self._queue)
            while True:
                self._note_drops()
                conn = self._connection()
                if conn is None:
                    return
                batch = self._take()
                losses = self._unrecorded()
                if not batch and losses is None:
                    return
                try:
                    conn.begin()
                    if batch:
                        conn.insert_events(batch)
                    if losses is not None:
                        self._insert_losses(conn, losses)
                    conn.commit()
                except EventStoreError as exc:
                    conn.rollback()  # the losses stay unrecorded: the next write records them
                    if conn.broken:
                        # The server went away mid-write (restart, killed session): nothing was committed,
                        # so the batch goes back to the front of the queue for the next connection.
                        self._queue.extendleft(reversed(batch))
                        log.warning("event store: connection lost, %d events will be retried: %s", len(batch), exc)
                        return
                    if not batch:
                        self._log_unrecorded(exc)
                        return
                    if exc.kind == "unsupported_value" and self._write_cleaned(conn, batch, losses):
                        owed -= len(batch)
                        if len(batch) < self.batch_size or owed <= 0:
                            return
                        continue
                    self._failed += len(batch)
                    since = min(row[1] for row in batch)
                    self._loss_since = since if self._loss_since is None else min(self._loss_since, since)
                    log.error("event store: %d events lost: %s", len(batch), exc)
                    # The events table may refuse while the drops table accepts (a revoked INSERT, a
                    # constraint): record the loss now rather than when the events flow again.
                    self._record_losses(conn)
                    # Go on with the rest of what is owed: flush() and close() promise to have dealt with
                    # every queued event, and a batch that fails does so quickly.
                    owed -= len(batch)
                    if owed <= 0:
                        return
                    continue
                self._written += len(batch)
                if losses is not None:
                    self._mark_recorded(losses)
                if self.dialect == "postgresql" and self._written >= self._analyze_at:
                    self._analyze(conn)
                owed -= len(batch)
                if len(batch) < self.batch_size or owed <= 0:
                    return

    def _write_cleaned(self, conn: Connection, batch: list[EventRow], losses: _Losses | None) -> bool:
        """Retry a batch refused for a value no database stores as text (a lone surrogate from a JSON
        body's escape, a NUL): one such event must not cost the others. True when it was written."""
        cleaned = [
            tuple(storable_text(v) if type(v) is str else v for v in row)  # type: ignore[misc]
            for row in batch
        ]
        try:
            conn.begin()
            conn.insert_events(cleaned)  # type: ignore[arg-type]
            if losses is not None:
                self._insert_losses(conn, losses)
            conn.commit()
        except EventStoreError:
            conn.rollback()
            return False
        self._written += len(batch)
        if losses is not None:
            self._mark_recorded(losses)
        changed = sum(1 for row, clean in zip(batch, cleaned) if row != clean)
        log.warning("event store: %d events held text no database stores (replaced by U+FFFD)", changed)
        return True

    # --- lost events -----------------------------------------------------------------------------------

    def _note_drops(self) -> None:
        """Date the drops made since the last look: they happened after it (within a flush interval)."""
        now = self._clock()
        total = self._dropped_total()
        if total > self._drops_seen:
            self._drops_seen = total
            if self._loss_since is None or self._last_check < self._loss_since:
                self._loss_since = self._last_check
        self._last_check = now

    def _unrecorded(self) -> _Losses | None:
        dropped = self._drops_seen - self._drops_recorded
        failed = self._failed - self._failed_recorded
        if not self._loss_columns:
            failed = 0  # a version-1 table has no column for them
        if not dropped and not failed:
            return None
        return _Losses(dropped, failed, self._loss_since)

    def _insert_losses(self, conn: Connection, losses: _Losses) -> None:
        if self._loss_columns:
            conn.execute(
                "INSERT INTO tusk_event_drops (occurred_at, dropped, failed, since) VALUES (?, ?, ?, ?)",
                (self._clock(), losses.dropped, losses.failed, losses.since),
            )
        else:
            conn.execute(
                "INSERT INTO tusk_event_drops (occurred_at, dropped) VALUES (?, ?)", (self._clock(), losses.dropped)
            )

    def _mark_recorded(self, losses: _Losses) -> None:
        self._drops_recorded += losses.dropped
        if self._loss_columns:
            self._failed_recorded += losses.failed
        if self._drops_recorded == self._drops_seen and (
            self._failed_recorded == self._failed or not self._loss_columns
        ):
            self._loss_since = None

    def _record_losses(self, conn: Connection) -> None:
        """Record the losses in a transaction of their own; on failure they wait for the next write."""
        losses = self._unrecorded()
        if losses is None:
            return
        try:
            conn.begin()
            self._insert_losses(conn, losses)
            conn.commit()
        except EventStoreError as exc:
            conn.rollback()
            self._log_unrecorded(exc)
            return
        self._mark_recorded(losses)

    def _log_unrecorded(self, exc: DatabaseError) -> None:
        now = time.monotonic()
        if now - self._last_loss_log > 30:
            self._last_loss_log = now
            log.error("event store: cannot record lost events yet (retried with every write): %s", exc)

    def _analyze(self, conn: Connection) -> None:
        rows = 0.0
        try:
            conn.execute("ANALYZE tusk_events")
            found = conn.execute("SELECT reltuples FROM pg_class WHERE oid = 'tusk_events'::regclass")
            conn.commit()
            rows = float(found[0][0]) if found else 0.0
        except EventStoreError as exc:  # statistics are an optimisation; the events are already safe
            conn.rollback()
            log.warning("event store: ANALYZE failed: %s", exc)
        self._analyze_at = self._written + max(ANALYZE_ROWS, int(ANALYZE_FRACTION * rows))

    # --- control -------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything queued so far before returning (from the calling thread)."""
        self._drain()

    def stats(self) -> StoreStats:
        """This store's counters: in memory, and how many of the lost events are recorded in the database."""
        return StoreStats(
            len(self._queue),
            self._written,
            self._dropped_total(),
            self._failed,
            self._drops_recorded,
            self._failed_recorded,
        )

    @property
    def dropped(self) -> int:
        return self._dropped_total()

    def _dropped_total(self) -> int:
        return sum(counter.n for counter in list(self._drop_counters))

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run one read statement on the store's connection (`?` placeholders); for reports and tests."""
        with self._io_lock:
            conn = self._connection()
            if conn is None:
                raise EventStoreError(f"the database at {self.url} is unavailable", "connection")
            try:
                return conn.execute(sql, params)
            finally:
                if self.dialect == "postgresql":
                    conn.rollback()  # end the implicit read transaction

    def close(self) -> None:
        """Stop the writer and write everything still queued. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._wake.set()
        self._writer.join(timeout=30)
        self._drain()
        with self._io_lock:
            left = len(self._queue)
            if left:  # the database is down: what is still queued cannot be written (nor recorded)
                self._failed += left
                self._queue.clear()
                log.error("event store: closed with %d events unwritten (database unavailable)", left)
            if self.stats().unrecorded:
                log.error(
                    "event store: closed with %d lost events not recorded in tusk_event_drops", self.stats().unrecorded
                )
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EventStore({self.url!r})"
