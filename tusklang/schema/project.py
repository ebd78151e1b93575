"""The whole project: the seed's eight top-level blocks and a top-level `progressive_delivery`, each
optional, nothing else."""

from __future__ import annotations

from ._base import ConfigModel
from .ab_testing import ABTestingConfig
from .analytics import FeatureAnalyticsConfig
from .dashboard import Dashboard
from .delivery import DeliveryPolicy
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
    # Also accepted under feature_flags (where the seed has it); a file of its own for `tusk rollout start
    # --config` holds it at the top level. One project defines one (TSK318 when both).
    progressive_delivery: DeliveryPolicy | None = None

    def delivery_policies(self) -> list[tuple[tuple[str, ...], DeliveryPolicy]]:
        """Each progressive_delivery block with its path, the top-level one (which `tusk rollout` reads
        first) first."""
        found: list[tuple[tuple[str, ...], DeliveryPolicy]] = []
        if self.progressive_delivery is not None:
            found.append((("progressive_delivery",), self.progressive_delivery))
        nested = self.feature_flags.progressive_delivery if self.feature_flags else None
        if nested is not None:
            found.append((("feature_flags", "progressive_delivery"), nested))
        return found
