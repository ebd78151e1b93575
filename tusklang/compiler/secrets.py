"""The secret rule: where a value that depends on `@env` may go in a compiled snapshot.

The interpreter records, per data path, the `@env` calls a value depends on (through variables,
interpolation, operators, `? :`, lists, objects and `@file`; tusklang/interpret.py). Every tainted
value is classified by the place it lands in (docs/directives.md, "@env and secrets"):

* a **setting**: the snapshot holds what the compiler made of it, not its text: a boolean, a number, a
  word from a fixed list (an enum), a duration, a date or clock time, a time zone, the rollout schedule,
  an experiment's control (one of its variant names). Allowed.
* **not copied**: read by other tools or by nobody, never written to the snapshot (`storage.connection`,
  `progressive_delivery`, dashboards, `management_config`, ...). Allowed.
* **droppable**: copied verbatim, but informational only (metadata, descriptions, `a_b_testing.metrics`):
  left out of the snapshot with warning TSK270, or error TSK271 under `--strict-secrets`.
* anything else is **verbatim** and changes what is served (fallback values, targeting lists, segment
  criteria, override unit ids, `bucket_by`, `storage.key_prefix`, ...): leaving it out would change the
  flag, so it is always an error (TSK272).

Deny by default: a place is a setting only if the compiler knows it to be one, from the config model's
type (bool, int, float, Literal, duration) or the short table below of strings it parses. A new string
field of the schema is therefore verbatim until someone decides otherwise here.
"""

from __future__ import annotations

import datetime
import enum
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel

from .._annotations import unwrap
from ..diagnostics import Diagnostic, Related, Severity, Span
from ..schema.project import ProjectConfig
from .locate import Locator, Path, dotted

TaintMap = Mapping[Path, set[Span]]

# `*` matches one key or index. A pattern matches a path it is a prefix of.
NOT_COPIED: tuple[tuple[str, ...], ...] = (
    ("feature_flags", "storage", "connection"),
    ("feature_flags", "progressive_delivery"),
    ("progressive_delivery",),
    ("feature_flags", "flags", "*", "a_b_testing", "description"),
    ("feature_flags_data", "flag_evaluations"),
    ("feature_flags_data", "experiment_results"),
    ("feature_flags_data", "performance_impact"),
    ("feature_analytics_config", "reporting"),
    ("feature_analytics_config", "tracking", "performance_impact", "metrics"),
    ("feature_analytics_config", "tracking", "business_metrics", "metrics"),
    ("real_time_feature_dashboard",),
    # approval_workflow's approvers are copied into runtime.access (verbatim); its environment names
    # only decide which flags need approval
    ("management_config", "flag_lifecycle"),
    ("management_config", "documentation"),
    ("management_config", "approval_workflow", "auto_approval"),
    ("performance_config",),
)
DROPPABLE: tuple[tuple[str, ...], ...] = (
    ("feature_flags", "flags", "*", "metadata"),
    ("feature_flags", "flags", "*", "a_b_testing", "metrics"),
    ("feature_flags", "flags", "*", "a_b_testing", "variants", "*", "description"),
    ("feature_flags", "flags", "*", "variants", "*", "description"),
    ("feature_flags", "flags", "*", "rules", "*", "description"),
    ("feature_flags", "targeting", "user_segments", "*", "description"),
    ("feature_flags_data", "flag_definitions", "*", "metadata"),
    ("ab_testing_config", "experiments", "*", "variants", "*", "description"),
)
# Strings the compiler parses into a setting: the snapshot holds a number, an instant, a minute of
# the day, a validated IANA zone name or one of the experiment's own variant names.
PARSED: tuple[tuple[str, ...], ...] = (
    ("feature_flags", "flags", "*", "rollout_schedule"),
    ("feature_flags", "flags", "*", "targeting", "time_of_day", "start"),
    ("feature_flags", "flags", "*", "targeting", "time_of_day", "end"),
    ("feature_flags", "flags", "*", "targeting", "time_of_day", "time_zone"),
    ("ab_testing_config", "experiments", "*", "control"),
    ("ab_testing_config", "experiments", "*", "targeting", "duration"),
    ("ab_testing_config", "experiments", "*", "targeting", "start"),
)
_SETTING_TYPES = (bool, int, float, datetime.timedelta, type(None))


