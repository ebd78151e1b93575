"""``feature_flags_data``: flags and segments arriving as ``@query`` rows, plus runtime data sets."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ._base import ConfigModel, RowModel
from .feature_flags import RolloutStrategy


class FlagRow(RowModel):
    """One row of ``flag_definitions``; JSON columns arrive decoded (or as JSON text, decoded here)."""

    flag_name: str = Field(min_length=1)
    enabled: bool
    rollout_strategy: RolloutStrategy
    rollout_percentage: float = Field(ge=0, le=100)
    targeting_rules: dict[str, Any] = {}
    fallback_value: Any = False
    metadata: dict[str, Any] = {}
    # What the flag serves when on (optional column): without it a row flag serves `true` (boolean
    # fallback) or a value derived from the fallback's type (docs/config.md, "Value types").
    value: Any = None


class SegmentRow(RowModel):
    segment_name: str = Field(min_length=1)
    criteria: dict[str, Any] = Field(min_length=1)
    user_count: int | None = None
    last_updated: Any = None


class FeatureFlagsData(ConfigModel):
    flag_definitions: list[FlagRow] | None = None
    user_segments: list[SegmentRow] | None = None
    # Runtime data sets, not configuration: read by the statistics and dashboard tools, not compiled.
    flag_evaluations: list[dict[str, Any]] | None = None
    experiment_results: list[dict[str, Any]] | None = None
    performance_impact: list[dict[str, Any]] | None = None
