"""How OpenFeature's vocabulary maps onto a snapshot: the targeting key and flag metadata."""

from __future__ import annotations

from typing import Any

from ..snapshot import Snapshot
from ..snapshot.models import Flag


def definition(snapshot: Snapshot, key: str) -> Flag | None:
    """The flag (or, when no flag has that key, the experiment) named ``key``."""
    return snapshot.flags.get(key) or snapshot.experiments.get(key)


def with_targeting_key(found: Flag | None, context: dict[str, Any]) -> dict[str, Any]:
    """OpenFeature's ``targetingKey`` stands in for the flag's ``bucket_by`` attribute when that is absent.

    The context itself when nothing changes. (``TargetingKey`` also covers the flag's prerequisites.)"""
    if found is None or "targetingKey" not in context or context.get(found.bucket_by) is not None:
        return context
    return {**context, found.bucket_by: context["targetingKey"]}


class TargetingKey:
    """OpenFeature's ``targetingKey`` as the unit id, for one snapshot at a time (a reload starts over).

    It stands in for the ``bucket_by`` attribute of the flag evaluated and of each of its prerequisites
    (transitively) that the context lacks: a prerequisite is evaluated with the flag's context, and must
    see the same unit id it sees when it is evaluated on its own.
    """

    def __init__(self) -> None:
        # (snapshot, key -> attributes), replaced as a whole so concurrent callers never mix snapshots.
        self._state: tuple[Snapshot | None, dict[str, tuple[str, ...]]] = (None, {})

    def attributes(self, snapshot: Snapshot, key: str) -> tuple[str, ...]:
        """The flag's ``bucket_by``, then its prerequisites', without repeats; () for an unknown key."""
        state = self._state
        if state[0] is not snapshot:
            state = self._state = (snapshot, {})
        found = state[1].get(key)
        if found is None:
            found = _unit_attributes(snapshot, key)
            if len(state[1]) < 100_000:
                state[1][key] = found
        return found

    def missing(self, snapshot: Snapshot, key: str, context: dict[str, Any]) -> tuple[str, ...]:
        """The attributes the targeting key stands in for when evaluating ``key`` with ``context``."""
        if "targetingKey" not in context:
            return ()
        return tuple(name for name in self.attributes(snapshot, key) if context.get(name) is None)

    def context(self, snapshot: Snapshot, key: str, context: dict[str, Any]) -> dict[str, Any]:
        """``context`` with the targeting key under every such attribute it lacks (itself when none)."""
        return fill(context, self.missing(snapshot, key, context))


def fill(context: dict[str, Any], missing: tuple[str, ...]) -> dict[str, Any]:
    """``context`` with its targeting key under each of ``missing`` (itself when there are none)."""
    if not missing:
        return context
    return {**context, **dict.fromkeys(missing, context["targetingKey"])}


def _unit_attributes(snapshot: Snapshot, key: str) -> tuple[str, ...]:
    out: list[str] = []
    seen = {key}
    pending = [key]
    while pending:  # prerequisite chains are bounded and acyclic (validated); no recursion needed anyway
        found = definition(snapshot, pending.pop(0))
        if found is None:
            continue
        if found.bucket_by not in out:
            out.append(found.bucket_by)
        for prerequisite in found.prerequisites:
            if prerequisite.flag not in seen:
                seen.add(prerequisite.flag)
                pending.append(prerequisite.flag)
    return tuple(out)


def flag_metadata(
    found: Flag | None, rule: str | None, prerequisite: str | None = None
) -> dict[str, bool | int | float | str]:
    """OpenFeature flag metadata is a flat map of booleans, numbers and strings: the flag's scalar
    metadata, plus ``rule`` (the rule that decided the result) and ``prerequisite`` (with reason
    PREREQUISITE_FAILED: the prerequisite that did not hold), each unless the flag's metadata uses the key."""
    out: dict[str, bool | int | float | str] = {}
    if found is not None:
        out = {k: v for k, v in found.metadata.items() if isinstance(v, bool | int | float | str)}
    if rule is not None:
        out.setdefault("rule", rule)
    if prerequisite is not None:
        out.setdefault("prerequisite", prerequisite)
    return out
