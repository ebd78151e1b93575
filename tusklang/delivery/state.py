"""Rollout state and the audit log, in the same database as the metric samples.

Schema (optional table prefix)::

    rollout_state(name TEXT PRIMARY KEY, kind TEXT, policy TEXT /* JSON */, state TEXT /* JSON */,
                  version INTEGER, updated_at TEXT)
    rollout_audit(id, name TEXT, time TEXT, action TEXT, canary_percent DOUBLE PRECISION,
                  reason TEXT, manual INTEGER, details TEXT /* JSON: checks, thresholds, gate */)
    rollout_writes(decision_id /* rollout_audit.id */, name, flag, patch TEXT /* JSON */, op, actor,
                   reason, canary_percent, base_version, status /* pending|applied|superseded */,
                   override_version, applied_at)

The policy is stored with the state when a rollout starts, so a restart (or an edited config file)
cannot change the rules of a rollout in flight. Every write of the state appends its decision to the
audit log in the same transaction, and is refused when another controller wrote in between.

For a rollout bound to a flag the same transaction logs the override write the decision calls for
(``rollout_writes``, status ``pending``): the decision log. ``traffic.sync`` then writes it through the
override layer and marks it ``applied`` with the override version it got. A controller killed in
between leaves it ``pending``, and the next sync finishes it (docs/delivery.md, "Restart safety").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ..diagnostics import Diagnostic, TuskError
from .controller import Decision, RolloutState
from .db import Database


class ConcurrentUpdate(TuskError):
    pass


@dataclass(frozen=True, slots=True)
class OverrideIntent:
    """The override write a decision calls for (before it has a decision id)."""

    flag: str
    patch: dict[str, Any]
    op: str
    actor: str
    canary_percent: float
    base_version: int | None  # the override layer's version counter when the decision was made


@dataclass(frozen=True, slots=True)
class OverrideWrite:
    """One logged override write: what to write for decision ``decision_id`` and whether it was."""

    decision_id: int
    name: str
    flag: str
    patch: dict[str, Any]
    op: str
    actor: str
    reason: str  # unique: tagged with the rollout and the decision id, so the audit stream can find it
    canary_percent: float
    base_version: int | None
    status: str  # pending | applied | superseded
    override_version: int | None
    applied_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "flag": self.flag,
            "patch": self.patch,
            "op": self.op,
            "actor": self.actor,
            "reason": self.reason,
            "canary_percent": self.canary_percent,
            "status": self.status,
            "override_version": self.override_version,
            "applied_at": self.applied_at,
        }


def tagged_reason(reason: str, name: str, decision_id: int) -> str:
    """The reason written to the override layer: the decision's, tagged so it is unique to it."""
    return f"{reason} [rollout {name} decision #{decision_id}]"


_WRITE_COLUMNS = (
    "decision_id, name, flag, patch, op, actor, reason, canary_percent, base_version, status, "
    "override_version, applied_at"
)


class RolloutStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.state_table = db.table("rollout_state")
        self.audit_table = db.table("rollout_audit")
        self.writes_table = db.table("rollout_writes")

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
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {self.writes_table} (decision_id BIGINT PRIMARY KEY, name TEXT NOT NULL, "
            "flag TEXT NOT NULL, patch TEXT NOT NULL, op TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL, "
            "canary_percent DOUBLE PRECISION NOT NULL, base_version BIGINT, status TEXT NOT NULL, "
            "override_version BIGINT, applied_at TEXT)"
        )
        self.db.execute(
            f"CREATE INDEX IF NOT EXISTS {self.writes_table}_by_name ON {self.writes_table} (name, decision_id)"
        )

    def load(self, name: str) -> tuple[RolloutState, dict[str, Any]] | None:
        row = self.db.execute(
            f"SELECT state, policy, version FROM {self.state_table} WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return None
        state = RolloutState.from_dict({**json.loads(row[0]), "version": int(row[2])})
        return state, json.loads(row[1])

    def commit(
        self,
        state: RolloutState,
        policy: dict[str, Any],
        decision: Decision,
        intent: OverrideIntent | None = None,
    ) -> RolloutState:
        """Write ``state`` (expected to be at ``state.version`` in the table), its decision and, for a
        bound rollout, the override write the decision calls for: one transaction."""
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
            row = self.db.execute(
                f"INSERT INTO {self.audit_table} "
                "(name, time, action, canary_percent, reason, manual, details) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
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
            ).fetchone()
            if intent is not None:
                assert row is not None
                decision_id = int(row[0])
                # The last decision wins: an older write still pending is never applied now.
                self.db.execute(
                    f"UPDATE {self.writes_table} SET status = 'superseded' "
                    "WHERE name = ? AND status = 'pending' AND decision_id < ?",
                    (state.name, decision_id),
                )
                self.db.execute(
                    f"INSERT INTO {self.writes_table} ({_WRITE_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', NULL, NULL)",
                    (
                        decision_id,
                        state.name,
                        intent.flag,
                        json.dumps(intent.patch, sort_keys=True),
                        intent.op,
                        intent.actor,
                        tagged_reason(decision.reason, state.name, decision_id),
                        intent.canary_percent,
                        intent.base_version,
                    ),
                )
        return new

    # --- the decision log of override writes ---------------------------------------------------

    def latest_write(self, name: str) -> OverrideWrite | None:
        """The override write of the rollout's latest decision that called for one."""
        row = self.db.execute(
            f"SELECT {_WRITE_COLUMNS} FROM {self.writes_table} WHERE name = ? ORDER BY decision_id DESC LIMIT 1",
            (name,),
        ).fetchone()
        return None if row is None else self._write(row)

    def writes(self, name: str) -> list[OverrideWrite]:
        rows = self.db.execute(
            f"SELECT {_WRITE_COLUMNS} FROM {self.writes_table} WHERE name = ? ORDER BY decision_id", (name,)
        ).fetchall()
        return [self._write(row) for row in rows]

    def mark_applied(self, decision_id: int, version: int) -> None:
        self.db.execute(
            f"UPDATE {self.writes_table} SET status = 'applied', override_version = ?, applied_at = ? "
            "WHERE decision_id = ? AND status = 'pending'",
            (version, datetime.now(UTC).isoformat(), decision_id),
        )

    def mark_rewritten(self, decision_id: int, version: int) -> None:
        """An applied write written again (the override layer lost it): its new version."""
        self.db.execute(
            f"UPDATE {self.writes_table} SET override_version = ?, applied_at = ? WHERE decision_id = ?",
            (version, datetime.now(UTC).isoformat(), decision_id),
        )

    def mark_superseded(self, name: str, decision_id: int) -> None:
        self.db.execute(
            f"UPDATE {self.writes_table} SET status = 'superseded' "
            "WHERE name = ? AND status = 'pending' AND decision_id < ?",
            (name, decision_id),
        )

    def bound_elsewhere(self, name: str, flag: str, prefix: str) -> str | None:
        """Another rollout in flight in this database that moves the same flag (under the same prefix)."""
        rows = self.db.execute(f"SELECT name, state FROM {self.state_table} WHERE name <> ?", (name,)).fetchall()
        for other, body in rows:
            data = json.loads(body)
            binding = data.get("binding") or {}
            if (
                binding.get("flag") == flag
                and binding.get("prefix") == prefix
                and data.get("status") in {"progressing", "paused", "switched"}
            ):
                return str(other)
        return None

    @staticmethod
    def _write(row: tuple[Any, ...]) -> OverrideWrite:
        (decision_id, name, flag, patch, op, actor, reason, percent, base, status, version, applied_at) = row
        return OverrideWrite(
            int(decision_id),
            name,
            flag,
            json.loads(patch),
            op,
            actor,
            reason,
            float(percent),
            None if base is None else int(base),
            status,
            None if version is None else int(version),
            applied_at,
        )

    def history(self, name: str, limit: int | None = 10) -> list[dict[str, Any]]:
        """The last ``limit`` decisions (all with None), oldest first, each with its override write."""
        rows = self.db.execute(
            f"SELECT a.id, a.time, a.action, a.canary_percent, a.reason, a.manual, a.details, "
            f"w.flag, w.status, w.override_version, w.applied_at FROM {self.audit_table} a "
            f"LEFT JOIN {self.writes_table} w ON w.decision_id = a.id "
            "WHERE a.name = ? ORDER BY a.id DESC" + (" LIMIT ?" if limit is not None else ""),
            (name, limit) if limit is not None else (name,),
        ).fetchall()
        return [
            {
                "id": int(i),
                "time": t,
                "action": a,
                "canary_percent": float(p),
                "reason": r,
                "manual": bool(m),
                **json.loads(d),
                "override": None
                if flag is None
                else {
                    "flag": flag,
                    "status": status,
                    "version": None if version is None else int(version),
                    "applied_at": applied_at,
                },
            }
            for i, t, a, p, r, m, d, flag, status, version, applied_at in reversed(rows)
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
