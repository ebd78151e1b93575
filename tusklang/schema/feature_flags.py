"""``feature_flags = { ... }``: storage, flags, progressive delivery, targeting, analytics."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from ._base import ConfigModel, FreeForm, Percent
from ._weights import VariantWeight
from .analytics import FlagAnalytics
from .delivery import DeliveryPolicy
from .rules import FlagType, RuleConfig, Variant

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
RolloutStrategy = Literal[
    "percentage", "gradual", "user_preference", "invite_only", "targeted", "all", "none", "canary"
]


class Storage(ConfigModel):
    type: Literal["redis", "memory", "database", "file"]
    # A secret (usually @env(...)); validated for presence only and never written to the snapshot.
    connection: Any = None
    key_prefix: str = "feature_flags:"
    ttl: Annotated[int, Field(ge=0)] = 300


class TimeOfDay(ConfigModel):
    start: str
    end: str
    days: list[Weekday] | None = None
    time_zone: str = "UTC"


class AttributeTargeting(ConfigModel):
    """Lists matched against one context attribute each (``environments`` -> ``environment``...)."""

    environments: list[str] | None = None
    regions: list[str] | None = None
    account_tiers: list[str] | None = None
    device_types: list[str] | None = None
    platforms: list[str] | None = None
    plans: list[str] | None = None


class FlagTargeting(AttributeTargeting):
    user_segments: list[str] | None = None
    user_preferences: list[str] | None = None
    # min_<attribute> / max_<attribute> = number: the context's <attribute> >= / <= number.
    feature_usage: dict[str, float] | None = None
    time_of_day: TimeOfDay | None = None
    beta_testers: bool | None = None
    manual_override: bool = False
    # variant name -> unit ids served that variant before any other rule (needs manual_override).
    overrides: dict[str, list[str]] | None = None


class StructuredFallback(ConfigModel):
    type: Literal["static"]
    value: Any


def _fallback_kind(value: Any) -> str:
    return "structured" if isinstance(value, dict) and "type" in value else "plain"


Fallback = Annotated[
    Annotated[StructuredFallback, Tag("structured")] | Annotated[Any, Tag("plain")],
    Discriminator(_fallback_kind),
]


class FlagABTesting(ConfigModel):
    enabled: bool = True
    variants: Annotated[dict[str, VariantWeight], Field(min_length=2)]
    metrics: list[str] = []
    description: str | None = None


class FlagConfig(ConfigModel):
    enabled: bool = True
    rollout_strategy: RolloutStrategy = "percentage"
    rollout_percentage: Percent | None = None
    # day_<N> = percent, plus an optional start = "2024-01-15" (else metadata.created_at).
    rollout_schedule: dict[str, Any] | None = None
    targeting: FlagTargeting = FlagTargeting.model_construct()
    fallback: Fallback = False
    metadata: FreeForm = {}
    a_b_testing: FlagABTesting | None = None
    bucket_by: str = "user_id"
    # The typed flag model (docs/config.md, "Variants and rules"); each is optional, so the seed's flags
    # read as before.
    type: FlagType | None = Field(
        default=None, description="The type of every value the flag serves; inferred from the values when absent."
    )
    variants: Annotated[dict[str, Variant], Field(min_length=1)] | None = Field(
        default=None,
        description="Named values the flag serves: `name = value` or `name = { value = ..., weight = ... }`.",
    )
    value: Any = Field(default=None, description="What the flag serves when on (without `variants`).")
    rules: list[RuleConfig] | None = Field(
        default=None, description="Rules on any context attribute, in order: the first that serves wins."
    )
    requires: Annotated[dict[str, Any], Field(min_length=1)] | None = Field(
        default=None,
        description='Prerequisites: `other_flag = "variant"` (or a value, or a list of either), checked first.',
    )


class SegmentConfig(ConfigModel):
    criteria: Annotated[dict[str, Any], Field(min_length=1)]
    match: Literal["all", "any"] = "all"
    description: str | None = None


class EnvironmentConfig(ConfigModel):
    auto_enable: bool = False
    override_allowed: bool = True
    approval_required: bool = False


class GlobalTargeting(ConfigModel):
    user_segments: dict[str, SegmentConfig] = {}
    environments: dict[str, EnvironmentConfig] = {}
    # Segments the application computes (matched against the context's `segments` list).
    external_segments: list[str] = []


class FeatureFlagsConfig(ConfigModel):
    enabled: bool = True
    storage: Storage | None = None
    flags: dict[str, FlagConfig] = {}
    progressive_delivery: DeliveryPolicy | None = None
    targeting: GlobalTargeting = GlobalTargeting.model_construct()
    analytics: FlagAnalytics | None = None
