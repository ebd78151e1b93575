"""The typed flag model (issue 16): variants of any JSON type with one type per flag, rules on any
attribute, prerequisites, and what each compiles to (docs/config.md, docs/snapshot.md)."""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path
from typing import Any

import pytest

from tusklang.compiler import compile_files
from tusklang.diagnostics import Diagnostic, TuskError
from tusklang.schema.rules import ClauseOp
from tusklang.snapshot import load_snapshot

ROOT = Path(__file__).resolve().parent.parent
TYPED = ROOT / "fixtures" / "typed"
GOLDEN = TYPED / "snapshot.json"


def compile_text(tmp_path: Path, flags: str, extra: str = "") -> dict[str, Any]:
    """The snapshot of a project holding ``flags`` (and ``extra`` blocks); the diagnostics in `_diagnostics`."""
    src = tmp_path / "p.tsk"
    src.write_text("feature_flags = {\n flags = {\n" + flags + "\n }\n}\n" + extra, encoding="utf-8")
    result = compile_files([str(src)], static=True, verify=True)
    snapshot = dict(result.snapshot)
    snapshot["_diagnostics"] = result.diagnostics
    return snapshot


def errors_of(tmp_path: Path, flags: str, extra: str = "") -> list[Diagnostic]:
    with pytest.raises(TuskError) as info:
        compile_text(tmp_path, flags, extra)
    return [d for d in info.value.diagnostics if d.is_error]


def where(d: Diagnostic) -> tuple[str, int, str]:
    assert d.span is not None
    return (d.code, d.span.line, d.span.text)


# --- the fixture project ------------------------------------------------------------------------


def test_typed_project_compiles_to_its_golden_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(TYPED)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1706832000")
    text = compile_files(["project.tsk"], static=True, verify=True).text
    if os.environ.get("TUSK_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")
    load_snapshot(text)


