"""``TuskProvider``: evaluate a snapshot in process behind the OpenFeature Python SDK.

An application that already speaks OpenFeature swaps its provider and keeps its code::

    from openfeature import api
    from tusklang.openfeature import TuskProvider

    api.set_provider(TuskProvider.from_file("flags.json", watch=True))
    api.get_client().get_boolean_value("new_checkout_flow", False, EvaluationContext("user-1", {...}))

Results are the reference evaluator's (value, variant, reason, the deciding rule and, with reason
PREREQUISITE_FAILED, the prerequisite that did not hold, as flag metadata); the
``targetingKey`` stands in for a flag's ``bucket_by`` attribute when the context lacks it, as in
``tusk serve``. Errors follow OpenFeature: an unknown flag is FLAG_NOT_FOUND, a value of another type
than the getter's is TYPE_MISMATCH, and the caller's default is returned. ``track()`` records a
conversion with the client's tracker (``Client(..., tracker=EventTracker(...))``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata
from openfeature.track import TrackingEventDetails

from ..evaluate import Client
from ..evaluate import reasons as r
from ..evaluate.result import EvaluationResult
from .mapping import TargetingKey, definition, flag_metadata

T = TypeVar("T")

_ERRORS = {
    r.FLAG_NOT_FOUND: ErrorCode.FLAG_NOT_FOUND,
    r.TYPE_MISMATCH: ErrorCode.TYPE_MISMATCH,
    r.INVALID_CONTEXT: ErrorCode.INVALID_CONTEXT,
    r.TARGETING_KEY_MISSING: ErrorCode.TARGETING_KEY_MISSING,
    r.PARSE_ERROR: ErrorCode.PARSE_ERROR,
    r.GENERAL: ErrorCode.GENERAL,
}
_REASONS = {
    r.STATIC: Reason.STATIC,
    r.TARGETING_MATCH: Reason.TARGETING_MATCH,
    r.SPLIT: Reason.SPLIT,
    r.DEFAULT: Reason.DEFAULT,
    r.DISABLED: Reason.DISABLED,
    r.ERROR: Reason.ERROR,
}


def _context(evaluation_context: EvaluationContext | None) -> dict[str, Any]:
    if evaluation_context is None:
        return {}
    out = dict(evaluation_context.attributes)
    if evaluation_context.targeting_key is not None:
        out["targetingKey"] = evaluation_context.targeting_key
    return out


class TuskProvider(AbstractProvider):
    """An OpenFeature provider over a ``tusklang.evaluate.Client`` (snapshot JSON, evaluated locally)."""

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client
        self._targeting = TargetingKey()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, watch: bool = False, **client_options: Any) -> TuskProvider:
        """A provider over ``Client.from_file(path, watch=..., overrides=..., tracker=...)``."""
        return cls(Client.from_file(path, watch=watch, **client_options))

    def get_metadata(self) -> Metadata:
        return Metadata(name="tusklang")

    def shutdown(self) -> None:
        self.client.close()

    # --- evaluation ----------------------------------------------------------------------------

    def _resolve(
        self, key: str, default: T, expected: str, evaluation_context: EvaluationContext | None
    ) -> FlagResolutionDetails[T]:
        snapshot = self.client.snapshot
        found = definition(snapshot, key)
        context = self._targeting.context(snapshot, key, _context(evaluation_context))
        result = self.client.evaluate_typed(key, expected, context, default)
        if expected == "number" and result.error_code is None:
            result = _integral(result, default)
        return self._details(result, found, default)

    def _details(self, result: EvaluationResult, found: Any, default: T) -> FlagResolutionDetails[T]:
        if result.error_code is not None:
            return FlagResolutionDetails(
                value=default,
                error_code=_ERRORS.get(result.error_code, ErrorCode.GENERAL),
                error_message=result.detail,
                reason=Reason.ERROR,
            )
        return FlagResolutionDetails(
            value=result.value,
            # PREREQUISITE_FAILED is not one of the SDK's Reason members; OpenFeature allows other strings.
            reason=_REASONS.get(result.reason, result.reason),
            variant=result.variant,
            flag_metadata=flag_metadata(found, result.rule, result.prerequisite),
        )

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, "boolean", evaluation_context)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, "string", evaluation_context)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, "number", evaluation_context)

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, "number", evaluation_context)

    def resolve_object_details(  # type: ignore[override]
        self,
        flag_key: str,
        default_value: Mapping[str, Any] | list[Any],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Any]:
        return self._resolve(flag_key, default_value, "object", evaluation_context)

    # --- tracking ------------------------------------------------------------------------------

    def track(
        self,
        tracking_event_name: str,
        evaluation_context: EvaluationContext | None = None,
        tracking_event_details: TrackingEventDetails | None = None,
    ) -> None:
        value = tracking_event_details.value if tracking_event_details is not None else None
        self.client.track(tracking_event_name, _context(evaluation_context), value)


def _integral(result: EvaluationResult, default: Any) -> EvaluationResult:
    """An integer getter must not receive 1.5, nor a float getter's caller be surprised by an int:
    the number is converted when exact, otherwise it is a TYPE_MISMATCH."""
    value = result.value
    if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float):
        if not value.is_integer():
            detail = f"`{result.flag}` serves {value}, the caller asked for an integer"
            return EvaluationResult(result.flag, default, None, r.ERROR, result.rule, r.TYPE_MISMATCH, detail)
        return replace(result, value=int(value))
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return replace(result, value=float(value))
    return result
