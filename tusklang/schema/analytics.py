"""``feature_analytics_config`` and ``feature_flags.analytics``: what to track and report."""

from __future__ import annotations

from ._base import ConfigModel, Duration, Fraction


class FlagAnalyticsTracking(ConfigModel):
    flag_evaluations: bool = True
    user_exposure: bool = True
    performance_impact: bool = False
    business_metrics: bool = False


class FlagAnalyticsReporting(ConfigModel):
    real_time_dashboard: bool = False
    flag_performance: bool = False
    user_segment_analysis: bool = False
    a_b_test_results: bool = False


class FlagAnalytics(ConfigModel):
    enabled: bool = True
    tracking: FlagAnalyticsTracking = FlagAnalyticsTracking.model_construct()
    reporting: FlagAnalyticsReporting = FlagAnalyticsReporting.model_construct()


class FlagEvaluationsTracking(ConfigModel):
    enabled: bool = True
    track_user_context: bool = False
    track_performance_impact: bool = False


class UserExposureTracking(ConfigModel):
    enabled: bool = True
    track_exposure_time: bool = False
    track_feature_usage: bool = False


class PerformanceImpactTracking(ConfigModel):
    enabled: bool = True
    metrics: list[str] = []
    sampling_rate: Fraction = 1.0


class BusinessMetricsTracking(ConfigModel):
    enabled: bool = True
    metrics: list[str] = []
    correlation_analysis: bool = False


class Tracking(ConfigModel):
    flag_evaluations: FlagEvaluationsTracking | None = None
    user_exposure: UserExposureTracking | None = None
    performance_impact: PerformanceImpactTracking | None = None
    business_metrics: BusinessMetricsTracking | None = None


class DashboardReport(ConfigModel):
    enabled: bool = True
    refresh_interval: Duration | None = None
    widgets: list[str] = []


class FlagPerformanceReport(ConfigModel):
    enabled: bool = True
    metrics: list[str] = []
    trend_analysis: bool = False


class SegmentAnalysisReport(ConfigModel):
    enabled: bool = True
    segment_comparison: bool = False
    behavior_analysis: bool = False


class Reporting(ConfigModel):
    real_time_dashboard: DashboardReport | None = None
    flag_performance: FlagPerformanceReport | None = None
    user_segment_analysis: SegmentAnalysisReport | None = None


class FeatureAnalyticsConfig(ConfigModel):
    tracking: Tracking = Tracking.model_construct()
    reporting: Reporting = Reporting.model_construct()