def _ops(value: Any) -> set[str]:
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("op"), str):
                found.add(item["op"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def test_the_fixture_uses_every_operator_and_every_value_type() -> None:
    snapshot = json.loads(GOLDEN.read_text(encoding="utf-8"))
    ops = _ops(snapshot["flags"])
    assert set(typing.get_args(ClauseOp)) <= ops
    assert {"all", "any", "not", "segment"} <= ops
    assert {f["type"] for f in snapshot["flags"].values()} == {"boolean", "string", "number", "object"}
    layout = snapshot["flags"]["checkout_layout"]
    assert layout["variants"]["compact"] == {"rows": 50, "dense": True}
    assert snapshot["flags"]["banner_slots"]["variants"] == {"off": [], "two": ["top", "side"]}


def test_rules_keep_their_order_ids_and_the_flags_salts() -> None:
    layout = json.loads(GOLDEN.read_text(encoding="utf-8"))["flags"]["checkout_layout"]
    assert [r["id"] for r in layout["rules"]] == ["benelux", "not-blocked", "new-apps", "beta", "rollout"]
    # every rule buckets with the flag's salts: reordering rules never moves a unit
    assert {r["rollout"]["salt"] for r in layout["rules"] if "rollout" in r} == {"checkout_layout/rollout"}
    assert {r["split"]["salt"] for r in layout["rules"] if "split" in r} == {"checkout_layout/split"}
    # `serve = { rows = 20, dense = false }` names the variant holding that value
    assert layout["rules"][2]["serve"] == "roomy"
    # a top-level `not` and a list of clauses
    assert layout["rules"][2]["conditions"][1]["op"] == "not"
    # dates are written in one form: UTC with a Z
    assert layout["rules"][3]["conditions"][0]["conditions"][1]["value"] == "2024-01-01T00:00:00Z"


def test_prerequisites_by_variant_by_value_and_by_list() -> None:
    flags = json.loads(GOLDEN.read_text(encoding="utf-8"))["flags"]
    assert flags["new_pricing_page"]["prerequisites"] == [{"flag": "checkout_layout", "variants": ["compact", "roomy"]}]
    # "new_pricing" is the value of `on`
    assert flags["search_limit"]["prerequisites"] == [{"flag": "new_pricing_page", "variants": ["on"]}]
    # [100, "unlimited"]: a value and a name, in the prerequisite's own variant order
    assert flags["dark_mode_v3"]["prerequisites"] == [{"flag": "search_limit", "variants": ["high", "unlimited"]}]


# --- value types ------------------------------------------------------------------------------


def test_type_is_inferred_from_the_first_value_and_numbers_are_one_type(tmp_path: Path) -> None:
    snap = compile_text(tmp_path, '  limit = { variants = { low = 10, high = 2.5 }, fallback = "low" }')
    assert snap["flags"]["limit"]["type"] == "number"
    assert snap["flags"]["limit"]["rules"] == []  # no rollout and no rules: static, serves its fallback


def test_a_variant_of_another_type_is_an_error_at_its_value(tmp_path: Path) -> None:
    found = errors_of(
        tmp_path,
        '  limit = {\n   variants = { low = 10, high = "100" }\n   fallback = "low"\n  }',
    )
    assert [where(d) for d in found] == [("TSK340", 4, '"100"')]
    assert "a string" in found[0].message and "numbers" in found[0].message


def test_true_is_not_a_number_and_a_declared_type_wins(tmp_path: Path) -> None:
    found = errors_of(
        tmp_path,
        '  limit = {\n   type = "number"\n   variants = { off = true, on = 1 }\n  }',
    )
    assert [where(d)[:2] for d in found] == [("TSK340", 5)]
    assert 'declared `type = "number"`' in found[0].message


def test_a_variant_without_value_serves_its_name(tmp_path: Path) -> None:
    snap = compile_text(
        tmp_path, '  copy = { variants = { short = { weight = 50 }, long = { weight = 50 } }, fallback = "short" }'
    )
    flag = snap["flags"]["copy"]
    assert (flag["type"], flag["variants"]) == ("string", {"short": "short", "long": "long"})
    assert flag["rules"][0]["split"]["weights"] == [["short", 50000], ["long", 50000]]
    assert "rollout" not in flag["rules"][0]  # weights without a percentage: every unit is split


def test_a_named_variant_without_value_in_an_object_flag_is_an_error(tmp_path: Path) -> None:
    found = errors_of(tmp_path, '  l = { variants = { a = { rows = 1 }, b = { weight = 1 } }, fallback = "a" }')
    assert [d.code for d in found] == ["TSK340"]
    assert "serve its name" in found[0].message


def test_value_and_fallback_form(tmp_path: Path) -> None:
    snap = compile_text(tmp_path, "  p = { value = { rows = 2 }, fallback = { rows = 1 }, rollout_percentage = 10 }")
    flag = snap["flags"]["p"]
    assert (flag["type"], flag["variants"], flag["off_variant"]) == (
        "object",
        {"on": {"rows": 2}, "fallback": {"rows": 1}},
        "fallback",
    )
    assert not [d for d in snap["_diagnostics"] if d.code == "TSK341"]  # declared: nothing derived
    found = errors_of(tmp_path, '  p = { value = "new", rollout_percentage = 10 }')
    assert [d.code for d in found] == ["TSK305"]  # a string flag needs a fallback of its type
    found = errors_of(tmp_path, '  p = { value = "new", fallback = false, rollout_percentage = 10 }')
    assert [where(d)[0] for d in found] == ["TSK340"]


@pytest.mark.parametrize(
    ("fallback", "type_", "on"),
    [
        ('"legacy_pricing"', "string", "on"),
        ('{ type = "static", value = "legacy" }', "string", "on"),
        ("{ requests_per_minute = 600 }", "object", {}),
        ('["a"]', "object", []),
    ],
)
def test_seed_form_with_a_non_boolean_fallback_is_typed_by_it(
    tmp_path: Path, fallback: str, type_: str, on: Any
) -> None:
    snap = compile_text(tmp_path, f"  f = {{ rollout_percentage = 10, fallback = {fallback} }}")
    flag = snap["flags"]["f"]
    assert (flag["type"], flag["variants"]["on"]) == (type_, on)
    warnings = [d for d in snap["_diagnostics"] if d.code == "TSK341"]
    assert len(warnings) == 1 and warnings[0].span is not None and warnings[0].span.line == 3
    assert "value = ..." in (warnings[0].hint or "")


def test_seed_form_with_a_number_fallback_is_an_error(tmp_path: Path) -> None:
    found = errors_of(tmp_path, "  f = { rollout_percentage = 10, fallback = 600 }")
    assert [where(d) for d in found] == [("TSK340", 3, "600")]
    assert "value = <a number>" in (found[0].hint or "")


def test_a_split_flag_serves_strings_and_its_boolean_fallback_becomes_one(tmp_path: Path) -> None:
    snap = compile_text(tmp_path, "  ab = { rollout_percentage = 10, a_b_testing = { variants = { a = 50, b = 50 } } }")
    flag = snap["flags"]["ab"]
    assert (flag["type"], flag["variants"]) == ("string", {"a": "a", "b": "b", "fallback": "fallback"})
    assert [d.code for d in snap["_diagnostics"] if d.code.startswith("TSK34")] == ["TSK341"]
    found = errors_of(
        tmp_path, "  ab = { rollout_percentage = 10, fallback = 3, a_b_testing = { variants = { a = 50, b = 50 } } }"
    )
    assert [d.code for d in found] == ["TSK340"]


def test_a_b_testing_weights_over_declared_variants(tmp_path: Path) -> None:
    snap = compile_text(
        tmp_path,
        '  l = { variants = { a = { rows = 1 }, b = { rows = 2 } }, fallback = "a",\n'
        "        a_b_testing = { variants = { a = 0.25, b = 0.75 } } }",
    )
    assert snap["flags"]["l"]["rules"][0]["split"]["weights"] == [["a", 25000], ["b", 75000]]
    found = errors_of(
        tmp_path,
        '  l = { variants = { a = { rows = 1 }, b = { rows = 2 } }, fallback = "a",\n'
        "        a_b_testing = { variants = { a = 0.5, c = 0.5 } } }",
    )
    assert [where(d) for d in found] == [("TSK319", 4, "c")]


def test_a_row_may_declare_its_value(tmp_path: Path) -> None:
    extra = (
        "feature_flags_data = {\n flag_definitions = [\n"
        '  { flag_name = "r", enabled = true, rollout_strategy = "all", rollout_percentage = 100,'
        " fallback_value = { rpm = 600 }, value = { rpm = 1200 } }\n ]\n}\n"
    )
    snap = compile_text(tmp_path, "  a = { rollout_percentage = 5 }", extra)
    assert snap["flags"]["r"]["variants"] == {"on": {"rpm": 1200}, "fallback": {"rpm": 600}}
    assert not [d for d in snap["_diagnostics"] if d.code == "TSK341"]


# --- rules --------------------------------------------------------------------------------------


def test_rules_come_after_overrides_and_before_the_rollout(tmp_path: Path) -> None:
    snap = compile_text(
        tmp_path,
        "  f = {\n   rollout_percentage = 10\n"
        '   targeting = { manual_override = true, overrides = { on = ["u1"] }, regions = ["eu"] }\n'
        '   rules = [ { when = { attribute = "plan", op = "==", value = "pro" } },\n'
        '             { id = "late", when = { attribute = "seats", op = ">", value = 5 },\n'
        "               rollout = 50, serve = false } ]\n  }",
    )
    rules = snap["flags"]["f"]["rules"]
    assert [r["id"] for r in rules] == ["override/on", "rule-1", "late", "rollout"]
    assert rules[1]["serve"] == "on" and rules[2]["serve"] == "off"  # a value names the variant holding it
    assert rules[3]["conditions"] == [{"op": "in", "attribute": "region", "values": ["eu"]}]


def test_rules_alone_need_no_rollout_percentage(tmp_path: Path) -> None:
    snap = compile_text(tmp_path, '  f = { rules = [ { when = { attribute = "beta", op = "exists" } } ] }')
    assert [r["id"] for r in snap["flags"]["f"]["rules"]] == ["rule-1"]


@pytest.mark.parametrize(
    ("clause", "code", "text", "hint"),
    [
        ('{ attribute = "e", op = "matches", value = "(a" }', "TSK342", '"(a"', "re.search"),
        ('{ attribute = "v", op = "semver_lt", value = "1.2.3.4" }', "TSK342", '"1.2.3.4"', "MAJOR"),
        ('{ attribute = "d", op = "before", value = "2024-13-01" }', "TSK321", '"2024-13-01"', None),
        ('{ attribute = "d", op = "<", value = "2024-06-01" }', "TSK342", '"2024-06-01"', '"before"'),
        ('{ attribute = "v", op = ">", value = "2.0" }', "TSK342", '"2.0"', "semver_gt"),
        ('{ attribute = "n", op = ">=", value = true }', "TSK342", "true", None),
        ('{ attribute = "c", op = "in", values = [] }', "TSK342", "[]", None),
        ('{ attribute = "c", op = "in", values = [["x"]] }', "TSK342", '["x"]', None),
        ('{ attribute = "c", op = "==", values = ["x"] }', "TSK342", "values", "not_in"),
        ('{ attribute = "c", op = "exists", value = true }', "TSK342", "value", None),
        ('{ attribute = "c", op = "starts_with", value = 3 }', "TSK342", "3", None),
        ('{ attribute = "c", op = "contains_any" }', "TSK342", None, None),
        ("{ all = [] }", "TSK342", "[]", None),
    ],
)
def test_operand_errors_are_at_their_position(
    tmp_path: Path, clause: str, code: str, text: str | None, hint: str | None
) -> None:
    found = errors_of(tmp_path, f"  f = {{\n   rules = [\n    {{ when = {clause} }}\n   ]\n  }}")
    assert len(found) == 1, [d.render() for d in found]
    d = found[0]
    assert d.code == code and d.span is not None and d.span.line == 5
    if text is not None:
        assert d.span.text == text
    if hint is not None:
        assert hint in (d.hint or "")


def test_an_unknown_operator_says_did_you_mean(tmp_path: Path) -> None:
    found = errors_of(
        tmp_path, '  f = { rules = [ { when = { attribute = "v", op = "semvr_ge", value = "1.0.0" } } ] }'
    )
    assert [where(d) for d in found] == [("TSK304", 3, '"semvr_ge"')]
    assert found[0].hint == "did you mean 'semver_ge'?"


# Operator names of LaunchDarkly, Unleash, Flipt, GrowthBook and plain English, with ours in the hint.
@pytest.mark.parametrize(
    ("written", "ours"),
    [
        ("semVerGreaterThan", "semver_gt"),
        ("SEMVER_EQ", "semver_eq"),
        ("NUM_GTE", ">="),
        ("STR_ENDS_WITH", "ends_with"),
        ("DATE_AFTER", "after"),
        ("isoneof", "in"),
        ("isnotoneof", "not_in"),
        ("eq", "=="),
        ("neq", "!="),
        ("lte", "<="),
        ("prefix", "starts_with"),
        ("$regex", "matches"),
        ("$nin", "not_in"),
        ("$vgte", "semver_ge"),
        ("notpresent", "not_exists"),
        ("startsWith", "starts_with"),
    ],
)
def test_another_systems_operator_name_hints_ours(tmp_path: Path, written: str, ours: str) -> None:
    clause = f'{{ attribute = "v", op = "{written}", value = "1.0.0" }}'
    found = errors_of(tmp_path, f"  f = {{ rules = [ {{ when = {clause} }} ] }}")
    assert [where(d) for d in found] == [("TSK304", 3, f'"{written}"')]
    assert found[0].hint == f"did you mean '{ours}'?"


def test_an_unknown_operator_of_no_system_gets_no_made_up_hint(tmp_path: Path) -> None:
    found = errors_of(tmp_path, '  f = { rules = [ { when = { attribute = "v", op = "frobnicate", value = "x" } } ] }')
    assert [d.code for d in found] == ["TSK304"] and found[0].hint is None


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("defaultVariant", "`fallback`"),
        ("split", "weight"),
        ("prerequisites", "`requires"),
        ("percentage", "`rollout_percentage`"),
        ("stickiness", "`bucket_by`"),
        ("tags", "`metadata"),
    ],
)
def test_another_systems_flag_key_says_where_it_goes(tmp_path: Path, key: str, says: str) -> None:
    found = errors_of(tmp_path, f'  f = {{ enabled = true, {key} = "x" }}')
    assert [(d.code, d.span.text if d.span else "") for d in found] == [("TSK301", key)]
    assert says in (found[0].hint or "")


