"""Loading the ``progressive_delivery`` policy for the controllers: every problem a TSK800 diagnostic.

The model itself is ``tusklang.schema.delivery`` (stage 5, beside every other input model, so the
schema and the linter need not import this package); it is re-exported here for the controllers and
for callers that import it from ``tusklang.delivery``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ..diagnostics import Diagnostic, TuskError
from ..schema._base import Duration
from ..schema.delivery import (
    DEFAULT_DIRECTIONS,
    DEFAULT_FAILURE_LIMIT,
    DEFAULT_STEP_SIZE,
    Binding,
    BlueGreenPolicy,
    CanaryPolicy,
    Check,
    CompareCheck,
    Comparison,
    DeliveryPolicy,
    Direction,
    EventMetric,
    FeatureGates,
    FlagBinding,
    Gate,
    HealthChecks,
    Rollback,
    TrafficSplit,
    format_duration,
)
from ..schema.durations import parse_duration

__all__ = [
    "DEFAULT_DIRECTIONS",
    "DEFAULT_FAILURE_LIMIT",
    "DEFAULT_STEP_SIZE",
    "Binding",
    "BlueGreenPolicy",
    "CanaryPolicy",
    "Check",
    "CompareCheck",
    "Comparison",
    "DeliveryPolicy",
    "Direction",
    "Duration",
    "EventMetric",
    "FeatureGates",
    "FlagBinding",
    "Gate",
    "HealthChecks",
    "Rollback",
    "TrafficSplit",
    "format_duration",
    "load_policy",
    "parse_duration",
]


def load_policy(block: Mapping[str, Any]) -> DeliveryPolicy:
    """Validate a ``progressive_delivery`` mapping; every problem becomes a TSK800 diagnostic."""
    try:
        return DeliveryPolicy.model_validate(dict(block))
    except ValidationError as exc:
        diagnostics = []
        for error in exc.errors(include_url=False):
            path = ".".join(str(part) for part in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            where = f"progressive_delivery.{path}" if path else "progressive_delivery"
            diagnostics.append(Diagnostic("TSK800", f"{where}: {message}"))
        raise TuskError(diagnostics) from None
