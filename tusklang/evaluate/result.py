"""The outcome of one evaluation: value, variant and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """Immutable, so the evaluator can hand out one precomputed instance per (rule, variant)."""

    flag: str
    value: Any
    variant: str | None
    reason: str
    rule: str | None = None
    error_code: str | None = None
    detail: str | None = None
    # With reason PREREQUISITE_FAILED: the key of the prerequisite that did not hold.
    prerequisite: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "flag": self.flag,
            "value": self.value,
            "variant": self.variant,
            "reason": self.reason,
            "rule": self.rule,
            "error_code": self.error_code,
        }
        if self.detail is not None:
            out["detail"] = self.detail
        if self.prerequisite is not None:
            out["prerequisite"] = self.prerequisite
        return out