def test_a_peer_key_name_outside_a_flag_keeps_the_allowed_keys_hint(tmp_path: Path) -> None:
    # `default` means `fallback` only in a flag; in a rule the allowed keys are the useful hint
    found = errors_of(tmp_path, '  f = { rules = [ { serve = "on", default = "x" } ] }')
    assert [d.code for d in found] == ["TSK301"]
    assert (found[0].hint or "").startswith("allowed keys:")


def test_a_misspelt_clause_key_is_reported_at_the_key(tmp_path: Path) -> None:
    found = errors_of(tmp_path, '  f = { rules = [ { when = { atribute = "v", op = "exists" } } ] }')
    assert [d.code for d in found] == ["TSK301"]
    assert found[0].hint == "did you mean `attribute`?"


def test_serve_and_split_name_declared_variants(tmp_path: Path) -> None:
    base = '  f = { variants = { alpha = 1, beta = 2, gamma = 2 }, fallback = "alpha", rules = [ { RULE } ] }'
    found = errors_of(tmp_path, base.replace("RULE", "serve = 2"))
    assert [d.code for d in found] == ["TSK319"] and "several variants" in found[0].message
    found = errors_of(tmp_path, base.replace("RULE", 'serve = "betta"'))
    assert found[0].hint == "did you mean `beta`?"
    found = errors_of(tmp_path, base.replace("RULE", "split = { alpha = 50, delta = 50 }"))
    assert [where(d) for d in found] == [("TSK319", 3, "delta")]
    found = errors_of(tmp_path, base.replace("RULE", 'serve = "alpha", split = { alpha = 50, beta = 50 }'))
    assert [d.code for d in found] == ["TSK319"] and "both" in found[0].message
    found = errors_of(tmp_path, base.replace("RULE", "rollout = 5"))
    assert [d.code for d in found] == ["TSK305"]  # no `on` variant to serve by default


