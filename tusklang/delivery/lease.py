"""One controller per rollout: a lease row in the delivery database (docs/delivery.md, "One controller").

``rollout_lease(name TEXT PRIMARY KEY, holder TEXT, expires_at DOUBLE PRECISION /* epoch s */,
acquired_at DOUBLE PRECISION)``. A controller takes the lease when no one holds it or the holder's
lease has expired, renews it on every tick, and deletes it when it stops. Times are the *database's*
clock, so controllers on hosts with skewed clocks still agree on who holds it.

A second ``tusk rollout run`` for the same rollout is refused (TSK822, naming the holder and when its
lease expires) or, with ``--wait``, waits for it. A controller killed with SIGKILL cannot delete its
row: its lease expires ``ttl`` seconds after its last renewal, and then the next controller takes over.
A controller that finds its lease taken (it stalled for longer than ``ttl``) stops at once.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Self

from ..diagnostics import Diagnostic, TuskError
from .db import Database

LEASE_CODE = "TSK822"
DEFAULT_TTL = 30.0


class LeaseHeld(TuskError):
    pass


def holder_id() -> str:
    """Who holds a lease: host, process and a random part (a pid can be reused after a crash)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    def __init__(self, db: Database, name: str, *, ttl: float = DEFAULT_TTL, holder: str | None = None) -> None:
        if ttl <= 0:
            raise ValueError("a lease needs a positive ttl")
        self.db = db
        self.name = name
        self.ttl = ttl
        self.holder = holder or holder_id()
        self.table = db.table("rollout_lease")
        self.held = False

    def ensure_schema(self) -> None:
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (name TEXT PRIMARY KEY, holder TEXT NOT NULL, "
            "expires_at DOUBLE PRECISION NOT NULL, acquired_at DOUBLE PRECISION NOT NULL)"
        )

    def _now(self) -> str:
        # The database's clock, in epoch seconds.
        if self.db.dialect == "postgresql":
            return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"
        return "((julianday('now') - 2440587.5) * 86400.0)"

    def try_acquire(self) -> bool:
        """Take the lease if it is free, expired or already ours; True when we hold it."""
        now = self._now()
        with self.db.transaction():
            self.db.execute(
                f"INSERT INTO {self.table} (name, holder, expires_at, acquired_at) VALUES (?, ?, {now} + ?, {now}) "
                f"ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, "
                f"acquired_at = excluded.acquired_at "
                f"WHERE {self.table}.expires_at < {now} OR {self.table}.holder = excluded.holder",
                (self.name, self.holder, self.ttl),
            )
            row = self.db.execute(f"SELECT holder FROM {self.table} WHERE name = ?", (self.name,)).fetchone()
        self.held = row is not None and row[0] == self.holder
        return self.held

    def current(self) -> tuple[str, float] | None:
        """(holder, seconds until its lease expires) or None when no one holds it."""
        row = self.db.execute(
            f"SELECT holder, expires_at - {self._now()} FROM {self.table} WHERE name = ?", (self.name,)
        ).fetchone()
        return None if row is None else (str(row[0]), float(row[1]))

    def acquire(
        self, *, wait: bool = False, poll: float = 0.5, on_wait: Callable[[str, float], None] | None = None
    ) -> None:
        """Take the lease, or raise :class:`LeaseHeld` (TSK822); with ``wait`` poll until it is free."""
        told = False
        while not self.try_acquire():
            found = self.current()
            holder, left = found if found is not None else ("?", 0.0)
            if not wait:
                raise LeaseHeld(
                    [
                        Diagnostic(
                            LEASE_CODE,
                            f"rollout {self.name!r} is driven by another controller ({holder}); its lease "
                            f"expires in {max(0.0, left):.1f} s unless renewed",
                            hint="one controller per rollout: stop the other one, or run with --wait to "
                            "take over when its lease expires",
                        )
                    ]
                )
            if on_wait is not None and not told:
                on_wait(holder, left)
                told = True
            time.sleep(min(poll, max(0.05, left)))

    def renew(self) -> None:
        """Extend our lease; :class:`LeaseHeld` when another controller took it meanwhile."""
        cursor = self.db.execute(
            f"UPDATE {self.table} SET expires_at = {self._now()} + ? WHERE name = ? AND holder = ?",
            (self.ttl, self.name, self.holder),
        )
        if cursor.rowcount != 1:
            self.held = False
            raise LeaseHeld(
                [
                    Diagnostic(
                        LEASE_CODE,
                        f"rollout {self.name!r}: this controller's lease was taken by another one "
                        f"(it did not renew within {self.ttl:g} s); stopping without another decision",
                    )
                ]
            )

    def release(self) -> None:
        if self.held:
            self.db.execute(f"DELETE FROM {self.table} WHERE name = ? AND holder = ?", (self.name, self.holder))
            self.held = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self.release()
        except Exception:  # the database went away: the lease expires on its own
            pass
