"""Canonical snapshot JSON: sorted keys, fixed layout, so identical inputs give identical bytes."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..cli._common import write_atomic


def canonical_json(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def compile_time() -> str | None:
    """The compile time, only from SOURCE_DATE_EPOCH (reproducible builds); otherwise none is recorded."""
    raw = os.environ.get("SOURCE_DATE_EPOCH")
    if not raw:
        return None
    try:
        return datetime.fromtimestamp(int(raw), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError):
        return None


def write_snapshot(path: str | os.PathLike[str], text: str) -> None:
    """Atomic: readers see the old snapshot or the new one, never half of either."""
    write_atomic(Path(path), text)