def test_a_rollout_without_an_on_variant_says_how_to_write_it(tmp_path: Path) -> None:
    found = errors_of(tmp_path, '  f = { variants = { a = 1, b = 2 }, fallback = "a", rollout_percentage = 5 }')
    assert [d.code for d in found] == ["TSK319"] and "rules = [" in (found[0].hint or "")


# --- prerequisites ---------------------------------------------------------------------------


def test_requires_by_value_name_and_list(tmp_path: Path) -> None:
    snap = compile_text(
        tmp_path,
        "  base = { rollout_percentage = 10 }\n"
        '  layout = { variants = { a = { r = 1 }, b = { r = 2 }, c = { r = 2 } }, fallback = "a" }\n'
        '  f = { rollout_percentage = 5, requires = { base = true, layout = [{ r = 2 }, "a"] } }',
    )
    assert snap["flags"]["f"]["prerequisites"] == [
        {"flag": "base", "variants": ["on"]},
        {"flag": "layout", "variants": ["a", "b", "c"]},
    ]


def test_requires_may_name_an_experiment(tmp_path: Path) -> None:
    extra = "ab_testing_config = { experiments = { exp = { variants = { control = 50, b = 50 } } } }\n"
    snap = compile_text(tmp_path, '  f = { rollout_percentage = 5, requires = { exp = "b" } }', extra)
    assert snap["flags"]["f"]["prerequisites"] == [{"flag": "exp", "variants": ["b"]}]


