"""What the reports share without the statistics (so `tusk report flags` does not load scipy): the error
for a report that cannot be produced, and the statements reading the event store's recorded losses."""

from __future__ import annotations

from ..db.errors import CodedError

LOSSES_SQL = """
SELECT COALESCE(SUM(dropped), 0) AS dropped, COALESCE(SUM(failed), 0) AS failed,
       MIN(COALESCE(since, occurred_at)) AS first, MAX(occurred_at) AS last
FROM tusk_event_drops WHERE occurred_at >= ?
"""
# A store not migrated to schema version 2 has no `failed`/`since` columns.
LOSSES_V1_SQL = """
SELECT COALESCE(SUM(dropped), 0) AS dropped, 0 AS failed, MIN(occurred_at) AS first, MAX(occurred_at) AS last
FROM tusk_event_drops WHERE occurred_at >= ?
"""

REPORT_ERROR_CODE = "TSK945"


class ReportError(CodedError):
    """The report cannot be produced from this input (no exposures, unknown control, ...): TSK945."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(REPORT_ERROR_CODE, message, hint=hint)
