"""The whole project: the seed's eight top-level blocks, each optional, nothing else."""

from __future__ import annotations

from ._base import ConfigModel
from .ab_testing import ABTestingConfig
from .analytics import FeatureAnalyticsConfig
from .dashboard import Dashboard
from .feature_flags import FeatureFlagsConfig
from .flag_rows import FeatureFlagsData
from .management import ManagementConfig
from .performance import PerformanceConfig
from .security import SecurityConfig


class ProjectConfig(ConfigModel):
    feature_flags: FeatureFlagsConfig | None = None
    ab_testing_config: ABTestingConfig | None = None
    feature_analytics_config: FeatureAnalyticsConfig | None = None
    feature_flags_data: FeatureFlagsData | None = None
    real_time_feature_dashboard: Dashboard | None = None
    management_config: ManagementConfig | None = None
    performance_config: PerformanceConfig | None = None
    security_config: SecurityConfig | None = None
