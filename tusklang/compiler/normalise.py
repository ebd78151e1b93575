"""Validated config -> snapshot data, in the one general form evaluators read (docs/config.md).

Every rewrite an evaluator would otherwise have to guess happens here, once: weights and percentages
become integers on the snapshot's scale, schedules become absolute steps, criteria become typed
predicates, clock times become minute offsets, structured fallbacks become the default variant, and
every reference to a segment or environment is resolved (or reported).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Any

from ..diagnostics import Diagnostic, Related, Severity, Span
from ..schema._weights import WeightedVariant, weight_of
from ..schema.ab_testing import ExperimentConfig
from ..schema.criteria import CriterionError, parse_criterion
from ..schema.durations import parse_duration
from ..schema.feature_flags import FlagConfig, FlagTargeting
from ..schema.project import ProjectConfig
from ..schema.timeofday import check_time_zone, minute_of_day
from ..snapshot.format import DEFAULT_SCALE, FORMAT, percent_on_scale
from .clauses import lower_rules
from .locate import Locator, Path, dotted, suggest
from .typed import Typed, typed_variants

BUILTIN_SEGMENTS = ("all_users",)
# targeting list -> the context attribute it is matched against (docs/config.md, "Targeting").
ATTRIBUTE_LISTS = {
    "environments": "environment",
    "regions": "region",
    "account_tiers": "account_tier",
    "device_types": "device_type",
    "platforms": "platform",
    "plans": "plan",
}
# variant values shared by value (Normaliser._variants); not float: -0.0 == 0.0, and they print apart
_PLAIN = frozenset({bool, int, str, type(None)})
_DAY_KEY = re.compile(r"day_(\d+)")
_USAGE_KEY = re.compile(r"(min|max)_([a-z][a-z0-9_]*)")


# The rename of every flag written in a .tsk file: one shared empty mapping, not a dict per flag.
_NO_RENAME: Mapping[str, str] = MappingProxyType({})


@dataclass(slots=True)  # one per flag, alive until the snapshot is built: no __dict__ (issue 19)
class FlagSource:
    """A flag definition and where it came from (a .tsk path, or a query row)."""

    key: str
    config: FlagConfig
    path: Path
    origin: str
    # row flags use database columns: the .tsk-path for `targeting` lives under `targeting_rules`
    rename: Mapping[str, str] = field(default_factory=lambda: _NO_RENAME)


@dataclass
class SegmentSource:
    name: str
    criteria: Mapping[str, Any]
    match: str
    description: str | None
    path: Path
    criteria_path: Path


class Normaliser:
    def __init__(self, locator: Locator, scale: int = DEFAULT_SCALE):
        self.locator = locator
        self.scale = scale
        self.diagnostics: list[Diagnostic] = []
        self.segment_names: set[str] = set()
        self.external: dict[str, Path] = {}
        self.environments: set[str] = set()
        # Identical list conditions (`environment in [staging, production]`) are one dict for every flag
        # that writes them: nothing changes a condition once lowered, and per flag they were a tenth of
        # the snapshot's memory (issue 19). Keyed by (op, attribute, values).
        self._conditions: dict[tuple[str, str, tuple[str, ...]], dict[str, Any]] = {}
        # The same for a flag's list of conditions (by the shared conditions' ids, which the lists keep
        # alive) and for plain variants (`{on = true, off = false}` of nearly every flag).
        self._condition_lists: dict[tuple[int, ...], list[dict[str, Any]]] = {}
        self._variants: dict[tuple[tuple[str, type, Any], ...], dict[str, Any]] = {}
        self._percents: dict[int, int] = {}

    # --- reporting ---------------------------------------------------------------------------

    def error(self, code: str, message: str, path: Path, hint: str | None = None, key: bool = False) -> None:
        span = self.locator.key(path) if key else self.locator.value(path)
        self.diagnostics.append(Diagnostic(code, message, span, hint=hint))

    def warn(self, code: str, message: str, path: Path, hint: str | None = None) -> None:
        span = self.locator.value(path)
        self.diagnostics.append(Diagnostic(code, message, span, Severity.WARNING, hint))

    def span(self, path: Path) -> Span | None:
        return self.locator.value(path)

    # --- numbers -----------------------------------------------------------------------------

    def percent(self, value: float, path: Path) -> int:
        """A percentage (0..100, sub-percent allowed) on the integer scale; finer steps are an error."""
        rounded, exact = percent_on_scale(value, self.scale)
        if not exact:
            self.error(
                "TSK311",
                f"`{dotted(path)}` = {value:g}% is finer than the snapshot's resolution ({100 / self.scale:g}%)",
                path,
                f"round it to {rounded * 100 / self.scale:g}",
            )
        return self._percents.setdefault(rounded, rounded)  # one int object per value, not per flag

    def weights(self, owner: str, variants: Mapping[str, float | WeightedVariant], path: Path) -> list[list[Any]]:
        """Fractions (sum 1), percents (sum 100) or weight objects -> integers summing to the scale."""
        raw = {name: weight_of(v) for name, v in variants.items()}
        total = sum(raw.values())
        unit = self._weight_unit(total, len(raw))
        if unit is None:
            self.error(
                "TSK310",
                f"variant weights of `{owner}` sum to {total:g}; they must sum to 1 (fractions) or 100 (percents)",
                path,
                "e.g. " + ", ".join(f"{n} = {self._even_share(len(raw))}" for n in raw),
            )
            return [[name, 0] for name in raw]
        exact = {name: w * self.scale / unit for name, w in raw.items()}
        floors = {name: math.floor(v) for name, v in exact.items()}
        # largest remainder keeps the total exactly equal to the scale
        remaining = self.scale - sum(floors.values())
        for name in sorted(exact, key=lambda n: (floors[n] - exact[n], list(raw).index(n)))[:remaining]:
            floors[name] += 1
        return [[name, floors[name]] for name in raw]

    def _weight_unit(self, total: float, count: int) -> float | None:
        """What the weights are parts of: 1 (fractions) or 100 (percents), or None for any other sum.

        A sum off by no more than the rounding of each weight to the scale's resolution is accepted
        (0.33333 x 3 = 0.99999): the weights are then shares of their own total, which still sums
        exactly to the scale.
        """
        for unit in (1.0, 100.0):
            if math.isclose(total, unit, abs_tol=unit * 1e-9):
                return unit
        for unit in (1.0, 100.0):
            if abs(total - unit) <= count * unit / self.scale / 2:
                return total
        return None

    def _even_share(self, count: int) -> str:
        """An even weight that itself passes TSK310: a short decimal when one exists, else `1/n`."""
        share = 1 / count
        return f"{share:g}" if (share * self.scale).is_integer() and len(f"{share:g}") <= 7 else f"1/{count}"

    @staticmethod
    def iso(value: datetime) -> str:
        return _iso(value)

    @staticmethod
    def looks_like_instant(text: str) -> bool:
        try:
            datetime.fromisoformat(text)
        except ValueError:
            return False
        return True

    def instant(self, value: Any, path: Path) -> datetime | None:
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, date):
            parsed = datetime(value.year, value.month, value.day)
        elif isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                self.error(
                    "TSK321",
                    f"`{dotted(path)}` = {value!r} is not an ISO-8601 date or date-time",
                    path,
                    'write "2024-01-15" or "2024-01-15T09:00:00Z"',
                )
                return None
        else:
            self.error("TSK321", f"`{dotted(path)}` must be an ISO-8601 date string", path)
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

    # --- references ----------------------------------------------------------------------------

    def segment_refs(self, names: list[str], path: Path) -> list[str]:
        for index, name in enumerate(names):
            if name in self.segment_names or name in BUILTIN_SEGMENTS:
                continue
            close = suggest(name, sorted(self.segment_names | set(BUILTIN_SEGMENTS)))
            if close is not None:
                self.error(
                    "TSK316",
                    f"unknown segment `{name}`",
                    (*path, index),
                    f"did you mean `{close}`?",
                )
            else:
                self.external.setdefault(name, (*path, index))
        return names

    def environment_refs(self, names: list[str], path: Path) -> None:
        if not self.environments:
            return
        for index, name in enumerate(names):
            if name not in self.environments:
                close = suggest(name, sorted(self.environments))
                self.error(
                    "TSK317",
                    f"unknown environment `{name}`",
                    (*path, index),
                    f"did you mean `{close}`?"
                    if close
                    else "defined environments: " + ", ".join(sorted(self.environments)),
                )

    # --- segments ------------------------------------------------------------------------------

    def segments(self, sources: list[SegmentSource]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, SegmentSource] = {}
        for source in sources:
            previous = seen.get(source.name)
            if previous is not None:
                if dict(previous.criteria) != dict(source.criteria):
                    self._duplicate("segment", source.name, previous.path, source.path)
                continue
            seen[source.name] = source
            conditions = []
            for attribute, value in source.criteria.items():
                try:
                    conditions.append(parse_criterion(attribute, value).to_condition())
                except CriterionError as exc:
                    self.error("TSK314", str(exc), (*source.criteria_path, attribute), exc.hint)
            segment: dict[str, Any] = {"conditions": conditions, "match": source.match}
            if source.description:
                segment["description"] = source.description
            out[source.name] = segment
        return out

    def _duplicate(self, what: str, name: str, first: Path, second: Path) -> None:
        first_span = self.locator.value(first)
        related = (Related(first_span, f"`{name}` is first defined here"),) if first_span else ()
        self.diagnostics.append(
            Diagnostic(
                "TSK318",
                f"{what} `{name}` is defined twice",
                self.locator.value(second),
                hint="rename one of them or remove the duplicate",
                related=related,
            )
        )

    # --- flags -----------------------------------------------------------------------------------

    def targeting(self, targeting: FlagTargeting | Any, path: Path) -> tuple[list[dict[str, Any]], str | None]:
        """Conditions of a targeting block, and the time zone of its time window if any."""
        conditions: list[dict[str, Any]] = []
        zone = None
        for key, attribute in ATTRIBUTE_LISTS.items():
            values = getattr(targeting, key, None)
            if values is not None:
                if key == "environments":
                    self.environment_refs(values, (*path, key))
                conditions.append(self._list_condition("in", attribute, "values", values))
        segments = getattr(targeting, "user_segments", None)
        if segments:
            self.segment_refs(segments, (*path, "user_segments"))
            conditions.append(self._list_condition("segment", "", "segments", segments))
        preferences = getattr(targeting, "user_preferences", None)
        if preferences is not None:
            conditions.append({"op": "contains_all", "attribute": "user_preferences", "values": preferences})
        usage = getattr(targeting, "feature_usage", None)
        for key, minimum in (usage or {}).items():
            match = _USAGE_KEY.fullmatch(key)
            if match is None:
                self.error(
                    "TSK333",
                    f"`{key}` in feature_usage must be min_<attribute> or max_<attribute>",
                    (*path, "feature_usage", key),
                    "e.g. min_sessions = 10 means the context's `sessions` >= 10",
                    key=True,
                )
                continue
            op = ">=" if match.group(1) == "min" else "<="
            value: int | float = int(minimum) if float(minimum).is_integer() else minimum
            conditions.append({"op": op, "attribute": match.group(2), "value": value})
        if getattr(targeting, "beta_testers", None) is not None:
            conditions.append({"op": "==", "attribute": "beta_tester", "value": targeting.beta_testers})
        window = getattr(targeting, "time_of_day", None)
        if window is not None:
            wpath = (*path, "time_of_day")
            condition: dict[str, Any] = {"op": "time_window"}
            for end in ("start", "end"):
                try:
                    condition[f"{end}_minute"] = minute_of_day(getattr(window, end))
                except ValueError as exc:
                    self.error("TSK315", str(exc), (*wpath, end))
            if condition.get("start_minute") is not None and condition.get("start_minute") == condition.get(
                "end_minute"
            ):
                self.error("TSK315", "the time window is empty (start == end)", wpath, "use distinct times")
            if window.days:
                condition["days"] = list(window.days)
            try:
                zone = check_time_zone(window.time_zone)
            except ValueError as exc:
                self.error("TSK315", str(exc), (*wpath, "time_zone"))
            conditions.append(condition)
        for key in ATTRIBUTE_LISTS:
            if getattr(targeting, key, None) == []:
                pass  # reported by lint (TSK406): an empty list matches nobody
        return conditions, zone

    def _list_condition(self, op: str, attribute: str, field: str, values: list[str]) -> dict[str, Any]:
        """``{"op": op, "attribute": attribute, field: values}`` (no attribute when empty), shared."""
        key = (op, attribute, tuple(values))
        found = self._conditions.get(key)
        if found is None:
            found = (
                {"op": op, "attribute": attribute, field: list(values)}
                if attribute
                else {"op": op, field: list(values)}
            )
            self._conditions[key] = found
        return found

    def _shared_variants(self, variants: dict[str, Any]) -> dict[str, Any]:
        """``variants`` or an equal dict already in the snapshot; by type too (`1` is not `true`)."""
        if not all(type(value) in _PLAIN for value in variants.values()):
            return variants
        key = tuple((name, type(value), value) for name, value in variants.items())
        return self._variants.setdefault(key, variants)

    def flag(self, source: FlagSource, global_enabled: bool) -> dict[str, Any] | None:
        cfg, key, path = source.config, source.key, source.path

        def at(*parts: str | int) -> Path:
            if parts and isinstance(parts[0], str):
                parts = (source.rename.get(parts[0], parts[0]), *parts[1:])
            return (*path, *parts)

        typed = typed_variants(self, key, cfg, at)
        if typed is None:
            return None
        variants, off = typed.values, typed.off
        conditions, zone = self.targeting(cfg.targeting, at("targeting"))
        conditions = self._condition_lists.setdefault(tuple(map(id, conditions)), conditions)
        strategy = cfg.rollout_strategy
        rules: list[dict[str, Any]] = self.overrides(key, cfg, variants, at)
        rules.extend(lower_rules(self, key, cfg, typed, at))
        if not typed.ok:
            return None
        main = self.main_rule(source, typed, conditions, at)
        if main is _FAILED:
            return None
        if main is not None:
            # a list of exactly one rule (the usual flag) rather than one grown for more
            rules = [*rules, main] if rules else [main]
        self.unique_rule_ids(key, cfg, rules, at)
        # Secrets are already out (compiler/secrets.py scrubs the data before validation).
        metadata = dict(cfg.metadata)
        metadata["rollout_strategy"] = strategy
        metadata["source"] = source.origin
        ab = cfg.a_b_testing if cfg.a_b_testing is not None and cfg.a_b_testing.enabled else None
        if ab is not None and ab.metrics:
            metadata["a_b_metrics"] = list(ab.metrics)
        if typed.descriptions:
            metadata["variant_descriptions"] = typed.descriptions
        out: dict[str, Any] = {
            "key": key,
            "type": typed.type,
            "enabled": cfg.enabled and global_enabled,
            "variants": self._shared_variants(variants),
            "off_variant": off,
            "default_variant": off,
            "bucket_by": cfg.bucket_by,
            "rules": rules,
            "metadata": metadata,
        }
        if zone is not None:
            out["time_zone"] = zone
        return out

    def overrides(self, key: str, cfg: FlagConfig, variants: dict[str, Any], at: Any) -> list[dict[str, Any]]:
        """`targeting.overrides = { <variant> = [unit ids] }`: served before any other rule."""
        rules: list[dict[str, Any]] = []
        overrides = cfg.targeting.overrides
        if not overrides:
            return rules
        if not cfg.targeting.manual_override:
            self.error(
                "TSK319",
                f"flag `{key}` lists overrides but targeting.manual_override is not true",
                at("targeting", "overrides"),
                "set manual_override = true to allow per-unit overrides",
            )
        for variant, units in overrides.items():
            target = "on" if variant in ("on", "true") and "on" in variants else variant
            if target not in variants:
                close = suggest(variant, list(variants))
                self.error(
                    "TSK319",
                    f"override names unknown variant `{variant}` of flag `{key}`",
                    at("targeting", "overrides", variant),
                    f"did you mean `{close}`?" if close else "variants: " + ", ".join(variants),
                    key=True,
                )
                continue
            rules.append(
                {
                    "id": f"override/{variant}",
                    "conditions": [{"op": "in", "attribute": cfg.bucket_by, "values": list(units)}],
                    "serve": target,
                }
            )
        return rules

    def unique_rule_ids(self, key: str, cfg: FlagConfig, rules: list[dict[str, Any]], at: Any) -> None:
        seen: set[str] = set()
        written = {rule.id: index for index, rule in enumerate(cfg.rules or []) if rule.id}
        for rule in rules:
            if rule["id"] in seen:
                index = written.get(rule["id"])
                self.error(
                    "TSK319",
                    f"flag `{key}` has two rules with id `{rule['id']}`",
                    at("rules", index, "id") if index is not None else at("rules"),
                    "rule ids name rules in results and `tusk diff`: give each its own "
                    "(`rollout` and `override/<variant>` are the ids of the rules the compiler adds)",
                )
            seen.add(rule["id"])

    def main_rule(
        self, source: FlagSource, typed: Typed, conditions: list[dict[str, Any]], at: Any
    ) -> dict[str, Any] | None:
        """The rule `rollout`: the flag's `targeting`, its rollout gate, and `on` or its split.

        Last, after `rules`. A flag written in the new form (`rules` or `variants`) has it only when it
        says something the rule holds (a rollout, a strategy, targeting, weights); without any, the
        flag serves what its rules serve, else its fallback (a flag with only variants is static).
        """
        cfg, key = source.config, source.key
        strategy = cfg.rollout_strategy
        given = cfg.model_fields_set
        explicit = bool({"rollout_percentage", "rollout_schedule", "rollout_strategy"} & given)
        new_form = cfg.rules is not None or cfg.variants is not None
        if new_form and not explicit and typed.weights is None and not conditions:
            return None
        if strategy == "user_preference" and not cfg.targeting.user_preferences:
            self.error(
                "TSK320",
                f'flag `{key}` uses rollout_strategy "user_preference" without targeting.user_preferences',
                at("rollout_strategy"),
                'add user_preferences = ["..."] to targeting',
            )
        if strategy == "invite_only" and cfg.targeting.beta_testers is None and not cfg.targeting.user_segments:
            self.error(
                "TSK320",
                f"flag `{key}` is invite_only but targets neither beta_testers nor user_segments",
                at("rollout_strategy"),
                "add beta_testers = true or user_segments = [...] to targeting",
            )
        if cfg.rollout_schedule is not None and strategy != "gradual":
            self.error(
                "TSK320",
                f'flag `{key}` has a rollout_schedule but rollout_strategy is "{strategy}"',
                at("rollout_schedule"),
                'set rollout_strategy = "gradual" or remove rollout_schedule',
                key=True,
            )
        rollout: dict[str, Any] | None = {"salt": f"{key}/rollout"}
        assert rollout is not None
        if strategy == "gradual" and source.rename:
            # A database row states the step it is at now; the schedule is advanced by whoever writes it.
            rollout["percentage"] = self.percent(cfg.rollout_percentage or 0, at("rollout_percentage"))
        elif strategy == "gradual":
            if cfg.rollout_schedule is None:
                self.error(
                    "TSK320",
                    f"flag `{key}` is gradual but has no rollout_schedule",
                    at("rollout_strategy"),
                    "add rollout_schedule = { day_1 = 5, day_7 = 50, day_14 = 100 }",
                )
                return _FAILED
            rollout["schedule"] = self.schedule(key, cfg, at)
        elif strategy in ("all", "user_preference", "invite_only") and cfg.rollout_percentage is None:
            rollout = None
        elif strategy == "none":
            return None
        elif cfg.rollout_percentage is None and new_form and "rollout_strategy" not in given:
            rollout = None  # targeting or a split without a percentage: every matching unit
        else:
            if cfg.rollout_percentage is None:
                if "rollout_strategy" in given:
                    message = f'flag `{key}` uses rollout_strategy "{strategy}" without rollout_percentage'
                    hint = "add rollout_percentage = <0..100>"
                else:  # `{ enabled = true }` alone: the default strategy was not the writer's choice
                    message = f"flag `{key}` does not say whom it is on for (rollout_percentage is missing)"
                    hint = 'add rollout_percentage = 100 (everyone) or <0..100>, or rollout_strategy = "all"'
                self.error("TSK320", message, at("rollout_strategy"), hint)
                return _FAILED
            rollout["percentage"] = self.percent(cfg.rollout_percentage, at("rollout_percentage"))
        rule: dict[str, Any] = {"id": "rollout", "conditions": conditions}
        if rollout is not None:
            rule["rollout"] = rollout
        if typed.weights is not None:
            rule["split"] = {
                "salt": f"{key}/split",
                "weights": self.weights(key, typed.weights, typed.weights_path or at("variants")),
            }
        elif "on" in typed.values:
            rule["serve"] = "on"
        else:
            self.error(
                "TSK319",
                f"the rollout of flag `{key}` serves its variant `on`, which it does not declare",
                at("variants"),
                "name the variant the rollout serves `on`, give the variants weights, or write the "
                'rollout as a rule: rules = [ { rollout = 25, serve = "<variant>" } ]',
                key=True,
            )
            return _FAILED
        return rule

    def derived_on(self, key: str, fallback: Any, path: Path) -> Any:
        """What the `on` variant of a flag written without values serves when its fallback is not a
        boolean: a value of the fallback's type, said in a warning (TSK341); None (and TSK340) for a
        number, which has no neutral value to invent."""
        if isinstance(fallback, str):
            on: Any = "on"  # a variant without a declared value serves its name, as a split variant does
        elif isinstance(fallback, dict | list):
            on = {} if isinstance(fallback, dict) else []  # nothing set: the application's defaults apply
        else:
            self.error(
                "TSK340",
                f"flag `{key}` serves `true` when on but its fallback is the number {fallback!r}: "
                "a flag serves values of one type",
                path,
                f"say what it serves when on: `value = <a number>` next to `fallback = {fallback!r}` "
                "(or make the fallback `false`)",
            )
            return None
        shown = json.dumps(on)
        self.warn(
            "TSK341",
            f"flag `{key}` serves {shown} when on: its fallback is {_kind(fallback)}, so the flag is "
            f"{_kind(fallback).split()[-1]} typed (it served `true` before flags had one type)",
            path,
            "say what it serves when on: `value = ...` of the fallback's type (a row: a `value` column)",
        )
        return on

    def derived_fallback(self, key: str, fallback: Any, written: bool, path: Path) -> Any:
        """The fallback of a split flag, whose variants serve their names (strings)."""
        if isinstance(fallback, str):
            return fallback
        if isinstance(fallback, bool):
            what = f"fallback `{json.dumps(fallback)}`" if written else "default fallback `false`"
            self.warn(
                "TSK341",
                f'flag `{key}` serves "fallback" outside its split: its variants serve their names '
                f"(strings), so the {what} cannot be served",
                path,
                'set `fallback = "<a string>"`, e.g. the name of the control variant',
            )
            return "fallback"
        self.error(
            "TSK340",
            f"flag `{key}` is split into variants that serve their names (strings), but its fallback is "
            f"{_kind(fallback)}",
            path,
            'make the fallback a string (e.g. `fallback = "control"`), or declare each variant\'s value in `variants`',
        )
        return "fallback"

    def schedule(self, key: str, cfg: FlagConfig, at: Any) -> list[dict[str, Any]]:
        raw = dict(cfg.rollout_schedule or {})
        start_value = raw.pop("start", None)
        start_path = at("rollout_schedule", "start")
        if start_value is None and "created_at" in cfg.metadata:
            start_value, start_path = cfg.metadata["created_at"], at("metadata", "created_at")
        if start_value is None:
            self.error(
                "TSK313",
                f"gradual rollout of `{key}` has no start: day_N cannot be turned into a date",
                at("rollout_schedule"),
                'add start = "2024-01-15" to rollout_schedule, or metadata.created_at',
                key=True,
            )
            return []
        start = self.instant(start_value, start_path)
        steps: list[tuple[int, float, Path]] = []
        for name, percent in raw.items():
            spath = at("rollout_schedule", name)
            match = _DAY_KEY.fullmatch(name)
            if match is None:
                close = suggest(name, ["start", "day_1"])
                self.error(
                    "TSK312",
                    f"`{name}` in rollout_schedule is neither `start` nor day_<N>",
                    spath,
                    f"did you mean `{close}`?" if close else "write day_<N> = <percent>",
                    key=True,
                )
                continue
            if isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 <= percent <= 100:
                self.error("TSK312", f"`rollout_schedule.{name}` must be a percentage 0..100", spath)
                continue
            steps.append((int(match.group(1)), float(percent), spath))
        if not steps:
            if raw or start_value is not None:
                self.error("TSK312", f"rollout_schedule of `{key}` has no day_<N> step", at("rollout_schedule"))
            return []
        previous: tuple[int, float, Path] | None = None
        for step in steps:
            if previous is not None and not (step[0] > previous[0] and step[1] > previous[1]):
                self.error(
                    "TSK312",
                    f"rollout_schedule of `{key}`: day_{step[0]} = {step[1]:g} must come after "
                    f"day_{previous[0]} = {previous[1]:g} with a later day and a higher percentage",
                    step[2],
                    "list the steps in increasing day and percentage",
                    key=True,
                )
            previous = step
        if start is None:
            return []
        return [
            {"at": _iso(start + timedelta(days=day)), "percentage": self.percent(percent, spath)}
            for day, percent, spath in steps
        ]

    # --- experiments -------------------------------------------------------------------------

    def experiment(self, key: str, cfg: ExperimentConfig, path: Path, defaults: dict[str, Any]) -> dict[str, Any]:
        variants = {name: name for name in cfg.variants}
        if cfg.control not in variants:
            close = suggest(cfg.control, list(variants))
            self.error(
                "TSK319",
                f"experiment `{key}` has no control variant `{cfg.control}`",
                (*path, "variants") if cfg.control == "control" else (*path, "control"),
                f"did you mean `{close}`?" if close else 'name one variant `control`, or set control = "<variant>"',
            )
        tpath = (*path, "targeting")
        conditions, _ = self.targeting(cfg.targeting, tpath)
        targeting = cfg.targeting
        if targeting.duration is not None:
            try:
                length = parse_duration(targeting.duration)
            except ValueError as exc:
                self.error("TSK304", f"`{dotted((*tpath, 'duration'))}`: {exc}", (*tpath, "duration"))
                length = None
            if targeting.start is None:
                self.error(
                    "TSK313",
                    f"experiment `{key}` has a duration but no start",
                    (*tpath, "duration"),
                    'add start = "2024-02-01" next to duration',
                )
            elif length is not None:
                begin = self.instant(targeting.start, (*tpath, "start"))
                if begin is not None:
                    conditions.append({"op": "active_between", "start": _iso(begin), "end": _iso(begin + length)})
        elif targeting.start is not None:
            begin = self.instant(targeting.start, (*tpath, "start"))
            if begin is not None:
                conditions.append({"op": "active_between", "start": _iso(begin), "end": None})
        rule = {
            "id": "experiment",
            "conditions": conditions,
            "rollout": {
                "salt": f"{key}/traffic",
                "percentage": self.percent(targeting.traffic_percentage, (*tpath, "traffic_percentage")),
            },
            "split": {"salt": f"{key}/split", "weights": self.weights(key, cfg.variants, (*path, "variants"))},
        }
        descriptions = {
            name: v.description for name, v in cfg.variants.items() if isinstance(v, WeightedVariant) and v.description
        }
        out: dict[str, Any] = {
            "key": key,
            "type": "string",
            "enabled": cfg.enabled,
            "variants": variants,
            "off_variant": cfg.control if cfg.control in variants else next(iter(variants)),
            "default_variant": cfg.control if cfg.control in variants else next(iter(variants)),
            "bucket_by": cfg.bucket_by,
            "rules": [rule],
            "metadata": {"variant_descriptions": descriptions} if descriptions else {},
        }
        if cfg.metrics is not None:
            out["metrics"] = cfg.metrics.model_dump()
        analysis = dict(defaults)
        if cfg.analysis is not None:
            analysis.update(cfg.analysis.model_dump())
        if analysis:
            out["analysis"] = analysis
        return out


_FAILED: Any = object()  # a main rule that cannot be built: the flag is not lowered


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return "an object" if isinstance(value, dict) else "a list"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def analysis_defaults(config: ProjectConfig) -> dict[str, Any]:
    ab = config.ab_testing_config
    if ab is None or ab.analysis is None:
        return {}
    out: dict[str, Any] = {}
    if ab.analysis.bayesian_analysis is not None:
        out["bayesian"] = ab.analysis.bayesian_analysis.model_dump()
    if ab.analysis.frequentist_analysis is not None:
        out["frequentist"] = ab.analysis.frequentist_analysis.model_dump()
    if ab.analysis.reporting is not None:
        # winner_detection is honoured by `tusk experiment report`; the rest describes reports
        out["reporting"] = ab.analysis.reporting.model_dump()
    return out


__all__ = ["FORMAT", "FlagSource", "Normaliser", "SegmentSource", "analysis_defaults"]
