"""``ab_testing_config``: experiments (variants, metrics, targeting, analysis) and analysis defaults."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ._base import ConfigModel, Percent
from ._weights import VariantWeight
from .feature_flags import AttributeTargeting


class ExperimentMetrics(ConfigModel):
    primary: Annotated[list[str], Field(min_length=1)]
    secondary: list[str] = []


class ExperimentTargeting(AttributeTargeting):
    user_segments: list[str] = ["all_users"]
    traffic_percentage: Percent = 100
    duration: str | None = None
    # ISO date or date-time the experiment starts; required with `duration`.
    start: str | None = None


class ExperimentAnalysis(ConfigModel):
    statistical_significance: Annotated[float, Field(gt=0, lt=1)] = 0.95
    minimum_sample_size: Annotated[int, Field(ge=1)] = 100
    bayesian_analysis: bool = False


class ExperimentConfig(ConfigModel):
    enabled: bool = True
    control: str = "control"
    bucket_by: str = "user_id"
    variants: Annotated[dict[str, VariantWeight], Field(min_length=2)]
    metrics: ExperimentMetrics | None = None
    targeting: ExperimentTargeting = ExperimentTargeting.model_construct()
    analysis: ExperimentAnalysis | None = None


class BayesianDefaults(ConfigModel):
    enabled: bool = True
    prior_belief: Annotated[float, Field(gt=0, lt=1)] = 0.5
    confidence_level: Annotated[float, Field(gt=0, lt=1)] = 0.95


class FrequentistDefaults(ConfigModel):
    enabled: bool = True
    significance_level: Annotated[float, Field(gt=0, lt=1)] = 0.05
    power: Annotated[float, Field(gt=0, lt=1)] = 0.8


class AnalysisReporting(ConfigModel):
    real_time_dashboard: bool = False
    automated_insights: bool = False
    winner_detection: bool = False


class AnalysisDefaults(ConfigModel):
    bayesian_analysis: BayesianDefaults | None = None
    frequentist_analysis: FrequentistDefaults | None = None
    reporting: AnalysisReporting | None = None


class ABTestingConfig(ConfigModel):
    experiments: dict[str, ExperimentConfig] = {}
    analysis: AnalysisDefaults | None = None
