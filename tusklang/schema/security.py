"""``security_config``: access control, data protection and compliance switches."""

from __future__ import annotations

from ._base import ConfigModel, Duration


class AccessControl(ConfigModel):
    role_based_access: bool = False
    audit_logging: bool = False
    change_approval: bool = False


class DataProtection(ConfigModel):
    pii_masking: bool = False
    data_retention: Duration | None = None
    encryption: bool = False


class Compliance(ConfigModel):
    gdpr_compliant: bool = False
    consent_tracking: bool = False
    data_portability: bool = False


class SecurityConfig(ConfigModel):
    access_control: AccessControl | None = None
    data_protection: DataProtection | None = None
    compliance: Compliance | None = None
