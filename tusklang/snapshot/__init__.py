"""The JSON flag snapshot: the compiler's output and the evaluator's only input. See docs/snapshot.md."""

from __future__ import annotations

from typing import Any

from .models import DEFAULT_SCALE, FORMAT, Experiment, Flag, Prerequisite, Rule, Segment, Snapshot
from .validate import load_snapshot


def snapshot_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the snapshot shape; whole-document checks are in load_snapshot."""
    schema = Snapshot.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://tusklang.dev/schemas/snapshot-1.json"
    return schema


__all__ = [
    "DEFAULT_SCALE",
    "FORMAT",
    "Experiment",
    "Flag",
    "Prerequisite",
    "Rule",
    "Segment",
    "Snapshot",
    "load_snapshot",
    "snapshot_json_schema",
]
