"""The outcome of one evaluation: value, variant and why."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from . import reasons as r

log = logging.getLogger("tusklang.evaluate")


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


def raised(key: str, exc: BaseException) -> EvaluationResult:
    """The ERROR result of an evaluation that raised ``exc``.

    A unit id holding a lone surrogate (json.loads accepts "\\ud800") cannot be encoded to be hashed:
    the context's fault, INVALID_CONTEXT and not logged. Anything else is an evaluator bug: GENERAL,
    logged with its traceback.
    """
    if isinstance(exc, UnicodeEncodeError):
        char = exc.object[exc.start : exc.end]
        detail = f"a unit id is not valid Unicode text: it holds {char!r} (a lone surrogate)"
        return EvaluationResult(key, None, None, r.ERROR, None, r.INVALID_CONTEXT, detail)
    log.error("evaluation of %s failed", key, exc_info=exc)
    return EvaluationResult(key, None, None, r.ERROR, None, r.GENERAL, f"{type(exc).__name__}: {exc}")
