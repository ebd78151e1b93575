"""Counting an experiment per the event contract (docs/events.md), in one portable SQL statement.

Units of variant v: distinct unit ids whose FIRST exposure to the experiment was to v (a unit seen in two
variants, e.g. after a config change, is counted in its first and reported). Conversions of v: those units
with at least one conversion row for the metric at or after their first exposure, i.e. whose LAST
conversion is not before their first exposure. One pass of window functions over the relevant rows and no
join, so the plan cannot degrade into a per-unit nested loop when table statistics are stale.
"""

from __future__ import annotations

from dataclasses import dataclass

from .store import EventStore

_COUNTS = """
WITH relevant AS (
    SELECT id, unit_id, kind, variant, occurred_at
    FROM tusk_events
    WHERE (kind = 'exposure' AND flag = ?) OR (kind = 'conversion' AND event = ?)
),
ordered AS (
    SELECT kind, variant, occurred_at,
           ROW_NUMBER() OVER (PARTITION BY unit_id, kind ORDER BY occurred_at, id) AS position,
           MAX(CASE WHEN kind = 'conversion' THEN occurred_at END) OVER (PARTITION BY unit_id) AS last_conversion
    FROM relevant
)
SELECT variant,
       COUNT(*) AS units,
       SUM(CASE WHEN last_conversion >= occurred_at THEN 1 ELSE 0 END) AS conversions
FROM ordered
WHERE kind = 'exposure' AND position = 1
GROUP BY variant
ORDER BY variant
"""

_MIXED = """
SELECT COUNT(*) FROM (
    SELECT unit_id FROM tusk_events WHERE kind = 'exposure' AND flag = ?
    GROUP BY unit_id HAVING COUNT(DISTINCT variant) > 1
) AS mixed
"""


@dataclass(frozen=True)
class ExperimentCounts:
    arms: dict[str, tuple[int, int]]  # variant -> (units, conversions)
    mixed_units: int  # units exposed to more than one variant (counted in their first)


def experiment_counts(store: EventStore, experiment: str, metric: str) -> ExperimentCounts:
    rows = store.query(_COUNTS, (experiment, metric))
    mixed = store.query(_MIXED, (experiment,))
    arms = {str(variant): (int(units), int(conversions)) for variant, units, conversions in rows}
    return ExperimentCounts(arms, int(mixed[0][0]) if mixed else 0)
