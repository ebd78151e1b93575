"""The JSON flag snapshot: the compiler's output and the evaluator's only input. See docs/snapshot.md."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .format import DEFAULT_SCALE, FORMAT

if TYPE_CHECKING:
    from .models import Experiment, Flag, Prerequisite, Rule, Segment, Snapshot
    from .validate import load_snapshot

# The models are pydantic classes, imported on first use: the compiler needs only `.format` from this
# package (and `tusk check` never the models, issue 19), yet importing any submodule runs this file.
_LAZY = {
    "Experiment": "models",
    "Flag": "models",
    "Prerequisite": "models",
    "Rule": "models",
    "Segment": "models",
    "Snapshot": "models",
    "load_snapshot": "validate",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def snapshot_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the snapshot shape; whole-document checks are in load_snapshot."""
    from .models import Snapshot

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
