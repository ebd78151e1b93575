"""``management_config``: lifecycle, approval workflow and documentation rules (enforced by lint)."""

from __future__ import annotations

from typing import Literal

from ._base import ConfigModel, Duration


class FlagLifecycle(ConfigModel):
    auto_cleanup: bool = False
    cleanup_threshold: Duration
    archive_strategy: Literal["database", "file", "delete"] = "database"


class ApprovalWorkflow(ConfigModel):
    enabled: bool = True
    required_for: list[Literal["production_flags", "high_risk_flags", "all_flags"]] = []
    approvers: list[str] = []
    # environment names whose flags need no approval record
    auto_approval: list[str] = []


class Documentation(ConfigModel):
    required_fields: list[str] = []
    template_enforcement: bool = False
    change_tracking: bool = False


class ManagementConfig(ConfigModel):
    flag_lifecycle: FlagLifecycle | None = None
    approval_workflow: ApprovalWorkflow | None = None
    documentation: Documentation | None = None
