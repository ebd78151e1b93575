"""Moving real traffic: a bound rollout's decisions written through the runtime override layer.

Every decision of a rollout bound to a flag (start, advance, hold, promote, rollback, pause, resume,
abort, the blue/green switch, a hold at a closed gate) is logged with the override write it calls for,
in the same transaction as the decision (``RolloutStore.commit``); :func:`sync` then makes the
override layer show the rollout's *latest* decision:

1. read the flag's override record and its version ``V`` (before anything else);
2. take the latest logged write of the rollout; done if it is ``applied``; older pending ones are
   ``superseded`` (never written: the last decision wins);
3. look for it in the audit stream (its reason is tagged with the decision id): found means a
   controller wrote it and died before saying so: mark it ``applied`` with that version, write nothing;
4. else write it through ``tusklang.overrides.writer.write_override`` with compare-and-set on ``V``,
   and mark it ``applied``. A compare-and-set that fails (someone wrote in between, perhaps another
   process syncing the same decision) starts again at 1, so it finds that write in step 3.

So however a controller is killed, and however many processes sync at once, each decision reaches
Redis at most once, and the last one always does. One exception, on purpose: when Redis lost its data
(its version counter is below the applied write's version, which no write, not even a clear, can
cause) the last decision is written again, so clients do not fall back to the snapshot's percentage.

Test hook: ``TUSK_ROLLOUT_TEST_HALT=before-write[:ACTION[:PERCENT]]`` (or ``after-write``) makes the
process stop dead at that point of a matching write (it sleeps, printing one line on stderr), so a test
can SIGKILL it there. Never set it in production.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from ..overrides.store import OverrideStore
from ..overrides.writer import VersionConflict, current_version, find_write, write_override
from .binding import Binding
from .controller import Decision
from .state import OverrideIntent, OverrideWrite, RolloutStore

HALT_ENV = "TUSK_ROLLOUT_TEST_HALT"
_MAX_ROUNDS = 50


def controller_actor(name: str) -> str:
    """Who the override layer's audit log says made an automatic decision's change."""
    return f"tusk-rollout:{name}"


def intent_for(
    binding: Binding, name: str, decision: Decision, overrides: OverrideStore, actor: str | None = None
) -> OverrideIntent:
    """The override write ``decision`` calls for. Reads the override layer's version counter (so an
    unreachable Redis fails the command before anything is recorded)."""
    return OverrideIntent(
        flag=binding.flag,
        patch=binding.patch(decision.canary_percent),
        op=f"rollout-{decision.action.value}",
        actor=actor or controller_actor(name),
        canary_percent=decision.canary_percent,
        base_version=overrides.version(),
    )


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What :func:`sync` did: ``written`` (a new override version), ``found`` (a write made before a
    crash), ``current`` (already applied), ``rewritten`` (applied, but Redis lost it: written again) or
    ``none`` (the rollout logs no writes)."""

    outcome: str
    write: OverrideWrite | None
    version: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "decision_id": self.write.decision_id if self.write else None,
            "version": self.version,
        }


def sync(store: RolloutStore, overrides: OverrideStore, name: str, flag: str) -> SyncResult:
    """Make the override layer show the rollout's latest decision (module docstring); ``flag`` is the
    bound flag. Raises ``redis.RedisError`` when Redis fails; then nothing is marked and the next call
    tries again."""
    for _ in range(_MAX_ROUNDS):
        # The version first: any write after this read makes the compare-and-set below fail.
        version = current_version(overrides, flag)
        write = store.latest_write(name)
        if write is None:
            return SyncResult("none", None, None)
        if write.status == "applied":
            if not _lost(overrides, write):
                return SyncResult("current", write, write.override_version)
            # Redis lost its data (restarted without persistence): the counter is behind our write. The
            # last decision is written again, so clients do not fall back to the snapshot's percentage.
            try:
                result = write_override(
                    overrides,
                    write.flag,
                    write.patch,
                    actor=write.actor,
                    reason=write.reason,
                    op=write.op,
                    expect_version=version,
                )
            except VersionConflict:
                continue
            store.mark_rewritten(write.decision_id, result.version)
            return SyncResult("rewritten", write, result.version)
        store.mark_superseded(name, write.decision_id)
        found = find_write(overrides, write.flag, write.reason, write.base_version)
        if found is not None:
            store.mark_applied(write.decision_id, found.version)
            return SyncResult("found", write, found.version)
        _halt("before-write", write)
        try:
            result = write_override(
                overrides,
                write.flag,
                write.patch,
                actor=write.actor,
                reason=write.reason,
                op=write.op,
                expect_version=version,
            )
        except VersionConflict:
            continue  # someone wrote in between (maybe this very decision): look again
        _halt("after-write", write)
        store.mark_applied(write.decision_id, result.version)
        return SyncResult("written", write, result.version)
    raise RuntimeError(f"rollout {name!r}: the override kept changing under {_MAX_ROUNDS} attempts to write it")


def _lost(overrides: OverrideStore, write: OverrideWrite) -> bool:
    """Whether the override layer lost an applied write: its version counter (which only grows, a
    `tusk flags clear` included) is below the write's version, so Redis started again from nothing."""
    counter = overrides.version()
    return counter is not None and write.override_version is not None and counter < write.override_version


def _halt(phase: str, write: OverrideWrite) -> None:
    """The test hook: stop dead here when ``TUSK_ROLLOUT_TEST_HALT`` matches this write."""
    spec = os.environ.get(HALT_ENV)
    if not spec:
        return
    parts = spec.split(":")
    if parts[0] != phase:
        return
    action = write.op.removeprefix("rollout-")
    if len(parts) > 1 and parts[1] not in ("", action):
        return
    if len(parts) > 2 and float(parts[2]) != write.canary_percent:
        return
    print(
        f"{HALT_ENV}: halted {phase.replace('-', ' ')} of decision #{write.decision_id} ({action} "
        f"{write.canary_percent:g}%)",
        file=sys.stderr,
        flush=True,
    )
    while True:
        time.sleep(3600)
