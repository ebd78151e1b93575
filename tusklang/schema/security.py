"""``security_config``: access control, data protection and compliance switches."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ._base import ConfigModel, Duration


class RoleConfig(ConfigModel):
    """What the holders of a role may change at runtime (docs/overrides.md, "Access control").

    ``flags``: glob patterns over flag and experiment keys (``*``, ``?``, ``[...]``, as fnmatch);
    ``environments``: the environments the role may affect (``*`` = any): a flag may be changed only
    when every environment it reaches is among them. ``skip_approval``: changes by this role need no
    proposal (for automation such as the delivery controller, whose policy is reviewed as code).
    """

    flags: Annotated[list[str], Field(min_length=1)]
    environments: Annotated[list[str], Field(min_length=1)]
    skip_approval: bool = False


class AccessControl(ConfigModel):
    role_based_access: bool = False
    audit_logging: bool = False
    change_approval: bool = False
    # role name -> what its holders may change; identities get roles in the keyring (`tusk keys`).
    roles: dict[str, RoleConfig] = {}


class DataProtection(ConfigModel):
    pii_masking: bool = False
    data_retention: Duration | None = None
    encryption: bool = False


class Compliance(ConfigModel):
    gdpr_compliant: bool = False
    consent_tracking: bool = False
    data_portability: bool = False
    # the context attribute a tracker reads consent from when consent_tracking is on (docs/events.md)
    consent_attribute: str = Field(default="consent", min_length=1)


class SecurityConfig(ConfigModel):
    access_control: AccessControl | None = None
    data_protection: DataProtection | None = None
    compliance: Compliance | None = None
