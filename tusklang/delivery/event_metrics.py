"""Per-side health metrics from the event store (docs/events.md, "Per-side metrics for a rollout").

Evaluation events record which variant each unit was served, so a rollout bound to a flag can judge
its canary against the stable population from what the evaluator actually served: the canary side is
the units evaluated to the binding's canary variant in the window, the stable side those evaluated to
its stable variant. A unit belongs to the side of its first evaluation of the flag in the window.

Per metric of ``health_checks.events`` (``{ event = "checkout_error", aggregate = "rate" | "mean" }``),
each side gives one aggregate sample per window (``Sample.count`` = how many observations it stands
for, which ``min_samples`` is compared with):

- ``rate``: units of the side that had at least one conversion ``event`` at or after their first
  evaluation and before the window's end, over the units of the side (count = units);
- ``mean``: the mean ``value`` of those conversions (count = conversions with a value).

Evaluation rows may be sampled (``sample_rate``); a rate over the sampled units is still an unbiased
estimate of the rate, with fewer units behind it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from ..schema.delivery import EventMetric
from .db import Database, as_utc
from .metrics import Sample

# Units served `variant` of `flag` in [start, end), each at its first evaluation there.
_SIDE = """
    SELECT unit_id, MIN(occurred_at) AS first_at
    FROM tusk_events
    WHERE kind = 'evaluation' AND flag = ? AND variant = ? AND occurred_at >= ? AND occurred_at < ?
    GROUP BY unit_id
"""

RATE_SQL = f"""
WITH side AS ({_SIDE}),
converted AS (
    SELECT DISTINCT s.unit_id AS unit_id
    FROM side s
    JOIN tusk_events c ON c.unit_id = s.unit_id
    WHERE c.kind = 'conversion' AND c.event = ? AND c.occurred_at >= s.first_at AND c.occurred_at < ?
)
SELECT COUNT(*) AS units, COUNT(cv.unit_id) AS converted
FROM side s LEFT JOIN converted cv ON cv.unit_id = s.unit_id
"""

MEAN_SQL = f"""
WITH side AS ({_SIDE})
SELECT COUNT(c.value) AS n, AVG(c.value) AS mean
FROM side s
JOIN tusk_events c ON c.unit_id = s.unit_id
WHERE c.kind = 'conversion' AND c.event = ? AND c.value IS NOT NULL
  AND c.occurred_at >= s.first_at AND c.occurred_at < ?
"""


class EventMetricSource:
    """A :class:`~tusklang.delivery.metrics.MetricSource` over the event store for one bound flag."""

    def __init__(
        self, db: Database, flag: str, variants: Mapping[str, str], metrics: Mapping[str, EventMetric]
    ) -> None:
        self.db = db
        self.flag = flag
        self.variants = dict(variants)  # target ("canary" / "stable") -> the variant that side is served
        self.metrics = dict(metrics)

    def fetch(self, target: str, metrics: Sequence[str], start: datetime, end: datetime) -> list[Sample]:
        variant = self.variants.get(target)
        if variant is None:
            return []
        lo, hi = as_utc(start).timestamp(), as_utc(end).timestamp()
        out = []
        for name in metrics:
            spec = self.metrics.get(name)
            if spec is None:
                continue
            side = (self.flag, variant, lo, hi)
            if spec.aggregate == "rate":
                row = self.db.execute(RATE_SQL, (*side, spec.event, hi)).fetchone()
                units, converted = (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)
                if units:
                    out.append(Sample(as_utc(start), target, name, converted / units, units))
            else:
                row = self.db.execute(MEAN_SQL, (*side, spec.event, hi)).fetchone()
                count = int(row[0] or 0) if row else 0
                if count and row is not None and row[1] is not None:
                    out.append(Sample(as_utc(start), target, name, float(row[1]), count))
        return out
