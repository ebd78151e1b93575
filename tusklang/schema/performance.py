"""``performance_config``: evaluator caching and analytics batching settings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ._base import ConfigModel, Fraction, Size


class Caching(ConfigModel):
    enabled: bool = True
    cache_ttl: Annotated[int, Field(ge=0)] = 300
    cache_size: Size | None = None
    eviction_policy: Literal["lru", "lfu", "fifo"] = "lru"


class EvaluationOptimization(ConfigModel):
    lazy_evaluation: bool = False
    result_caching: bool = False
    batch_evaluation: bool = False


class AnalyticsOptimization(ConfigModel):
    sampling_rate: Fraction = 1.0
    batch_processing: bool = False
    async_tracking: bool = False


class PerformanceConfig(ConfigModel):
    caching: Caching | None = None
    evaluation_optimization: EvaluationOptimization | None = None
    analytics_optimization: AnalyticsOptimization | None = None
