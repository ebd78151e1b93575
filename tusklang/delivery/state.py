"""Rollout state and the audit log, in the same database as the metric samples.

Schema (optional table prefix)::

    rollout_state(name TEXT PRIMARY KEY, kind TEXT, policy TEXT /* JSON */, state TEXT /* JSON */,
                  version INTEGER, updated_at TEXT)
    rollout_audit(id, name TEXT, time TEXT, action TEXT, canary_percent DOUBLE PRECISION,
                  reason TEXT, manual INTEGER, details TEXT /* JSON: checks, thresholds, gate */)

The policy is stored with the state when a rollout starts, so a restart (or an edited config file)
cannot change the rules of a rollout in flight. Every write of the state appends its decision to the
audit log in the same transaction, and is refused when another controller wrote in between.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ..diagnostics import Diagnostic, TuskError
from .controller import Decision, RolloutState
from .db import Database


class ConcurrentUpdate(TuskError):
    pass


class RolloutStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.state_table = db.table("rollout_state")
        self.audit_table = db.table("rollout_audit")

    def ensure_schema(self) -> None:
        id_column = "BIGSERIAL PRIMARY KEY" if self.db.dialect == "postgresql" else "INTEGER PRIMARY KEY"
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {self.state_table} (name TEXT PRIMARY KEY, kind TEXT NOT NULL, "
            "policy TEXT NOT NULL, state TEXT NOT NULL, version INTEGER NOT NULL, updated_at TEXT NOT NULL)"
        )
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {self.audit_table} (id {id_column}, name TEXT NOT NULL, "
            "time TEXT NOT NULL, action TEXT NOT NULL, canary_percent DOUBLE PRECISION NOT NULL, "
            "reason TEXT NOT NULL, manual INTEGER NOT NULL, details TEXT NOT NULL)"
        )
        self.db.execute(f"CREATE INDEX IF NOT EXISTS {self.audit_table}_by_name ON {self.audit_table} (name, id)")

    def load(self, name: str) -> tuple[RolloutState, dict[str, Any]] | None:
        row = self.db.execute(
            f"SELECT state, policy, version FROM {self.state_table} WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return None
        state = RolloutState.from_dict({**json.loads(row[0]), "version": int(row[2])})
        return state, json.loads(row[1])

    def commit(self, state: RolloutState, policy: dict[str, Any], decision: Decision) -> RolloutState:
        """Write ``state`` (expected to be at ``state.version`` in the table) and its decision."""
        new = replace(state, version=state.version + 1)
        body = json.dumps({k: v for k, v in new.to_dict().items() if k != "version"})
        now = datetime.now(UTC).isoformat()
        with self.db.transaction():
            if state.version == 0:
                exists = self.db.execute(f"SELECT 1 FROM {self.state_table} WHERE name = ?", (state.name,)).fetchone()
                if exists is not None:
                    raise self._conflict(state.name)
                self.db.execute(
                    f"INSERT INTO {self.state_table} (name, kind, policy, state, version, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (state.name, state.kind, json.dumps(policy), body, new.version, now),
                )
            else:
                cursor = self.db.execute(
                    f"UPDATE {self.state_table} SET kind = ?, policy = ?, state = ?, version = ?, "
                    "updated_at = ? WHERE name = ? AND version = ?",
                    (state.kind, json.dumps(policy), body, new.version, now, state.name, state.version),
                )
                if cursor.rowcount != 1:
                    raise self._conflict(state.name)
            self.db.execute(
                f"INSERT INTO {self.audit_table} "
                "(name, time, action, canary_percent, reason, manual, details) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    state.name,
                    decision.time.isoformat(),
                    decision.action.value,
                    decision.canary_percent,
                    decision.reason,
                    int(decision.manual),
                    json.dumps(
                        {
                            "checks": [c.to_dict() for c in decision.checks],
                            "gate": decision.gate,
                            "gate_checks": [c.to_dict() for c in decision.gate_checks],
                            "consecutive_failures": decision.consecutive_failures,
                        }
                    ),
                ),
            )
        return new

    def history(self, name: str, limit: int = 10) -> list[dict[str, Any]]:
        rows = self.db.execute(
            f"SELECT time, action, canary_percent, reason, manual, details FROM {self.audit_table} "
            "WHERE name = ? ORDER BY id DESC LIMIT ?",
            (name, limit),
        ).fetchall()
        return [
            {
                "time": t,
                "action": a,
                "canary_percent": float(p),
                "reason": r,
                "manual": bool(m),
                **json.loads(d),
            }
            for t, a, p, r, m, d in reversed(rows)
        ]

    @staticmethod
    def _conflict(name: str) -> ConcurrentUpdate:
        return ConcurrentUpdate(
            [
                Diagnostic(
                    "TSK821",
                    f"rollout {name!r} was changed by another controller or command meanwhile; "
                    "nothing was written, run the command again",
                )
            ]
        )
