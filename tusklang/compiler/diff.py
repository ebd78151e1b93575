"""What changed between two snapshots, said for people: flags added or removed, rollout 25% -> 50%,
weights, rules (added, removed, their conditions, what they serve, their order), prerequisites, variant
values and types."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Change:
    kind: str  # added | removed | enabled | rollout | split | targeting | serve | order | variants | value |
    #            type | default | prerequisite | segment | bucket_by | time_zone | runtime
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


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(cond: dict[str, Any]) -> str:
    """One condition as people read it: `country in ["NL", "BE"]`, `not (email ends_with "@x")`."""
    op = cond.get("op")
    if op in ("all", "any"):
        return f"{op}(" + "; ".join(describe(c) for c in cond.get("conditions", [])) + ")"
    if op == "not":
        return f"not ({describe(cond['condition'])})"
    if op == "segment":
        return "segment in " + _json(cond.get("segments"))
    if op == "time_window":
        days = f" on {','.join(cond['days'])}" if cond.get("days") else ""
        start, end = cond.get("start_minute", 0), cond.get("end_minute", 0)
        return f"local time in [{start // 60:02d}:{start % 60:02d}, {end // 60:02d}:{end % 60:02d}){days}"
    if op == "active_between":
        return f"now in [{cond.get('start')}, {cond.get('end') or '...'})"
    if op in ("exists", "not_exists"):
        return f"{cond.get('attribute')} {str(op).replace('_', ' ')}"
    operand = cond["values"] if "values" in cond else cond.get("value")
    unit = f" {cond['unit']}" if cond.get("unit") else ""
    return f"{cond.get('attribute')} {op} {_json(operand)}{unit}"


def _conditions_text(conditions: list[dict[str, Any]] | None) -> str:
    return " and ".join(describe(c) for c in conditions or []) or "(always)"


def _rule_text(rule: dict[str, Any], scale: int) -> str:
    parts = [f"when {_conditions_text(rule.get('conditions'))}"]
    if rule.get("rollout") is not None:
        parts.append(f"rollout {_rollout_text(rule['rollout'], scale)}")
    parts.append(f"split {_weights_text(rule['split'], scale)}" if rule.get("split") else f"serve {rule.get('serve')}")
    return ", ".join(parts)


def _variant_changes(section: str, key: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    out: list[Change] = []
    if old.get("type") != new.get("type"):
        out.append(Change("type", section, key, f"{key}: value type {old.get('type')} -> {new.get('type')}"))
    before, after = old.get("variants") or {}, new.get("variants") or {}
    if set(before) != set(after):
        out.append(Change("variants", section, key, f"{key}: variants {sorted(before)} -> {sorted(after)}"))
    for name in sorted(set(before) & set(after)):
        if _json(before[name]) != _json(after[name]):
            message = f"{key}: variant {name} serves {_clip(_json(before[name]))} -> {_clip(_json(after[name]))}"
            out.append(Change("value", section, key, message))
    return out


def _prerequisites(flag: dict[str, Any]) -> dict[str, list[str]]:
    return {p["flag"]: list(p["variants"]) for p in flag.get("prerequisites") or []}


def _prerequisite_changes(section: str, key: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    out: list[Change] = []
    before, after = _prerequisites(old), _prerequisites(new)
    for other in [*before, *(o for o in after if o not in before)]:
        if other not in after:
            message = f"{key}: no longer requires {other}"
        elif other not in before:
            message = f"{key}: now requires {other} to serve {', '.join(after[other])}"
        elif before[other] != after[other]:
            message = f"{key}: requires {other} to serve {', '.join(before[other])} -> {', '.join(after[other])}"
        else:
            continue
        out.append(Change("prerequisite", section, key, message))
    kept_before = [o for o in before if o in after]
    kept_after = [o for o in after if o in before]
    if kept_before != kept_after:
        message = f"{key}: prerequisites checked in the order {', '.join(kept_after)} (was {', '.join(kept_before)})"
        out.append(Change("prerequisite", section, key, message))
    return out


def _in_rule(rid: str) -> str:
    return "" if rid == "rollout" else f" (rule {rid})"


def _rule_changes(
    section: str, key: str, old: dict[str, Any], new: dict[str, Any], scales: tuple[int, int]
) -> list[Change]:
    out: list[Change] = []
    old_rules, new_rules = _rules(old), _rules(new)
    for rid in [*old_rules, *(r for r in new_rules if r not in old_rules)]:
        before, after = old_rules.get(rid), new_rules.get(rid)
        if before is None:
            assert after is not None
            out.append(Change("targeting", section, key, f"{key}: rule {rid} added: {_rule_text(after, scales[1])}"))
            continue
        if after is None:
            out.append(
                Change("targeting", section, key, f"{key}: rule {rid} removed (was {_rule_text(before, scales[0])})")
            )
            continue
        if before.get("rollout") != after.get("rollout"):
            message = (
                f"{key}: rollout {_rollout_text(before.get('rollout'), scales[0])} -> "
                f"{_rollout_text(after.get('rollout'), scales[1])}{_in_rule(rid)}"
                + _salt_note(before.get("rollout"), after.get("rollout"))
            )
            out.append(Change("rollout", section, key, message))
        if before.get("split") != after.get("split"):
            message = (
                f"{key}: variant weights {_weights_text(before.get('split'), scales[0])} -> "
                f"{_weights_text(after.get('split'), scales[1])}{_in_rule(rid)}"
                + _salt_note(before.get("split"), after.get("split"))
            )
            out.append(Change("split", section, key, message))
        if before.get("conditions") != after.get("conditions"):
            message = (
                f"{key}: rule {rid} when {_conditions_text(before.get('conditions'))} -> "
                f"{_conditions_text(after.get('conditions'))}"
            )
            out.append(Change("targeting", section, key, message))
        if before.get("serve") != after.get("serve") and before.get("serve") and after.get("serve"):
            out.append(Change("serve", section, key, f"{key}: rule {rid} serves {before['serve']} -> {after['serve']}"))
    kept_before = [r for r in old_rules if r in new_rules]
    kept_after = [r for r in new_rules if r in old_rules]
    if kept_before != kept_after:
        # the first rule that serves wins: a new order can change what a unit gets
        message = f"{key}: rules reordered: {', '.join(kept_before)} -> {', '.join(kept_after)}"
        out.append(Change("order", section, key, message))
    return out


def _flag_changes(
    section: str, key: str, old: dict[str, Any], new: dict[str, Any], scales: tuple[int, int]
) -> list[Change]:
    out: list[Change] = []
    if old.get("enabled", True) != new.get("enabled", True):
        state = "enabled" if new.get("enabled", True) else "disabled"
        out.append(Change("enabled", section, key, f"{key}: {state}"))
    out.extend(_variant_changes(section, key, old, new))
    if old.get("default_variant") != new.get("default_variant"):
        message = f"{key}: default variant {old.get('default_variant')} -> {new.get('default_variant')}"
        out.append(Change("default", section, key, message))
    if old.get("off_variant") != new.get("off_variant"):
        message = f"{key}: off variant {old.get('off_variant')} -> {new.get('off_variant')}"
        out.append(Change("default", section, key, message))
    for field, what in (("bucket_by", "bucketing attribute"), ("time_zone", "time zone")):
        if old.get(field) != new.get(field):
            note = " (every unit is re-bucketed)" if field == "bucket_by" else ""
            out.append(Change(field, section, key, f"{key}: {what} {old.get(field)} -> {new.get(field)}{note}"))
    out.extend(_prerequisite_changes(section, key, old, new))
    out.extend(_rule_changes(section, key, old, new, scales))
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
