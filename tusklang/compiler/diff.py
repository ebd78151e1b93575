"""What changed between two snapshots, said for people: flag added, rollout 25% -> 50%, weights."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Change:
    kind: str  # added | removed | enabled | rollout | split | targeting | variants | default | segment |
    #            bucket_by | time_zone | runtime
    section: str  # flags | experiments | segments | runtime
    key: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "section": self.section, "key": self.key, "message": self.message}


def _pct(value: int, scale: int) -> str:
    return f"{value * 100 / scale:g}%"


def _rollout_text(rollout: dict[str, Any] | None, scale: int) -> str:
    if rollout is None:
        return "everyone"
    if rollout.get("percentage") is not None:
        return _pct(rollout["percentage"], scale)
    steps = rollout.get("schedule") or []
    return "schedule " + ", ".join(f"{s['at'][:10]}: {_pct(s['percentage'], scale)}" for s in steps)


def _weights_text(split: dict[str, Any] | None, scale: int) -> str:
    if split is None:
        return "none"
    total = sum(w for _, w in split["weights"]) or scale
    return ", ".join(f"{name} {w * 100 / total:g}%" for name, w in split["weights"])


def _salt_note(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """A new salt puts every unit in a new bucket, whatever the percentages say."""
    if before is None or after is None or before.get("salt") == after.get("salt"):
        return ""
    return " (salt changed: every unit is re-bucketed)"


def _rules(flag: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["id"]: rule for rule in flag.get("rules", [])}


def _flag_changes(
    section: str, key: str, old: dict[str, Any], new: dict[str, Any], scales: tuple[int, int]
) -> list[Change]:
    out: list[Change] = []
    if old.get("enabled", True) != new.get("enabled", True):
        state = "enabled" if new.get("enabled", True) else "disabled"
        out.append(Change("enabled", section, key, f"{key}: {state}"))
    if old.get("variants") != new.get("variants"):
        out.append(
            Change("variants", section, key, f"{key}: variants {sorted(old['variants'])} -> {sorted(new['variants'])}")
        )
    if old.get("default_variant") != new.get("default_variant"):
        out.append(
            Change(
                "default",
                section,
                key,
                f"{key}: default variant {old.get('default_variant')} -> {new.get('default_variant')}",
            )
        )
    for field, what in (("bucket_by", "bucketing attribute"), ("time_zone", "time zone")):
        if old.get(field) != new.get(field):
            note = " (every unit is re-bucketed)" if field == "bucket_by" else ""
            out.append(Change(field, section, key, f"{key}: {what} {old.get(field)} -> {new.get(field)}{note}"))
    old_rules, new_rules = _rules(old), _rules(new)
    for rid in sorted(set(old_rules) | set(new_rules)):
        before, after = old_rules.get(rid), new_rules.get(rid)
        if before is None or after is None:
            verb = "added" if before is None else "removed"
            out.append(Change("targeting", section, key, f"{key}: rule {rid} {verb}"))
            continue
        if before.get("rollout") != after.get("rollout"):
            out.append(
                Change(
                    "rollout",
                    section,
                    key,
                    f"{key}: rollout {_rollout_text(before.get('rollout'), scales[0])} -> "
                    f"{_rollout_text(after.get('rollout'), scales[1])}"
                    + _salt_note(before.get("rollout"), after.get("rollout")),
                )
            )
        if before.get("split") != after.get("split"):
            out.append(
                Change(
                    "split",
                    section,
                    key,
                    f"{key}: variant weights {_weights_text(before.get('split'), scales[0])} -> "
                    f"{_weights_text(after.get('split'), scales[1])}"
                    + _salt_note(before.get("split"), after.get("split")),
                )
            )
        if before.get("conditions") != after.get("conditions") or before.get("serve") != after.get("serve"):
            out.append(
                Change(
                    "targeting",
                    section,
                    key,
                    f"{key}: rule {rid} targeting {json.dumps(before.get('conditions'), sort_keys=True)} -> "
                    f"{json.dumps(after.get('conditions'), sort_keys=True)}",
                )
            )
    return out


def diff_snapshots(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    scales = (int(old.get("scale", 100_000)), int(new.get("scale", 100_000)))
    changes: list[Change] = []
    for section in ("flags", "experiments"):
        before, after = old.get(section, {}), new.get(section, {})
        for key in sorted(set(before) | set(after)):
            if key not in before:
                flag = after[key]
                rollouts = [_rollout_text(r.get("rollout"), scales[1]) for r in flag.get("rules", [])]
                detail = f" (rollout {', '.join(rollouts)})" if rollouts else ""
                changes.append(Change("added", section, key, f"{key}: added{detail}"))
            elif key not in after:
                changes.append(Change("removed", section, key, f"{key}: removed"))
            else:
                changes.extend(_flag_changes(section, key, before[key], after[key], scales))
    before, after = old.get("segments", {}), new.get("segments", {})
    for key in sorted(set(before) | set(after)):
        if key not in before:
            changes.append(Change("added", "segments", key, f"segment {key}: added"))
        elif key not in after:
            changes.append(Change("removed", "segments", key, f"segment {key}: removed"))
        elif before[key] != after[key]:
            changes.append(Change("segment", "segments", key, f"segment {key}: criteria changed"))
    changes.extend(_runtime_changes(old.get("runtime") or {}, new.get("runtime") or {}))
    return changes


def _runtime_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Settings of the tools around evaluation (storage prefix, tracking, data protection), key by key."""
    out: list[Change] = []
    for part in sorted(set(old) | set(new)):
        before, after = old.get(part) or {}, new.get(part) or {}
        for name in sorted(set(before) | set(after)):
            if before.get(name) != after.get(name):
                message = f"runtime {part}.{name}: {before.get(name)} -> {after.get(name)}"
                out.append(Change("runtime", "runtime", f"{part}.{name}", message))
    return out