def test_true_is_not_one_in_requires(tmp_path: Path) -> None:
    found = errors_of(
        tmp_path,
        '  n = { variants = { one = 1, two = 2 }, fallback = "one" }\n'
        "  f = { rollout_percentage = 5, requires = { n = true } }",
    )
    assert [where(d) for d in found] == [("TSK343", 4, "true")]
    assert "one = 1" in (found[0].hint or "")


def test_a_cycle_is_shown_with_every_link(tmp_path: Path) -> None:
    found = errors_of(
        tmp_path,
        "  a = { rollout_percentage = 5, requires = { b = true } }\n"
        "  b = { rollout_percentage = 5, requires = { a = true } }",
    )
    assert [d.message for d in found] == ["prerequisites form a cycle: a -> b -> a"]
    assert found[0].span is not None and found[0].span.line == 4
    assert [(r.span.line, r.message) for r in found[0].related] == [(3, "`a` requires `b`")]


def test_a_chain_longer_than_the_limit_is_an_error(tmp_path: Path) -> None:
    flags = "\n".join(f"  f{i} = {{ rollout_percentage = 5, requires = {{ f{i + 1} = true }} }}" for i in range(129))
    found = errors_of(tmp_path, flags + "\n  f129 = { rollout_percentage = 5 }")
    assert [d.code for d in found] == ["TSK344"]
    assert found[0].message.startswith("flag `f0` starts a chain of 129 prerequisites")
    # 128 links are fine
    flags = "\n".join(f"  f{i} = {{ rollout_percentage = 5, requires = {{ f{i + 1} = true }} }}" for i in range(128))
    snap = compile_text(tmp_path, flags + "\n  f128 = { rollout_percentage = 5 }")
    assert len(snap["flags"]) == 129


