"""Pydantic models of the JSON flag snapshot (format ``tusklang.snapshot/1``).

The snapshot is the contract between the compiler and every evaluator: it holds rules in one general,
already-lowered form so an evaluator never reinterprets TuskLang. Shape checks live here; checks that
need the whole document (variant references, segment references, cycles) live in ``validate.py``.
Every model forbids unknown keys so a typo in a hand-edited or foreign snapshot is an error, not a
silently ignored rule.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from .format import DEFAULT_SCALE as DEFAULT_SCALE
from .format import FORMAT as FORMAT

Scalar = StrictBool | StrictInt | StrictFloat | StrictStr
"""A JSON scalar compared against a context attribute (null is not a comparable value)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- conditions -------------------------------------------------------------------------------------


class InCondition(_Model):
    """Scalar attribute equals one of ``values`` (``in``) or none of them (``not_in``)."""

    op: Literal["in", "not_in"]
    attribute: StrictStr
    values: list[Scalar]


class CompareCondition(_Model):
    """Scalar comparison. Ordering ops need a number on both sides; ``unit`` documents the unit the
    attribute is expressed in (``account_age <= 30`` with unit ``days``) and is shown in explanations."""

    op: Literal["==", "!=", "<", "<=", ">", ">="]
    attribute: StrictStr
    value: Scalar
    unit: StrictStr | None = None


class ContainsCondition(_Model):
    """List-valued attribute holds any / all of ``values``."""

    op: Literal["contains_any", "contains_all"]
    attribute: StrictStr
    values: list[Scalar]


class StringCondition(_Model):
    """String attribute starts/ends with or ``contains`` ``value`` (case-sensitive), or ``matches`` the
    regular expression (re.search)."""

    op: Literal["starts_with", "ends_with", "contains", "matches"]
    attribute: StrictStr
    value: StrictStr


class SemverCondition(_Model):
    """Semantic-version comparison (SemVer 2.0 precedence; a leading ``v`` and missing minor/patch are
    accepted)."""

    op: Literal["semver_eq", "semver_ne", "semver_lt", "semver_le", "semver_gt", "semver_ge"]
    attribute: StrictStr
    value: StrictStr


class DateCondition(_Model):
    """Attribute (an ISO-8601 date-time string, or epoch seconds) strictly before / after ``value``."""

    op: Literal["before", "after"]
    attribute: StrictStr
    value: datetime


class ExistsCondition(_Model):
    """``exists``: the attribute is present and not null; ``not_exists``: it is absent or null (the one
    attribute condition a missing attribute satisfies)."""

    op: Literal["exists", "not_exists"]
    attribute: StrictStr


class SegmentCondition(_Model):
    """The unit belongs to ANY of the named segments."""

    op: Literal["segment"]
    segments: list[StrictStr] = Field(min_length=1)


class TimeWindowCondition(_Model):
    """Minute-of-day window ``[start_minute, end_minute)``; crosses midnight when start > end.

    Evaluated in the context's ``timezone`` attribute when it is a valid IANA name, else in the flag's
    ``time_zone``.
    """

    op: Literal["time_window"]
    start_minute: StrictInt = Field(ge=0, le=1439)
    end_minute: StrictInt = Field(ge=0, le=1439)
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = None


class ActiveBetweenCondition(_Model):
    """Evaluation time in ``[start, end)``; ``end`` null means open-ended."""

    op: Literal["active_between"]
    start: datetime
    end: datetime | None = None


class LogicalCondition(_Model):
    op: Literal["all", "any"]
    conditions: list[Condition]


class NotCondition(_Model):
    op: Literal["not"]
    condition: Condition


Condition = Annotated[
    InCondition
    | CompareCondition
    | ContainsCondition
    | StringCondition
    | SemverCondition
    | DateCondition
    | ExistsCondition
    | SegmentCondition
    | TimeWindowCondition
    | ActiveBetweenCondition
    | LogicalCondition
    | NotCondition,
    Field(discriminator="op"),
]


# --- rollouts, splits, rules ------------------------------------------------------------------------


class ScheduleStep(_Model):
    at: datetime
    percentage: StrictInt = Field(ge=0)


class Rollout(_Model):
    """A monotone percentage gate: a unit is admitted when its bucket (on ``scale``) < percentage.

    Exactly one of ``percentage`` (fixed) or ``schedule`` (the latest step with ``at <= now`` is active;
    0 before the first step) is given.
    """

    salt: StrictStr = Field(min_length=1)
    percentage: StrictInt | None = Field(default=None, ge=0)
    schedule: list[ScheduleStep] | None = None


class Split(_Model):
    """Weighted variant assignment; weights are integers (any total, conventionally ``scale``)."""

    salt: StrictStr = Field(min_length=1)
    weights: list[tuple[StrictStr, Annotated[StrictInt, Field(ge=0)]]] = Field(min_length=1)


