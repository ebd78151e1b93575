"""``security_config.access_control`` compiled into the snapshot's ``runtime.access``.

Override writers (`tusk flags`, the delivery controller) and verifiers (`Client` with Redis overrides,
`tusk serve --redis`) read these settings from the snapshot, so the roles that were reviewed with the
flags are the ones enforced where the flags are served (docs/overrides.md, "Access control"). The
compiler decides what needs the whole project: which environments each flag reaches (its
``targeting.environments``, else every declared environment) and which flags' changes need approval
(`management_config.approval_workflow`), so a verifier only looks names up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..diagnostics import Diagnostic, Severity
from ..schema import ProjectConfig
from ..suggest import did_you_mean
from .locate import Path
from .normalise import FlagSource, Normaliser

ANY = "*"
NOTHING_GRANTED = "TSK350"


def _reach(environments: list[str] | None, declared: list[str]) -> list[str]:
    """The environments a flag reaches: its own list, else every declared one, else any (``*``)."""
    if environments is not None:
        return sorted(set(environments))
    return sorted(declared) if declared else [ANY]


def access_settings(
    config: ProjectConfig,
    sources: Mapping[str, FlagSource],
    flags: Mapping[str, Any],
    experiments: Mapping[str, Any],
    norm: Normaliser,
) -> dict[str, Any] | None:
    """``runtime.access`` (None without an ``access_control`` block); problems go to ``norm``."""
    security = config.security_config
    control = security.access_control if security is not None else None
    if control is None:
        return None
    base: Path = ("security_config", "access_control")
    ff = config.feature_flags
    declared = sorted(ff.targeting.environments) if ff is not None else []
    reach: dict[str, list[str]] = {}
    metadata: dict[str, Mapping[str, Any]] = {}
    for key in flags:
        source = sources.get(key)
        if source is not None:
            reach[key] = _reach(source.config.targeting.environments, declared)
            metadata[key] = source.config.metadata
    ab = config.ab_testing_config
    for key in experiments:
        experiment = ab.experiments.get(key) if ab is not None else None
        reach[key] = _reach(experiment.targeting.environments if experiment is not None else None, declared)

    roles: dict[str, Any] = {}
    for name, role in control.roles.items():
        envs = [e for e in role.environments if e != ANY]
        for index, env in enumerate(role.environments):
            if env != ANY and declared and env not in declared:
                norm.error(
                    "TSK317",
                    f"unknown environment `{env}` in role `{name}`",
                    (*base, "roles", name, "environments", index),
                    did_you_mean(env, declared) or "defined environments: " + ", ".join(declared),
                )
        roles[name] = {
            "flags": list(role.flags),
            "environments": sorted(set(envs)) + ([ANY] if ANY in role.environments else []),
            "skip_approval": role.skip_approval,
        }
    if control.role_based_access and not roles:
        norm.diagnostics.append(
            Diagnostic(
                NOTHING_GRANTED,
                "role_based_access is on but no role is declared: nothing is enforced (override writes stay "
                "unsigned and clients apply them as before)",
                norm.locator.key((*base, "role_based_access")),
                Severity.WARNING,
                'declare roles, e.g. roles = { release_manager = { flags = ["*"], environments = ["production"] } } '
                "(docs/overrides.md)",
            )
        )

    out: dict[str, Any] = {
        "role_based_access": control.role_based_access,
        "audit_logging": control.audit_logging,
        "roles": roles,
        "environments": reach,
    }
    approval = _approval(config, control.change_approval, roles, reach, metadata, norm)
    if approval is not None:
        out["approval"] = approval
    return out


def _approval(
    config: ProjectConfig,
    change_approval: bool,
    roles: Mapping[str, Any],
    reach: Mapping[str, list[str]],
    metadata: Mapping[str, Mapping[str, Any]],
    norm: Normaliser,
) -> dict[str, Any] | None:
    """The approval settings when change approval is acted on: it needs identities (role_based_access),
    and an `approval_workflow` that is not switched off."""
    control = config.security_config.access_control if config.security_config else None
    if not change_approval or control is None:
        return None
    path: Path = ("security_config", "access_control", "change_approval")
    if not control.role_based_access:
        norm.warn(
            "TSK331",
            "`security_config.access_control.change_approval` is validated but not supported downstream: "
            "approvals are signed by identities, which need role_based_access = true",
            path,
            "turn role_based_access on, or change_approval off",
        )
        return None
    mc = config.management_config
    workflow = mc.approval_workflow if mc is not None else None
    if workflow is not None and not workflow.enabled:
        return None
    required_for = set(workflow.required_for) if workflow is not None else {"production_flags"}
    approvers = list(workflow.approvers) if workflow is not None else []
    auto = set(workflow.auto_approval) if workflow is not None else set()
    ff = config.feature_flags
    production = {n for n, e in (ff.targeting.environments.items() if ff else []) if e.approval_required}
    if workflow is not None and roles:
        for index, name in enumerate(approvers):
            if name not in roles:
                norm.warn(
                    NOTHING_GRANTED,
                    f"approver role `{name}` is not declared in security_config.access_control.roles: "
                    "nobody can approve as it",
                    ("management_config", "approval_workflow", "approvers", index),
                    did_you_mean(name, list(roles)) or "declared roles: " + ", ".join(sorted(roles)),
                )
    needed: list[str] = []
    for key, envs in sorted(reach.items()):
        reaches_production = bool(production) and (ANY in envs or bool(production & set(envs)))
        if envs and ANY not in envs and set(envs) <= auto:
            continue  # reaches only environments whose changes are approved automatically
        if (
            "all_flags" in required_for
            or ("production_flags" in required_for and reaches_production)
            or ("high_risk_flags" in required_for and metadata.get(key, {}).get("risk") == "high")
        ):
            needed.append(key)
    required = workflow.required_approvals if workflow is not None else None
    expires = workflow.expires_after if workflow is not None else None
    return {
        "flags": needed,
        "approvers": approvers,
        "required": required or max(1, len(approvers)),
        "expires_seconds": max(1, int(expires.total_seconds())) if expires is not None else 86_400,
    }
