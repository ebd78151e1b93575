"""Progressive delivery: canary and blue/green controllers, feature gates, metric sources.

The public entry points: :func:`load_policy`, :class:`CanaryController`, :class:`BlueGreenController`,
:func:`simulate`, :class:`SqlMetricSource`, :class:`RolloutStore`. docs/delivery.md has the state
machine and every rule.
"""

from .bluegreen import BlueGreenController
from .controller import Action, CanaryController, Decision, RolloutState, Status, drive
from .metrics import InMemoryMetricSource, MetricSource, Sample, SqlMetricSource
from .policy import DeliveryPolicy, Direction, load_policy, parse_duration
from .simulate import simulate
from .state import RolloutStore

__all__ = [
    "Action",
    "BlueGreenController",
    "CanaryController",
    "Decision",
    "DeliveryPolicy",
    "Direction",
    "InMemoryMetricSource",
    "MetricSource",
    "RolloutState",
    "RolloutStore",
    "Sample",
    "SqlMetricSource",
    "Status",
    "drive",
    "load_policy",
    "parse_duration",
    "simulate",
]