class Place(enum.Enum):
    SETTING = "setting"
    NOT_COPIED = "not copied"
    DROPPABLE = "droppable"
    VERBATIM = "verbatim"


def _matches(pattern: tuple[str, ...], path: Path) -> bool:
    if len(path) < len(pattern):
        return False
    return all(want == "*" or want == got for want, got in zip(pattern, path, strict=False))


def _step(tp: Any, part: str | int) -> Any:
    """The annotation one key or index below ``tp``; Any below Any; None for a key the model lacks."""
    found = None
    for option in unwrap(tp):
        if option is Any:
            return Any
        if isinstance(option, type) and issubclass(option, BaseModel):
            field = _field(option, part)
            if field is not None:
                return field.annotation
            continue
        origin = typing.get_origin(option)
        if origin is dict and isinstance(part, str):
            found = typing.get_args(option)[1]
        elif origin is list and isinstance(part, int):
            found = typing.get_args(option)[0]
    return found


def _field(model: type[BaseModel], part: str | int) -> Any:
    """The field ``part`` names, by name or by alias (`not` is the field `not_`)."""
    if not isinstance(part, str):
        return None
    for name, info in model.model_fields.items():
        if part in (name, info.alias):
            return info
    return None


def _is_setting_type(tp: Any, value: Any) -> bool:
    """Whether every type ``value`` could validate as is a bool, number, Literal or duration."""
    scalar = not isinstance(value, dict | list)
    options = []
    for option in unwrap(tp):
        if option is Any:
            return False
        is_container = (isinstance(option, type) and issubclass(option, BaseModel)) or typing.get_origin(option) in (
            dict,
            list,
        )
        if is_container == scalar:
            continue  # e.g. the WeightedVariant of `float | WeightedVariant` when the value is a number
        options.append(option)
    if not options:
        return False
    return all(typing.get_origin(o) is typing.Literal or o in _SETTING_TYPES for o in options)


def classify(path: Path, value: Any) -> Place:
    """Where a tainted ``value`` at ``path`` lands (see the module docstring)."""
    if any(_matches(p, path) for p in NOT_COPIED):
        return Place.NOT_COPIED
    if any(_matches(p, path) for p in DROPPABLE):
        return Place.DROPPABLE
    if any(_matches(p, path) for p in PARSED):
        return Place.SETTING
    tp: Any = ProjectConfig
    for part in path:
        tp = _step(tp, part)
        if tp is None:
            # A key the schema does not know: validation reports it and nothing is written.
            return Place.SETTING
    return Place.SETTING if _is_setting_type(tp, value) else Place.VERBATIM


def _at(data: Any, path: Path) -> tuple[bool, Any]:
    node = data
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return False, None
    return True, node


