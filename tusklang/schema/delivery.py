"""The ``progressive_delivery`` block as a validated model (the model only; ``tusklang.delivery`` runs it).

It lives here, with every other input model, so that the schema and the linter (stage 5) can use it
without importing the delivery controllers above them (docs/architecture.md); ``delivery/policy.py``
re-exports it and loads it with positioned TSK800 problems.

Every key of the block means something; an unknown key is an error (``extra="forbid"``), never a
silent no-op. Durations are parsed by :func:`parse_duration` only (schema/durations.py: the one grammar
of every block), and every metric carries an explicit direction (defaulted by name as a convenience, an
error for names we cannot guess).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from ..diagnostics import Diagnostic, TuskError
from ._base import ConfigModel, Duration

_UNIT_SECONDS = {"day": 86400, "hour": 3600, "minute": 60}


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in _UNIT_SECONDS.items():
        if seconds and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


class Direction(enum.StrEnum):
    LOWER = "lower"  # lower is better: the threshold is a ceiling
    HIGHER = "higher"  # higher is better: the threshold is a floor


# A convenience only: anything not listed needs an explicit `directions = { name = "lower" }`.
DEFAULT_DIRECTIONS: Mapping[str, Direction] = {
    "error_rate": Direction.LOWER,
    "errors": Direction.LOWER,
    "response_time": Direction.LOWER,
    "latency": Direction.LOWER,
    "latency_p95": Direction.LOWER,
    "latency_p99": Direction.LOWER,
    "cpu": Direction.LOWER,
    "memory": Direction.LOWER,
    "throughput": Direction.HIGHER,
    "requests_per_second": Direction.HIGHER,
    "success_rate": Direction.HIGHER,
    "availability": Direction.HIGHER,
    "conversion_rate": Direction.HIGHER,
    "revenue": Direction.HIGHER,
}


class Check(BaseModel):
    """One metric judged against one threshold in one direction."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    metric: str
    threshold: float
    direction: Direction

    def passes(self, value: float) -> bool:
        # The threshold itself is acceptable in both directions.
        if self.direction is Direction.LOWER:
            return value <= self.threshold
        return value >= self.threshold

    def describe(self) -> str:
        op = "<=" if self.direction is Direction.LOWER else ">="
        return f"{self.metric} {op} {self.threshold:g}"


# A direction is written as its name ("lower"): strict validation would take only the enum member.
DirectionName = Annotated[Direction, Field(strict=False)]


def _metric_problems(
    metrics: list[str],
    thresholds: Mapping[str, float],
    directions: Mapping[str, Direction],
    compare: Mapping[str, object] | None = None,
) -> list[str]:
    """Every metric is judged somehow (a threshold, or for health checks a canary-vs-stable comparison),
    every table names listed metrics only, and every metric has a direction."""
    problems: list[str] = []
    judged = set(thresholds) | set(compare or {})
    for name in metrics:
        if name not in judged:
            where = "thresholds" if compare is None else "thresholds or compare"
            problems.append(f"metric {name!r} is listed in metrics but has no entry in {where}")
    for table, names in (("thresholds", thresholds), ("directions", directions), ("compare", compare or {})):
        for name in names:
            if name not in metrics:
                problems.append(f"{table}.{name} is set but {name!r} is not listed in metrics")
    for name in metrics:
        if name not in directions and name not in DEFAULT_DIRECTIONS:
            problems.append(
                f"metric {name!r} has no default direction; add directions = {{ {name} = "
                '"lower" }} (lower is better) or "higher" (higher is better)'
            )
    if len(set(metrics)) != len(metrics):
        problems.append("metrics lists a name twice")
    return problems


def _direction(name: str, directions: Mapping[str, Direction]) -> Direction:
    return directions.get(name) or DEFAULT_DIRECTIONS[name]


def _build_checks(
    metrics: list[str], thresholds: dict[str, float], directions: dict[str, Direction]
) -> tuple[Check, ...]:
    problems = _metric_problems(metrics, thresholds, directions)
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(Check(metric=m, threshold=thresholds[m], direction=_direction(m, directions)) for m in metrics)


