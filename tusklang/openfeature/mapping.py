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

    The context itself when nothing changes: a bulk request evaluates every flag with it."""
    if found is None or "targetingKey" not in context or context.get(found.bucket_by) is not None:
        return context
    return {**context, found.bucket_by: context["targetingKey"]}


def flag_metadata(found: Flag | None, rule: str | None) -> dict[str, bool | int | float | str]:
    """OpenFeature flag metadata is a flat map of booleans, numbers and strings: the flag's scalar
    metadata, plus the rule that decided the result."""
    out: dict[str, bool | int | float | str] = {}
    if found is not None:
        out = {k: v for k, v in found.metadata.items() if isinstance(v, bool | int | float | str)}
    if rule is not None:
        out.setdefault("rule", rule)
    return out
