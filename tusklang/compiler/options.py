"""The lint rules' codes and the options of a lint run, without the schema: `tusk check` builds these
before it knows whether it will validate anything (a cached check never imports pydantic, issue 19)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..diagnostics import Severity

RULES: dict[str, tuple[str, Severity]] = {
    "TSK401": ("missing-documentation", Severity.WARNING),
    "TSK402": ("approval-missing", Severity.WARNING),
    "TSK403": ("stale-flag", Severity.WARNING),
    "TSK404": ("fully-rolled-out", Severity.WARNING),
    "TSK405": ("implicit-threshold-direction", Severity.INFO),
    "TSK406": ("empty-targeting", Severity.WARNING),
    "TSK407": ("overlapping-targeting", Severity.WARNING),
}


@dataclass
class LintOptions:
    errors: set[str] = field(default_factory=set)
    ignored: set[str] = field(default_factory=set)
    # "now" for age rules (--now); the compiler fills in the run's clock, Settings.now (SOURCE_DATE_EPOCH,
    # read once by tusklang.project.Settings), when it is not given; None here -> the wall clock
    now: datetime | None = None

    def clock(self) -> datetime:
        if self.now is not None:
            return self.now if self.now.tzinfo else self.now.replace(tzinfo=UTC)
        return datetime.now(UTC)
