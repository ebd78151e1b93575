"""``management_config``: lifecycle, approval workflow and documentation rules (enforced by lint)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field

from ._base import ConfigModel, Duration


class FlagLifecycle(ConfigModel):
    auto_cleanup: bool = False
    cleanup_threshold: Duration
    archive_strategy: Literal["database", "file", "delete"] = "database"


class ApprovalWorkflow(ConfigModel):
    enabled: bool = True
    required_for: list[Literal["production_flags", "high_risk_flags", "all_flags"]] = []
    # role names (security_config.access_control.roles) whose holders may approve a proposed change
    approvers: list[str] = []
    # environment names whose flags need no approval record
    auto_approval: list[str] = []
    # distinct approvers (none of them the proposer) a change needs; default: one per approver role
    required_approvals: Annotated[int, Field(ge=1)] | None = None
    # how long a proposed change waits for its approvals (`tusk flags propose`)
    expires_after: Duration = timedelta(hours=24)


class Documentation(ConfigModel):
    required_fields: list[str] = []
    template_enforcement: bool = False
    change_tracking: bool = False


class ManagementConfig(ConfigModel):
    flag_lifecycle: FlagLifecycle | None = None
    approval_workflow: ApprovalWorkflow | None = None
    documentation: Documentation | None = None