def _leaves(value: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    """Scalars and empty containers under ``value``, iteratively (values can nest 128 deep)."""
    stack: list[tuple[Path, Any]] = [(path, value)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, dict) and node:
            stack.extend(((*where, k), v) for k, v in reversed(node.items()))
        elif isinstance(node, list) and node:
            stack.extend(((*where, i), v) for i, v in reversed(list(enumerate(node))))
        else:
            yield where, node


def _path_key(path: Path) -> tuple[tuple[int, str | int], ...]:
    return tuple((0, p) if isinstance(p, int) else (1, p) for p in path)


def scrub(
    data: dict[str, Any], taint: TaintMap, locator: Locator, strict: bool = False
) -> tuple[dict[str, Any], list[Diagnostic]]:
    """``data`` without the secrets it may not carry, and a diagnostic for each.

    Containers on the way to a removed value are copied, never changed in place: one variable's
    object can be the value of several keys.
    """
    diagnostics: list[Diagnostic] = []
    drops: list[Path] = []
    for path in sorted(taint, key=_path_key):
        present, value = _at(data, path)
        if not present:
            continue
        origins = sorted(taint[path], key=lambda s: (s.file, s.start))
        place = classify(path, value)
        if place is Place.DROPPABLE:
            drops.append(path)
            diagnostics.append(_dropped(path, origins, locator, strict))
            continue
        if place is not Place.VERBATIM:
            continue
        verbatim: list[Path] = []
        for leaf, leaf_value in _leaves(value, path) if isinstance(value, dict | list) else [(path, value)]:
            where = classify(leaf, leaf_value)
            if where is Place.DROPPABLE:
                drops.append(leaf)
                diagnostics.append(_dropped(leaf, origins, locator, strict))
            elif where is Place.VERBATIM:
                verbatim.append(leaf)
        if verbatim:
            diagnostics.append(_verbatim(path, verbatim, origins, locator))
    if drops:
        data = _without(data, drops)
    return data, diagnostics


def _related(path: Path, origins: list[Span], locator: Locator) -> tuple[Related, ...]:
    used = locator.value(path)
    # `x = @env(X)` is its own use: say "used here" only when the place is elsewhere ($var, @file)
    shown = used is not None and not any(o.source is used.source and o.start == used.start for o in origins)
    related = [Related(used, f"used here, in `{dotted(path)}`")] if used is not None and shown else []
    related.extend(Related(span, "also read here") for span in origins[1:])
    return tuple(related)


def _dropped(path: Path, origins: list[Span], locator: Locator, strict: bool) -> Diagnostic:
    where = dotted(path)
    if strict:
        return Diagnostic(
            "TSK271",
            f"`{where}` would be copied into the snapshot, and its value comes from @env",
            origins[0],
            Severity.ERROR,
            "--strict-secrets refuses secrets in metadata and descriptions; write the value in the file, or remove it",
            _related(path, origins, locator),
        )
    return Diagnostic(
        "TSK270",
        f"`{where}` comes from @env and is left out of the snapshot",
        origins[0],
        Severity.WARNING,
        "values from @env never reach metadata or descriptions (snapshots and OFREP responses are not "
        "secret); write the value in the file if it is not a secret",
        _related(path, origins, locator),
    )


def _verbatim(path: Path, leaves: list[Path], origins: list[Span], locator: Locator) -> Diagnostic:
    where = dotted(leaves[0])
    more = f" (and {len(leaves) - 1} more place(s) under `{dotted(path)}`)" if len(leaves) > 1 else ""
    return Diagnostic(
        "TSK272",
        f"a value from @env would be copied verbatim into the snapshot at `{where}`{more}",
        origins[0],
        Severity.ERROR,
        "@env may set switches, numbers, fixed choices, durations and dates, and `storage.connection`; "
        "text that the snapshot copies (fallbacks, variant values, targeting lists, criteria) must be "
        "written in the file: leaving it out would change what the flag serves",
        _related(leaves[0], origins, locator),
    )


def _without(data: dict[str, Any], drops: list[Path]) -> dict[str, Any]:
    root: dict[str, Any] = dict(data)
    copied: set[int] = {id(root)}
    # Highest index first within one list, children before their parents.
    for path in sorted(set(drops), key=_path_key, reverse=True):
        node: Any = root
        ok = True
        for part in path[:-1]:
            if isinstance(node, dict) and part in node:
                child = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                child = node[part]
            else:
                ok = False
                break
            if isinstance(child, dict | list) and id(child) not in copied:
                child = dict(child) if isinstance(child, dict) else list(child)
                copied.add(id(child))
                node[part] = child
            node = child
        if not ok:
            continue
        last = path[-1]
        if isinstance(node, dict) and last in node:
            del node[last]
        elif isinstance(node, list) and isinstance(last, int) and 0 <= last < len(node):
            del node[last]
    return root