def test_a_hand_edited_snapshot_with_a_cycle_is_refused(tmp_path: Path) -> None:
    snap = compile_text(
        tmp_path, "  a = { rollout_percentage = 5, requires = { b = true } }\n  b = { rollout_percentage = 5 }"
    )
    del snap["_diagnostics"]
    snap["flags"]["b"]["prerequisites"] = [{"flag": "a", "variants": ["on"]}]
    with pytest.raises(TuskError) as info:
        load_snapshot(snap)
    assert [d.message for d in info.value.diagnostics] == [
        "$.flags.a.prerequisites: prerequisites form a cycle: a -> b -> a"
    ]


def test_a_value_from_env_in_a_rule_is_never_copied(tmp_path: Path) -> None:
    """Rule operands are copied into the snapshot verbatim: a value from @env there is TSK272, inside a
    `not` (the field `not_`, written `not`) as well."""
    src = tmp_path / "p.tsk"
    src.write_text(
        "feature_flags = { flags = { f = { rules = [\n"
        '  { when = { not = { attribute = "email", op = "==", value = @env(ADMIN) } } },\n'
        '  { when = { attribute = "plan", op = "in", values = [@env(PLAN)] } }\n'
        "] } } }\n",
        encoding="utf-8",
    )
    with pytest.raises(TuskError) as info:
        compile_files([str(src)], env={"ADMIN": "root@example.com", "PLAN": "pro"})
    found = [(d.code, d.span.line if d.span else 0) for d in info.value.diagnostics if d.is_error]
    assert found == [("TSK272", 2), ("TSK272", 3)]


def test_the_seed_has_one_type_per_flag() -> None:
    """The seed's new_pricing_page (a row whose fallback is a string) compiles to a string flag."""
    seed = json.loads((ROOT / "fixtures" / "seed" / "snapshot.json").read_text(encoding="utf-8"))
    page = seed["flags"]["new_pricing_page"]
    assert (page["type"], page["variants"]) == ("string", {"on": "on", "fallback": "legacy_pricing"})
    load_snapshot(seed)  # every variant has its flag's type