class Rule(_Model):
    id: StrictStr = Field(min_length=1)
    conditions: list[Condition] = Field(default_factory=list)
    rollout: Rollout | None = None
    split: Split | None = None
    serve: StrictStr | None = None
    description: StrictStr | None = None


class Prerequisite(_Model):
    """Another flag (or experiment) of the same snapshot that must serve one of ``variants`` first.

    Evaluated exactly as evaluating ``flag`` itself with the same context and time would be (its own
    prerequisites, rules and overrides included); it holds when the variant served is listed, whatever
    the reason (DISABLED too). When it does not hold, the flag serves its ``off_variant`` with reason
    PREREQUISITE_FAILED, naming ``flag``.
    """

    flag: StrictStr = Field(min_length=1)
    variants: list[StrictStr] = Field(min_length=1)


class Flag(_Model):
    key: StrictStr = Field(min_length=1)
    type: Literal["boolean", "string", "number", "object"]
    enabled: StrictBool = True
    variants: dict[str, Any] = Field(min_length=1)
    off_variant: StrictStr
    default_variant: StrictStr
    bucket_by: StrictStr = "user_id"
    time_zone: StrictStr = "UTC"
    # Checked in order after `enabled` and before any rule; absent (the default) = none. Optional so a
    # snapshot without prerequisites is byte-identical to one written before they existed.
    prerequisites: list[Prerequisite] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Experiment(Flag):
    """An experiment is a flag (same evaluation) with analysis configuration for the statistics side."""

    metrics: dict[str, Any] | None = None
    analysis: dict[str, Any] | None = None


class Segment(_Model):
    conditions: list[Condition] = Field(default_factory=list)
    match: Literal["all", "any"] = "all"
    description: StrictStr | None = None


class StorageSettings(_Model):
    """Where runtime overrides live (`tusk flags`, Client(overrides=...)); never the connection string."""

    type: Literal["redis", "memory", "database", "file"]
    key_prefix: StrictStr = "feature_flags:"
    ttl: StrictInt = Field(default=300, ge=0)


class TrackingSettings(_Model):
    """What an event tracker records (tusklang.events.EventTracker)."""

    evaluations: StrictBool = True
    exposures: StrictBool = True
    sampling_rate: float = Field(default=1.0, ge=0, le=1, strict=True)  # 1 and 0.5; not "0.5", not true


class DataProtectionSettings(_Model):
    pii_masking: StrictBool = False
    retention_seconds: StrictInt | None = Field(default=None, gt=0)
    # security_config.compliance.consent_tracking: the context attribute whose value must allow analytics
    # before a tracker records anything (tusklang/events/consent.py); absent = consent not required.
    consent_attribute: StrictStr | None = Field(default=None, min_length=1)


class RoleSettings(_Model):
    """What holders of a role may change at runtime: flags matching a glob pattern that reach only
    these environments (``*`` = any); ``skip_approval``: no proposal needed (automation)."""

    flags: list[StrictStr]
    environments: list[StrictStr]
    skip_approval: StrictBool = False


class ApprovalSettings(_Model):
    """Which flags' changes need approval (decided by the compiler) and what an approval takes."""

    flags: list[StrictStr] = Field(default_factory=list)
    # role names whose holders may approve ([] = any identity whose roles allow changing the flag)
    approvers: list[StrictStr] = Field(default_factory=list)
    required: StrictInt = Field(default=1, ge=1)
    expires_seconds: StrictInt = Field(default=86_400, gt=0)


class AccessSettings(_Model):
    """``security_config.access_control`` as the override writers and verifiers read it
    (docs/overrides.md, "Access control"). ``environments``: flag key -> the environments it reaches
    (``*``: every environment); a flag not listed reaches every environment."""

    role_based_access: StrictBool = False
    audit_logging: StrictBool = False
    roles: dict[StrictStr, RoleSettings] = Field(default_factory=dict)
    environments: dict[StrictStr, list[StrictStr]] = Field(default_factory=dict)
    approval: ApprovalSettings | None = None


class Runtime(_Model):
    """Settings for the tools around evaluation, compiled from the config so they travel with the flags."""

    storage: StorageSettings | None = None
    tracking: TrackingSettings | None = None
    data_protection: DataProtectionSettings | None = None
    access: AccessSettings | None = None


class Snapshot(_Model):
    format: Literal["tusklang.snapshot/1"]
    scale: StrictInt = Field(default=DEFAULT_SCALE, gt=0, le=2**31 - 1)
    provenance: dict[str, Any] = Field(default_factory=dict)
    segments: dict[str, Segment] = Field(default_factory=dict)
    external_segments: list[StrictStr] = Field(default_factory=list)
    flags: dict[str, Flag] = Field(default_factory=dict)
    experiments: dict[str, Experiment] = Field(default_factory=dict)
    runtime: Runtime | None = None


LogicalCondition.model_rebuild()
NotCondition.model_rebuild()
Rule.model_rebuild()
Segment.model_rebuild()
Snapshot.model_rebuild()