class Comparison(ConfigModel):
    """Canary against stable over the same window (as Argo Rollouts / Flagger analyses compare them).

    Both bounds say how much *worse* the canary may be, in the metric's direction: for a lower-is-better
    metric ``canary / stable <= max_ratio`` and ``canary - stable <= max_difference``; for a
    higher-is-better one ``stable / canary <= max_ratio`` and ``stable - canary <= max_difference``.
    Every bound given must hold.
    """

    max_ratio: float | None = Field(default=None, ge=1)
    max_difference: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _some_bound(self) -> Comparison:
        if self.max_ratio is None and self.max_difference is None:
            raise ValueError("a comparison needs max_ratio, max_difference or both")
        for name in ("max_ratio", "max_difference"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number")
        return self


class CompareCheck(BaseModel):
    """One metric, canary against stable, with the bounds of its :class:`Comparison`."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    metric: str
    direction: Direction
    max_ratio: float | None
    max_difference: float | None

    def describe(self) -> str:
        parts = []
        if self.max_ratio is not None:
            parts.append(f"at most {self.max_ratio:g}x")
        if self.max_difference is not None:
            parts.append(f"at most {self.max_difference:g}")
        return f"{self.metric} canary vs stable: " + " and ".join(parts) + " worse"


class EventMetric(ConfigModel):
    """A health metric computed per side from the event store (docs/events.md, "Per-side metrics").

    ``rate``: the share of units served the side's variant in the window that then had a conversion
    ``event``; ``mean``: the mean ``value`` of those conversions.
    """

    event: str = Field(min_length=1)
    aggregate: Literal["rate", "mean"] = "rate"


class HealthChecks(ConfigModel):
    metrics: list[str] = Field(min_length=1)
    # Absolute thresholds (the seed's); a metric needs a threshold, a comparison, or both.
    thresholds: dict[str, float] = {}
    evaluation_period: Duration
    directions: dict[str, DirectionName] = {}
    # An interval with fewer samples than this for a metric (on either side, for a comparison) is
    # "no data": hold, never judge.
    min_samples: int = Field(default=1, ge=1)
    # Canary versus stable over the same window, per metric.
    compare: dict[str, Comparison] = {}
    # Metrics read per side from the event store instead of the metric_samples table.
    events: dict[str, EventMetric] = {}

    @model_validator(mode="after")
    def _consistent(self) -> HealthChecks:
        if self.evaluation_period <= timedelta(0):
            raise ValueError("evaluation_period must be longer than 0 seconds")
        metrics = self.metrics
        problems = _metric_problems(metrics, self.thresholds, self.directions, self.compare)
        problems += [f"events.{n} is set but {n!r} is not listed in metrics" for n in self.events if n not in metrics]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def checks(self) -> tuple[Check, ...]:
        """The absolute thresholds, in the order of ``metrics``."""
        return tuple(
            Check(metric=m, threshold=self.thresholds[m], direction=_direction(m, self.directions))
            for m in self.metrics
            if m in self.thresholds
        )

    @property
    def comparisons(self) -> tuple[CompareCheck, ...]:
        """The canary-vs-stable comparisons, in the order of ``metrics``."""
        return tuple(
            CompareCheck(
                metric=m,
                direction=_direction(m, self.directions),
                max_ratio=self.compare[m].max_ratio,
                max_difference=self.compare[m].max_difference,
            )
            for m in self.metrics
            if m in self.compare
        )


def _binding(value: object) -> object:
    # `flag = "new_checkout_flow"` is short for `flag = { key = "new_checkout_flow" }`.
    return {"key": value} if isinstance(value, str) else value


class FlagBinding(ConfigModel):
    """The flag whose traffic a rollout moves through the runtime override layer (docs/delivery.md).

    ``rule``: the rule whose rollout percentage (or split) the controller sets; by default the flag's
    only rule carrying a rollout, else its last rule. ``canary_variant``/``stable_variant``: for a rule
    with a variant split, the two variants whose weights the controller sets (the canary gets the
    canary percentage, the stable variant the rest).
    """

    key: str = Field(min_length=1)
    rule: str | None = Field(default=None, min_length=1)
    canary_variant: str | None = Field(default=None, min_length=1)
    stable_variant: str | None = Field(default=None, min_length=1)


Binding = Annotated[FlagBinding | None, BeforeValidator(_binding)]


class TrafficSplit(ConfigModel):
    canary: float = Field(ge=0, le=100)
    stable: float | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def _sums_to_100(self) -> TrafficSplit:
        if self.stable is not None and not math.isclose(self.canary + self.stable, 100):
            raise ValueError(f"canary + stable must be 100, got {self.canary:g} + {self.stable:g}")
        if self.canary <= 0 or self.canary >= 100:
            raise ValueError("the initial canary share must be between 0 and 100 (exclusive)")
        return self


DEFAULT_FAILURE_LIMIT = 3
DEFAULT_STEP_SIZE = 10.0


class Rollback(ConfigModel):
    automatic: bool = True
    # The seed's `threshold = 0.1`: the fraction of an interval's samples of one metric that may breach
    # its threshold before that metric fails the interval (docs/delivery.md, "Rollback threshold").
    threshold: float = Field(default=0.0, ge=0, lt=1)
    # Consecutive failing intervals that trigger a rollback.
    failure_limit: int = Field(default=DEFAULT_FAILURE_LIMIT, ge=1)
    cooldown_period: Duration = timedelta(0)


class CanaryPolicy(ConfigModel):
    enabled: bool = True
    flag: Binding = None
    traffic_split: TrafficSplit
    steps: list[float] | None = None
    step_size: float | None = Field(default=None, gt=0, le=100)
    health_checks: HealthChecks
    rollback: Rollback = Rollback.model_construct()
    # gate name -> the canary percent whose step that gate guards.
    gates: dict[str, float] = {}

    @model_validator(mode="after")
    def _ladder(self) -> CanaryPolicy:
        if self.steps is not None and self.step_size is not None:
            raise ValueError("set either steps or step_size, not both")
        if self.steps is not None:
            previous = self.traffic_split.canary
            for value in self.steps:
                if not previous < value <= 100:
                    raise ValueError(
                        f"steps must rise strictly from the initial {self.traffic_split.canary:g}% "
                        f"and stay <= 100; {value:g} follows {previous:g}"
                    )
                previous = value
            if not self.steps or self.steps[-1] != 100:
                raise ValueError("the last of steps must be 100 (promotion)")
        for name, percent in self.gates.items():
            if not self.traffic_split.canary < percent <= 100:
                raise ValueError(
                    f"gates.{name} = {percent:g} must be a step above the initial "
                    f"{self.traffic_split.canary:g}% and at most 100"
                )
        return self

    @property
    def ladder(self) -> tuple[float, ...]:
        """Every canary percent from the initial one to 100, in order."""
        start = self.traffic_split.canary
        if self.steps is not None:
            return (start, *self.steps)
        size = self.step_size or DEFAULT_STEP_SIZE
        values = [start]
        while values[-1] < 100:
            values.append(min(100.0, round(values[-1] + size, 9)))
        return tuple(values)

    @property
    def checks(self) -> tuple[Check, ...]:
        return self.health_checks.checks

    @property
    def comparisons(self) -> tuple[CompareCheck, ...]:
        return self.health_checks.comparisons

    @property
    def evaluation_period(self) -> timedelta:
        return self.health_checks.evaluation_period


class BlueGreenPolicy(ConfigModel):
    enabled: bool = True
    flag: Binding = None
    switch_strategy: Literal["instant"] = "instant"
    health_verification: bool = True
    rollback_window: Duration


class Gate(ConfigModel):
    metrics: list[str] = Field(min_length=1)
    thresholds: dict[str, float]
    directions: dict[str, DirectionName] = {}
    min_samples: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> Gate:
        _build_checks(self.metrics, self.thresholds, self.directions)
        return self

    @property
    def checks(self) -> tuple[Check, ...]:
        return _build_checks(self.metrics, self.thresholds, self.directions)


class FeatureGates(ConfigModel):
    enabled: bool = True
    gates: dict[str, Gate] = {}


class DeliveryPolicy(ConfigModel):
    canary_deployments: CanaryPolicy | None = None
    blue_green_deployments: BlueGreenPolicy | None = None
    feature_gates: FeatureGates = FeatureGates.model_construct()

    @model_validator(mode="after")
    def _gates_exist(self) -> DeliveryPolicy:
        canary = self.canary_deployments
        if canary is not None:
            known = self.feature_gates.gates if self.feature_gates.enabled else {}
            for name in canary.gates:
                if name not in known:
                    raise ValueError(
                        f"canary_deployments.gates.{name} names no gate in feature_gates.gates"
                        + ("" if self.feature_gates.enabled else " (feature_gates.enabled is false)")
                    )
        return self

    def gate(self, name: str) -> Gate:
        return self.feature_gates.gates[name]

    def require_canary(self) -> CanaryPolicy:
        if self.canary_deployments is None or not self.canary_deployments.enabled:
            raise TuskError([Diagnostic("TSK801", "the policy has no enabled canary_deployments block")])
        return self.canary_deployments

    def require_blue_green(self) -> BlueGreenPolicy:
        if self.blue_green_deployments is None or not self.blue_green_deployments.enabled:
            raise TuskError([Diagnostic("TSK801", "the policy has no enabled blue_green_deployments block")])
        return self.blue_green_deployments
