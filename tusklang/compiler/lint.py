"""Lint rules driven by the config itself (docs/lint.md). Each rule: a code, a default severity (options.RULES)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ..diagnostics import Diagnostic, Severity
from ..schema.delivery import DEFAULT_DIRECTIONS
from ..schema.project import ProjectConfig
from .locate import Locator, Path
from .normalise import ATTRIBUTE_LISTS
from .options import RULES as RULES
from .options import LintOptions as LintOptions


def lint(config: ProjectConfig, snapshot: dict[str, Any], locator: Locator, options: LintOptions) -> list[Diagnostic]:
    out = []
    for code, message, path, hint in _findings(config, snapshot, options):
        if code in options.ignored:
            continue
        severity = Severity.ERROR if code in options.errors else RULES[code][1]
        out.append(Diagnostic(code, f"{message} [{RULES[code][0]}]", locator.value(path), severity, hint))
    return out


Finding = tuple[str, str, Path, str | None]


def _date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _findings(config: ProjectConfig, snapshot: dict[str, Any], options: LintOptions) -> Iterator[Finding]:
    ff = config.feature_flags
    mc = config.management_config
    flags = ff.flags if ff else {}
    required = mc.documentation.required_fields if mc and mc.documentation else []
    production = {n for n, e in (ff.targeting.environments.items() if ff else []) if e.approval_required}
    approval = mc.approval_workflow if mc else None
    threshold: timedelta | None = mc.flag_lifecycle.cleanup_threshold if mc and mc.flag_lifecycle else None
    now = options.clock()
    for name, flag in flags.items():
        path: Path = ("feature_flags", "flags", name)
        missing = [f for f in required if f not in flag.metadata]
        if missing:
            yield (
                "TSK401",
                f"flag `{name}` lacks metadata required by management_config.documentation: " + ", ".join(missing),
                path,
                "add " + ", ".join(f"{f} = ..." for f in missing) + " to its metadata",
            )
        envs = flag.targeting.environments
        targets_production = bool(production) and (envs is None or bool(production & set(envs)))
        if (
            approval is not None
            and approval.enabled
            and ({"production_flags", "all_flags"} & set(approval.required_for))
            and targets_production
            and "approved_by" not in flag.metadata
        ):
            yield (
                "TSK402",
                f"flag `{name}` reaches an environment that requires approval "
                f"({', '.join(sorted(production & set(envs or production)))}) but has no approval record",
                path,
                'add metadata.approved_by = "<one of ' + ", ".join(approval.approvers or ["approvers"]) + '>"',
            )
        created = _date(flag.metadata.get("created_at"))
        if threshold is not None and created is not None and now - created > threshold:
            full = flag.rollout_percentage == 100 or (
                flag.rollout_schedule is not None and 100 in flag.rollout_schedule.values()
            )
            if full:
                yield (
                    "TSK404",
                    f"flag `{name}` has served 100% for over {threshold.days} days (created {created.date()})",
                    path,
                    "remove the flag and keep the code path it guards",
                )
            else:
                yield (
                    "TSK403",
                    f"flag `{name}` is older than management_config.flag_lifecycle.cleanup_threshold "
                    f"({threshold.days} days, created {created.date()})",
                    path,
                    "finish the rollout or remove the flag",
                )
        tpath = (*path, "targeting")
        for key in (*ATTRIBUTE_LISTS, "user_segments", "user_preferences"):
            values = getattr(flag.targeting, key, None)
            if values == []:
                yield ("TSK406", f"`{name}` targeting.{key} is empty: the flag matches nobody", (*tpath, key), None)
            elif values and len(set(values)) != len(values):
                yield ("TSK407", f"`{name}` targeting.{key} lists a value twice", (*tpath, key), None)
        segments = flag.targeting.user_segments or []
        if "all_users" in segments and len(segments) > 1:
            yield (
                "TSK407",
                f"`{name}` targets `all_users` and other segments: the others change nothing",
                (*tpath, "user_segments"),
                "keep all_users alone, or remove it",
            )
    for where, delivery in config.delivery_policies():
        groups: list[tuple[Path, Any]] = []
        if delivery.canary_deployments is not None:
            groups.append(((*where, "canary_deployments", "health_checks"), delivery.canary_deployments.health_checks))
        for gate_name, gate in delivery.feature_gates.gates.items():
            groups.append(((*where, "feature_gates", "gates", gate_name), gate))
        for gpath, group in groups:
            for metric in group.metrics:
                if metric not in group.directions and metric in DEFAULT_DIRECTIONS:
                    yield (
                        "TSK405",
                        f"direction of `{metric}` is inferred ({DEFAULT_DIRECTIONS[metric].value} is better)",
                        # A metric judged only against stable has no thresholds entry to point at.
                        (*gpath, "thresholds" if metric in group.thresholds else "compare", metric),
                        f'state it: directions = {{ {metric} = "{DEFAULT_DIRECTIONS[metric].value}" }}',
                    )
