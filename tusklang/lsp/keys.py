"""What a key means and which values it allows: from the config's pydantic models when they are
importable, else (and for keys the models leave undescribed) from a built-in table of the seed's keys.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .._annotations import unwrap

Path = tuple[str, ...]

ENUMS: dict[str, tuple[str, ...]] = {
    "rollout_strategy": ("percentage", "gradual", "user_preference", "invite_only"),
    "switch_strategy": ("instant", "gradual"),
    "type": ("counter", "line_chart", "gauge", "bar_chart", "list"),
}

DESCRIPTIONS: dict[str, str] = {
    "feature_flags": "The feature flag configuration: storage, flags, targeting definitions, delivery.",
    "ab_testing_config": "A/B testing: experiments (variants, metrics, targeting) and analysis defaults.",
    "feature_analytics_config": "What to track about flag evaluations and how to report it.",
    "real_time_feature_dashboard": "The live dashboard: widgets and refresh settings.",
    "management_config": "Flag lifecycle: approvals, archiving, audit.",
    "performance_config": "Evaluation caching and performance budgets.",
    "security_config": "Access control and audit of flag changes.",
    "enabled": "Whether this block is on. A disabled flag serves its fallback to everyone.",
    "storage": "Where evaluated flag state is kept (type, connection, key_prefix, ttl).",
    "connection": "Connection string for the storage backend; usually `@env(...)` so no secret is in the file.",
    "key_prefix": "Prefix for every key the flag store writes.",
    "ttl": "Time to live of cached flag state, in seconds.",
    "flags": "The feature flags, one block per flag key.",
    "rollout_strategy": "How the flag is rolled out to users.",
    "rollout_percentage": "Share of eligible users (0-100) who get the flag, by stable hashing of the user key.",
    "rollout_schedule": "For `gradual` rollouts: `day_N = percentage` steps from the rollout start.",
    "targeting": "Who is eligible: segments, environments, regions and attribute rules.",
    "user_segments": "Segments: as an object, their definitions; as an array, the segments a flag targets.",
    "environments": "Environments: as an object, their definitions; as an array, where a flag is on.",
    "regions": "Regions where the flag is served.",
    "account_tiers": "Account tiers eligible for the flag.",
    "fallback": "The value served when the flag is off or the user is not eligible.",
    "metadata": "Who owns the flag and why it exists (description and owner are required).",
    "description": "What this flag, segment or variant is for.",
    "owner": "The team or person responsible.",
    "created_at": "Creation date (YYYY-MM-DD).",
    "expected_rollout": "Date the rollout is expected to be complete (YYYY-MM-DD).",
    "a_b_testing": "An experiment attached to the flag: variants with weights and metrics.",
    "variants": "Variants and their traffic weights (the weights sum to 1 or 100).",
    "weight": "Share of the experiment's traffic for this variant.",
    "metrics": "Metric names measured or checked.",
    "progressive_delivery": "Canary, blue-green and gate policies for shipping behind flags.",
    "canary_deployments": "Canary policy: traffic split, health checks and automatic rollback.",
    "traffic_split": "Percentages of traffic for canary and stable (summing to 100).",
    "health_checks": "Metrics, thresholds and evaluation period that decide a canary's health.",
    "thresholds": "Metric limits: crossing one fails the check.",
    "evaluation_period": 'How long metrics are observed before a decision, e.g. "5 minutes".',
    "rollback": "When and how to roll back automatically.",
    "blue_green_deployments": "Blue-green switch policy.",
    "switch_strategy": "How traffic moves from blue to green.",
    "feature_gates": "Gates: named metric conditions that must hold before a rollout advances.",
    "gates": "Gate definitions (object) or the gates a rollout must pass (array).",
    "experiments": "Experiments, one block per experiment key.",
    "traffic_percentage": "Share of eligible users (0-100) entering the experiment.",
    "duration": 'How long the experiment runs, e.g. "30 days".',
    "analysis": "Statistical analysis settings.",
    "statistical_significance": "Confidence required to call a winner (e.g. 0.95).",
    "minimum_sample_size": "Users per variant before any decision is made.",
    "widgets": "Dashboard widgets.",
    "refresh_interval": "How often a dashboard section re-runs its queries under `tusk dashboard --serve`.",
    "query": "Read-only SQL for this widget; `?` placeholders are bound from `params` (or `--param`).",
    "params": "Values bound, in order, to the widget query's `?` placeholders.",
    "time_range": "Shown on the widget card; the query itself must filter by time.",
    "min": "Lower end of a gauge's scale.",
    "max": "Upper end of a gauge's scale.",
    "type": "The kind of this item.",
}

DIRECTIVES: dict[str, str] = {
    "env": "`@env(NAME)` or `@env(NAME, default)`: an environment variable, read when the file is resolved.",
    "query": '`@query("SELECT ...")`: rows from the configured read-only database, at resolve time.',
    "file": '`@file("path.tsk")`: the data of another TuskLang file, relative to this one.',
    "date": '`@date("%Y-%m-%d")`: the current date/time, formatted, at resolve time.',
    "request": "Runtime only: an attribute of the evaluation context (the request being served).",
    "user": "Runtime only: an attribute of the user being evaluated.",
    "cache": "Runtime only: `@cache(ttl, value)` caches a value in the evaluator.",
    "metrics": "Runtime only: a metric value from the configured metric source.",
    "feature": "Runtime only: whether another flag is on for the same user.",
}


@dataclass
class KeyInfo:
    description: str | None = None
    allowed: tuple[str, ...] = ()
    children: dict[str, str | None] = field(default_factory=dict)
    type_name: str | None = None


def key_info(path: Path) -> KeyInfo:
    """What is known of the key at ``path`` (a full key path)."""
    info = _schema_info(tuple(path))
    last = path[-1] if path else ""
    if info.description is None:
        info.description = DESCRIPTIONS.get(last)
    if not info.allowed and last in ENUMS and last != "type":
        info.allowed = ENUMS[last]
    if not info.allowed and last == "type" and "widgets" in path:
        info.allowed = ENUMS["type"]
    return info


def child_keys(path: Path) -> dict[str, str | None]:
    """Keys the schema allows directly under ``path`` with their descriptions."""
    children = dict(_schema_info(tuple(path)).children)
    for name in list(children):
        if children[name] is None:
            children[name] = DESCRIPTIONS.get(name)
    return children


@lru_cache(maxsize=1)
def _root_model() -> Any:
    try:
        from ..schema import ProjectConfig
    except Exception:  # the schema package is optional to the editor: fall back to the table
        return None
    return ProjectConfig


@lru_cache(maxsize=4096)
def _schema_info(path: Path) -> KeyInfo:
    model = _root_model()
    if model is None:
        return KeyInfo()
    annotation: Any = model
    description = None
    for part in path:
        annotation, description = _step(annotation, part)
        if annotation is None:
            return KeyInfo()
    info = KeyInfo(description=description, allowed=_literals(annotation), type_name=_type_name(annotation))
    for sub in _models(annotation):
        for name, field_info in sub.model_fields.items():
            info.children.setdefault(field_info.alias or name, field_info.description)
    return info


def _step(annotation: Any, key: str) -> tuple[Any, str | None]:
    for model in _models(annotation):
        for name, field_info in model.model_fields.items():
            if key in (name, field_info.alias):
                return field_info.annotation, field_info.description or _doc(field_info.annotation)
    for mapping_value in _mapping_values(annotation):
        return mapping_value, _doc(mapping_value)
    return None, None


def _models(annotation: Any) -> list[Any]:
    """The pydantic models an annotation allows, those of a list's items included: the members of
    `rules = [ { when = { ... } } ]` are the item model's keys (the index gives array items no key)."""
    found: list[Any] = []
    for arg in unwrap(annotation):
        if isinstance(arg, type) and hasattr(arg, "model_fields"):
            found.append(arg)
        elif typing.get_origin(arg) in (list, tuple):
            for item in typing.get_args(arg)[:1]:
                found.extend(m for m in _models(item) if m not in found)
    return found


def _mapping_values(annotation: Any) -> list[Any]:
    return [typing.get_args(a)[1] for a in unwrap(annotation) if typing.get_origin(a) is dict]


def _literals(annotation: Any) -> tuple[str, ...]:
    values: list[str] = []
    for arg in unwrap(annotation):
        if typing.get_origin(arg) is typing.Literal:
            values.extend(str(v) for v in typing.get_args(arg))
        elif typing.get_origin(arg) is list:
            values.extend(_literals(typing.get_args(arg)[0]))
    return tuple(values)


def _doc(annotation: Any) -> str | None:
    for model in _models(annotation):
        doc = (model.__doc__ or "").strip()
        if doc and not doc.startswith("Usage docs"):
            return doc.splitlines()[0]
    return None


def _type_name(annotation: Any) -> str | None:
    try:
        return typing._type_repr(annotation).replace("typing.", "")  # type: ignore[attr-defined]
    except Exception:
        return None
