"""`tusk compile --target flagd`: the export, checked against flagd's own evaluator (openfeature-flagd-core).

The oracle test evaluates every flag and experiment of the golden seed snapshot over 10,000 contexts
that vary every attribute the seed's rules read (with missing, null and mistyped values, segment
lists, time zones, evaluation times around schedule steps and DST changes, and OpenFeature's
`targetingKey` alone or beside `user_id`) and requires flagd to serve the value and variant our
evaluator serves as `tusk serve` calls it (the targeting key standing in for a missing unit attribute).
"""

from __future__ import annotations

import json
import logging
import random
import sys
import zoneinfo
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tusklang.cli import main
from tusklang.evaluate import Client
from tusklang.export import dumps_flagd, to_flagd

from .flagd_fuzz import ofrep_context, openfeature_context, reason_class, stand_in_class

flagd_core = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import OpenFeatureError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "fixtures" / "seed"
CONFORMANCE = ROOT / "fixtures" / "conformance"
N = 10_000
_TARGETING = sys.modules["openfeature.contrib.tools.flagd.core.targeting.targeting"]


class _Clock:
    """Stands in for the `time` module flagd-core reads `$flagd.timestamp` from."""

    now = 0

    def time(self) -> float:
        return float(self.now)


@pytest.fixture
def flagd_clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    clock = _Clock()
    monkeypatch.setattr(_TARGETING, "time", clock)
    # flagd-core logs a stack trace for every non-version given to sem_ver; that is expected here
    logging.getLogger("openfeature.contrib").setLevel(logging.CRITICAL)
    return clock


def _resolve(core: Any, key: str, ours: Any, ctx: dict[str, Any]) -> tuple[Any, Any, str]:
    """flagd's answer through the typed getter matching our value's type (as an app would call it)."""
    ec = openfeature_context(ctx)
    if isinstance(ours, bool):
        res = core.resolve_boolean_value(key, not ours, ec)
    elif isinstance(ours, str):
        res = core.resolve_string_value(key, "", ec)
    elif isinstance(ours, int):
        res = core.resolve_integer_value(key, 0, ec)
    elif isinstance(ours, float):
        res = core.resolve_float_value(key, 0.0, ec)
    else:
        res = core.resolve_object_value(key, {}, ec)
    return res.value, res.variant, str(res.reason)


_REASONS = {
    "DEFAULT": "DEFAULT",
    "STATIC": "STATIC",
    "DISABLED": "STATIC",
    "TARGETING_MATCH": "TARGETING_MATCH",
    "SPLIT": "TARGETING_MATCH",
}


def _compare(core: Any, client: Client, key: str, ctx: dict[str, Any], now: int, ours: Any = None) -> str | None:
    ours = ours or client.evaluate(key, ofrep_context(client.snapshot, key, ctx), now=now)
    try:
        value, variant, reason = _resolve(core, key, ours.value, ctx)
    except OpenFeatureError as exc:
        return f"{key} {ctx} @{now}: flagd raised {exc!r}, ours {ours.variant}"
    if (value, type(value), variant) != (ours.value, type(ours.value), ours.variant):
        return f"{key} {ctx} @{now}: flagd {variant}={value!r}, ours {ours.variant}={ours.value!r} ({ours.detail})"
    if reason.rsplit(".", 1)[-1] != _REASONS[ours.reason]:
        return f"{key} {ctx} @{now}: flagd reason {reason}, ours {ours.reason}"
    return None


# --- contexts --------------------------------------------------------------------------------------


def _walk(conds: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for c in conds:
        yield c
        yield from _walk(c.get("conditions", []))
        if "condition" in c:
            yield from _walk([c["condition"]])


def _attribute_pools(snapshot: dict[str, Any]) -> dict[str, tuple[list[Any], list[Any]]]:
    """For every attribute a rule reads: (values that satisfy its conditions, near misses)."""
    conds = [c for s in snapshot["segments"].values() for c in _walk(s["conditions"])]
    for table in ("flags", "experiments"):
        conds += [c for f in snapshot[table].values() for r in f["rules"] for c in _walk(r["conditions"])]
    pools: dict[str, tuple[list[Any], list[Any]]] = {}
    for c in conds:
        attr, op = c.get("attribute"), c["op"]
        if attr is None:
            continue
        good, near = pools.setdefault(attr, ([], []))
        values = c.get("values", [c.get("value")])
        if op in ("contains_all", "contains_any"):
            good += [values, [*values, "other"]]
            near += [values[:-1], ["other"], values[0] if values else "x", [values]]
        elif op == "in":
            good += values
            near += [str(v).upper() + "-x" for v in values] + [values]
        elif isinstance(values[0], bool):
            good.append(values[0])
            near += [not values[0], int(values[0]), str(values[0]).lower()]
        elif isinstance(values[0], int | float):
            v = values[0]
            ok = {">=": [v, v + 1, float(v) + 0.5], ">": [v + 1], "<=": [v, v - 1, float(v)], "<": [v - 1]}
            bad = {">=": [v - 1, v - 0.5], ">": [v], "<=": [v + 1, v + 0.5], "<": [v]}
            good += ok.get(op, [v])
            near += [*bad.get(op, [v + 1]), str(v), [v]]
        else:
            good.append(values[0])
            near += [values[0].upper(), values[0] + " ", [values[0]]]
    return {a: (_unique(g), _unique(n)) for a, (g, n) in sorted(pools.items())}


def _unique(values: list[Any]) -> list[Any]:
    # JSON text keeps 1, 1.0 and true apart while de-duplicating
    return [json.loads(x) for x in sorted({json.dumps(v) for v in values})]


WRONG: list[Any] = [None, "", True, False, 0, 1.5, [], {"a": 1}]
ZONES: list[Any] = [
    "America/New_York",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "UTC",
    "Etc/GMT+5",
    "US/Eastern",
    "America/Sao_Paulo",
    "Not/A_Zone",
    "",
    "utc",
    5,
    None,
    ["Europe/Berlin"],
]
UNITS: list[Any] = [None, True, 7, 123456789012345678901234567890, 5.5, ["u1"], {"id": 1}, "ümlaut-😀", ""]
DST = [
    "2024-03-10T07:00:00Z",
    "2024-03-31T01:00:00Z",
    "2024-04-07T03:00:00Z",
    "2024-10-27T01:00:00Z",
    "2024-11-03T06:00:00Z",
    "2024-04-06T13:00:00Z",
    "2024-09-28T14:00:00Z",
]


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def _now(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.4:  # schedule steps and the experiment's window
        return rng.randrange(_epoch("2024-01-15T00:00:00Z"), _epoch("2024-03-05T00:00:00Z"))
    if roll < 0.7:  # around a daylight-saving change somewhere
        return _epoch(rng.choice(DST)) + rng.randrange(-36 * 3600, 36 * 3600)
    return rng.randrange(_epoch("2023-01-01T00:00:00Z"), _epoch("2026-12-31T00:00:00Z"))


def _contexts(snapshot: dict[str, Any]) -> list[tuple[dict[str, Any], int]]:
    rng = random.Random(20240202)
    pools = _attribute_pools(snapshot)
    all_zones = sorted(zoneinfo.available_timezones())
    out = []
    for i in range(N):
        ctx: dict[str, Any] = {}
        for attr, (good, near) in pools.items():
            roll = rng.random()
            # mostly satisfying values, so whole rules (up to eight conditions at once) match often
            if roll < 0.82:
                ctx[attr] = rng.choice(good)
            elif roll < 0.9:
                ctx[attr] = rng.choice(near)
            elif roll < 0.97:
                ctx[attr] = rng.choice(WRONG)
            # else: missing
        ctx["user_id"] = f"user-{i}" if rng.random() < 0.9 else rng.choice(UNITS)
        roll = rng.random()
        if roll < 0.35:  # OpenFeature's targeting key alone: it stands in for the missing or null user_id
            ctx["targetingKey"] = (
                f"user-{i}" if rng.random() < 0.9 else rng.choice(["", "ümlaut-😀", "[object Object]"])
            )
            if rng.random() < 0.8:
                del ctx["user_id"]
            else:
                ctx["user_id"] = None
        elif roll < 0.55:  # beside user_id, which wins (when it is null, the key stands in)
            ctx["targetingKey"] = f"key-{i}"
        if rng.random() < 0.3:
            ctx["segments"] = rng.choice([["beta_program"], ["power_users", "vip"], "power_users", []])
        roll = rng.random()
        if roll < 0.5:
            ctx["timezone"] = rng.choice(ZONES)
        elif roll < 0.85:
            ctx["timezone"] = rng.choice(all_zones)
        out.append((ctx, _now(rng)))
    return out


# --- the oracle -------------------------------------------------------------------------------------


def test_flagd_serves_what_we_serve_for_every_seed_flag_over_10000_contexts(flagd_clock: _Clock) -> None:
    snapshot = json.loads((SEED / "snapshot.json").read_text(encoding="utf-8"))
    document, diagnostics = to_flagd(snapshot)
    assert not [d for d in diagnostics if d.is_error]
    keys = sorted(snapshot["flags"]) + sorted(snapshot["experiments"])
    assert sorted(document["flags"]) == sorted(keys)
    core = flagd_core.FlagdCore()
    core.set_flags(dumps_flagd(document))
    client = Client(snapshot)
    mismatches: list[str] = []
    seen: dict[str, Counter[str]] = {k: Counter() for k in keys}
    for ctx, now in _contexts(snapshot):
        flagd_clock.now = now
        for key in keys:
            ours = client.evaluate(key, ofrep_context(client.snapshot, key, ctx), now=now)
            problem = _compare(core, client, key, ctx, now, ours)
            if problem:
                mismatches.append(problem)
            seen[key][ours.variant] += 1
    assert not mismatches, f"{len(mismatches)} mismatches, e.g.\n" + "\n".join(mismatches[:10])
    # Not vacuous: every variant a rule can serve, and the default, was served (and so compared) often.
    for key in keys:
        flag = snapshot["flags"].get(key) or snapshot["experiments"][key]
        expected = {flag["off_variant"]} if not flag["enabled"] else {flag["default_variant"]}
        for rule in flag["rules"] if flag["enabled"] else []:
            expected |= {rule["serve"]} if rule.get("serve") else {v for v, w in rule["split"]["weights"] if w}
        assert {v for v, n in seen[key].items() if n >= 10} == expected, (key, seen[key])


# --- every operator: the conformance suite's snapshots -------------------------------------------


def _conformance_topics() -> list[Path]:
    return sorted(p for p in CONFORMANCE.glob("*.json") if p.name != "bucketing.json")


@pytest.mark.parametrize("path", _conformance_topics(), ids=lambda p: p.stem)
def test_flagd_serves_what_we_serve_on_the_conformance_suite(path: Path, flagd_clock: _Clock) -> None:
    """Every operator and edge case of the suite (mistyped attributes, not_in on a missing value, DST
    windows, semver...), each case evaluated by both; a flag flagd cannot express must be reported."""
    topic = json.loads(path.read_text(encoding="utf-8"))
    compared = 0
    for ref, snapshot in topic["snapshots"].items():
        document, diagnostics = to_flagd(snapshot)
        left_out = {k for k in [*snapshot["flags"], *snapshot.get("experiments", {})] if k not in document["flags"]}
        errors = [d for d in diagnostics if d.is_error]
        assert len(errors) == len(left_out)
        assert all(any(f"`{k}`" in d.message for d in errors) for k in left_out)
        core = flagd_core.FlagdCore()
        core.set_flags(dumps_flagd(document))
        client = Client(snapshot)
        for case in topic["cases"]:
            if case["snapshot_ref"] != ref or case["flag"] in left_out or not isinstance(case["context"], dict):
                continue
            now = _epoch(case["now"])
            if client.evaluate(case["flag"], case["context"], now=now).error_code:
                continue  # unknown flag: both sides leave it to the caller's default
            flagd_clock.now = now
            problem = _compare(core, client, case["flag"], case["context"], now)
            assert problem is None, f"{case['name']}: {problem}"
            compared += 1
    if path.stem == "dates":
        assert compared == 0  # before/after read ISO-8601 attributes: every flag reported, none exported
    else:
        assert compared >= (len(topic["cases"]) // 2 if path.stem != "errors" else 1)


# --- shared segments, evaluators and what flagd-core's loader can splice ----------------------------


def _flag(key: str, conditions: list[dict[str, Any]], **rule: Any) -> dict[str, Any]:
    return {
        "key": key,
        "type": "boolean",
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "default_variant": "off",
        "time_zone": "Europe/Berlin",
        "rules": [{"id": "r", "conditions": conditions, "serve": "on", **rule}],
    }


SEGMENTS_SNAPSHOT: dict[str, Any] = {
    "format": "tusklang.snapshot/1",
    "external_segments": ["vip"],
    "segments": {
        "adults": {"conditions": [{"attribute": "age", "op": ">=", "value": 18}]},
        "swiss": {"conditions": [{"attribute": "city", "op": "in", "values": ["Zürich", 'Genf "GE"']}]},
        "swiss_adults": {
            "conditions": [{"op": "segment", "segments": ["adults"]}, {"op": "segment", "segments": ["swiss"]}]
        },
        "paying_adults": {
            "conditions": [
                {"op": "segment", "segments": ["adults"]},
                {"attribute": "plan", "op": "in", "values": ["pro"]},
            ]
        },
        "office_hours": {
            "conditions": [
                {
                    "op": "time_window",
                    "start_minute": 540,
                    "end_minute": 1020,
                    "days": ["mon", "tue", "wed", "thu", "fri"],
                }
            ]
        },
    },
    "flags": {
        "a": _flag("a", [{"op": "segment", "segments": ["adults", "vip"]}]),
        "b": _flag(
            "b", [{"op": "segment", "segments": ["adults"]}, {"attribute": "plan", "op": "!=", "value": "free"}]
        ),
        "c": _flag("c", [{"op": "segment", "segments": ["swiss_adults"]}]),
        "d": _flag("d", [{"op": "segment", "segments": ["office_hours"]}]),
        "f": _flag("f", [{"op": "segment", "segments": ["paying_adults"]}]),
        "e": _flag("e", [{"op": "time_window", "start_minute": 1320, "end_minute": 120, "days": ["sat", "sun"]}]),
    },
}


def test_shared_segments_are_evaluators_and_flagd_agrees(flagd_clock: _Clock) -> None:
    document, diagnostics = to_flagd(SEGMENTS_SNAPSHOT)
    assert not [d for d in diagnostics if d.is_error]
    text = dumps_flagd(document)
    evaluators = document["$evaluators"]
    # one definition shared by a and b, referenced by name
    assert "adults" in evaluators
    assert text.count('"$ref": "adults"') == 2  # flags a and b; paying_adults inlines it
    # flagd-core splices evaluators with re.sub, which would mangle the JSON escapes of "Zürich" and the
    # quotes: such segments are inlined; a segment's own segments are always inlined (one-pass splicing)
    assert "swiss" not in evaluators and "Zürich" in json.dumps(document["flags"]["c"], ensure_ascii=False)
    assert "swiss_adults" not in evaluators
    assert "paying_adults" in evaluators and "$ref" not in json.dumps(evaluators)
    core = flagd_core.FlagdCore()
    core.set_flags(text)
    client = Client(SEGMENTS_SNAPSHOT)
    rng = random.Random(7)
    served: Counter[tuple[str, Any]] = Counter()
    for _ in range(2000):
        ctx = {
            "age": rng.choice([17, 18, 18.0, 40, "40", True, None]),
            "city": rng.choice(["Zürich", "Zurich", 'Genf "GE"', None, ["Zürich"]]),
            "plan": rng.choice(["free", "pro", 1, None]),
            "segments": rng.choice([["vip"], "vip", [], ["other"]]),
            "timezone": rng.choice(["Asia/Tokyo", "America/New_York", "Europe/Berlin", "nowhere"]),
        }
        ctx = {k: v for k, v in ctx.items() if v is not None or rng.random() < 0.5}
        now = _epoch("2024-03-29T00:00:00Z") + rng.randrange(0, 5 * 86400)  # Berlin's DST change inside
        flagd_clock.now = now
        for key in SEGMENTS_SNAPSHOT["flags"]:
            problem = _compare(core, client, key, ctx, now)
            assert problem is None, problem
            served[(key, client.evaluate(key, ctx, now=now).value)] += 1
    assert all(served[(k, v)] > 20 for k in SEGMENTS_SNAPSHOT["flags"] for v in (True, False)), served


# --- OpenFeature's targeting key -----------------------------------------------------------------------


def _bucketed(key: str, bucket_by: str, rule: dict[str, Any], **extra: Any) -> dict[str, Any]:
    flag = _flag(key, [])
    flag["rules"] = [{"id": "r", "conditions": [], **rule}]
    return {**flag, "bucket_by": bucket_by, **extra}


TARGETING_KEY_SNAPSHOT: dict[str, Any] = {
    "format": "tusklang.snapshot/1",
    "segments": {
        # read through the targeting key by flags bucketed by `account` (inlined there), plainly by others
        "big_accounts": {"conditions": [{"attribute": "account", "op": "in", "values": ["acme", "initech"]}]},
    },
    "flags": {
        "gate": _bucketed("gate", "user_id", {"rollout": {"salt": "gate", "percentage": 50_000}, "serve": "on"}),
        # bucketed by account, its prerequisite by user_id: the key stands in for both, in both flags' logic
        "by_account": {
            **_bucketed("by_account", "account", {"split": {"salt": "acct", "weights": [["on", 1], ["off", 1]]}}),
            "rules": [
                {
                    "id": "vip",
                    "conditions": [{"attribute": "user_id", "op": "starts_with", "value": "vip-"}],
                    "serve": "on",
                },
                {"id": "big", "conditions": [{"op": "segment", "segments": ["big_accounts"]}], "serve": "off"},
                {"id": "r", "conditions": [], "split": {"salt": "acct", "weights": [["on", 1], ["off", 1]]}},
            ],
            "prerequisites": [{"flag": "gate", "variants": ["on"]}],
        },
        "plain_segment": _flag("plain_segment", [{"op": "segment", "segments": ["big_accounts"]}]),
        # bucketed by `timezone`, which its time window reads too: the zone is the key when missing
        "by_zone": _bucketed(
            "by_zone",
            "timezone",
            {
                "conditions": [{"op": "time_window", "start_minute": 480, "end_minute": 1200}],
                "rollout": {"salt": "zone", "percentage": 70_000},
                "serve": "on",
            },
        ),
    },
}


def test_the_targeting_key_stands_in_for_missing_unit_attributes_in_flagd(flagd_clock: _Clock) -> None:
    """As over OFREP: `targetingKey` is read wherever the flag (or an inlined prerequisite) reads one of
    its unit attributes and the context's is missing or null; a present attribute wins; without a
    targeting key nothing stands in. flagd-core buckets the key exactly as we do (fractional v3)."""
    document, diagnostics = to_flagd(TARGETING_KEY_SNAPSHOT)
    assert not [d for d in diagnostics if d.is_error]
    evaluators = document["$evaluators"]
    assert "tusklang_user_id_or_targeting_key" in evaluators and "tusklang_account_or_targeting_key" in evaluators
    # shared by the flag that reads `account` plainly; inlined, with the key standing in, in by_account
    assert evaluators["big_accounts"] == {"in": [{"var": "account"}, ["acme", "initech"]]}
    assert '"$ref": "big_accounts"' not in json.dumps(document["flags"]["by_account"])
    assert "$ref" not in json.dumps(evaluators)  # flagd splices evaluators in one pass
    core = flagd_core.FlagdCore()
    core.set_flags(dumps_flagd(document))
    client = Client(TARGETING_KEY_SNAPSHOT)
    rng = random.Random(11)
    served: Counter[tuple[str, str, Any]] = Counter()
    for i in range(3000):
        key = rng.choice([f"u{i}", f"vip-{i}", "acme", "Europe/Berlin", "Asia/Tokyo", ""])
        ctx: dict[str, Any] = {"targetingKey": key} if rng.random() < 0.8 else {}
        for attr, value in (("user_id", f"user-{i}"), ("account", f"acct-{i % 50}"), ("timezone", "America/Lima")):
            roll = rng.random()
            if roll < 0.55:
                ctx[attr] = value
            elif roll < 0.65:
                ctx[attr] = None
        now = _epoch("2024-03-30T00:00:00Z") + rng.randrange(0, 2 * 86400)
        flagd_clock.now = now
        for flag, definition in TARGETING_KEY_SNAPSHOT["flags"].items():
            ours = client.evaluate(flag, ofrep_context(client.snapshot, flag, ctx), now=now)
            value, variant, reason = _resolve(core, flag, ours.value, ctx)
            want = reason_class(ours, bool(definition.get("prerequisites")))
            assert (value, variant, reason.rsplit(".", 1)[-1]) == (ours.value, ours.variant, want), (flag, ctx, now)
            served[(flag, stand_in_class(client.snapshot, flag, ctx), ours.value)] += 1
    # not vacuous: with the key standing in, beside the attributes and absent, each flag served both values
    ways = ("stood in", "beside", "none")
    assert all(
        served[(f, how, v)] >= 10 for f in ("gate", "by_account", "by_zone") for how in ways for v in (True, False)
    ), served


# --- what flagd cannot express -----------------------------------------------------------------------


def test_a_flag_flagd_cannot_express_is_an_error_naming_it_and_is_left_out() -> None:
    snapshot = {
        "format": "tusklang.snapshot/1",
        "flags": {
            "signup": _flag("signup", [{"attribute": "signed_up", "op": "before", "value": "2024-01-01T00:00:00Z"}]),
            "mail": _flag("mail", [{"attribute": "email", "op": "matches", "value": r"@(corp|example)\.com$"}]),
            "dotted": {
                **_flag("dotted", []),
                "bucket_by": "account.id",
                "rules": [{"id": "r", "rollout": {"salt": "s", "percentage": 10}, "serve": "on"}],
            },
            "prefix": _flag("prefix", [{"attribute": "email", "op": "matches", "value": "^admin"}]),
        },
    }
    document, diagnostics = to_flagd(snapshot)
    errors = {d.message.split("`")[1]: d for d in diagnostics if d.is_error}
    assert sorted(errors) == ["dotted", "mail", "signup"]
    assert all(d.code == "flagd-unsupported" for d in errors.values())
    assert "ISO-8601" in errors["signup"].message and "regular expression" in errors["mail"].message
    # a literal prefix regex is exactly starts_with, so that flag is exported
    assert sorted(document["flags"]) == ["prefix"]
    assert document["flags"]["prefix"]["targeting"]["if"][0] == {"starts_with": [{"var": "email"}, "admin"]}


def test_a_disabled_flag_keeps_serving_its_off_variant_in_flagd(flagd_clock: _Clock) -> None:
    """flagd's DISABLED state would serve the caller's code default; we serve off_variant."""
    flag = {**_flag("x", []), "enabled": False, "variants": {"on": "new", "off": "legacy"}, "type": "string"}
    document, _ = to_flagd({"format": "tusklang.snapshot/1", "flags": {"x": flag}})
    core = flagd_core.FlagdCore()
    core.set_flags(document)
    res = core.resolve_string_value("x", "code-default", EvaluationContext())
    assert (res.value, res.variant) == ("legacy", "off")


def test_the_seed_exports_without_variant_type_warnings_or_errors() -> None:
    snapshot = json.loads((SEED / "snapshot.json").read_text(encoding="utf-8"))
    _, diagnostics = to_flagd(snapshot)
    mixed = sorted(d.message.split("`")[1] for d in diagnostics if d.code == "flagd-variant-types")
    # issue 16: the seed's flags have one value type each now (a snapshot mixing types is refused)
    assert mixed == []
    assert all(not d.is_error for d in diagnostics)


def test_gate_and_split_are_two_fractionals_over_our_salts() -> None:
    snapshot = json.loads((SEED / "snapshot.json").read_text(encoding="utf-8"))
    document, _ = to_flagd(snapshot)
    text = json.dumps(document["flags"]["checkout_optimization"]["targeting"])
    assert text.count('"fractional"') == 2
    # the unit: user_id, or OpenFeature's targetingKey when user_id is missing or null (as over OFREP)
    unit = {"$ref": "tusklang_user_id_or_targeting_key"}
    assert json.dumps({"cat": ["checkout_optimization/traffic:", unit]}) in text
    assert json.dumps({"cat": ["checkout_optimization/split:", unit]}) in text
    assert document["$evaluators"][unit["$ref"]] == {
        "if": [{"!==": [{"var": "user_id"}, None]}, {"var": "user_id"}, {"var": "targetingKey"}]
    }
    # the unit id's type test reads it a dozen times: shared too, holding the read inlined (no `$ref`)
    assert '{"$ref": "tusklang_user_id_or_targeting_key_is_unit"}' in text
    assert "$ref" not in json.dumps(document["$evaluators"]["tusklang_user_id_or_targeting_key_is_unit"])
    meta = document["flags"]["checkout_optimization"]["metadata"]
    assert meta["tusklang.kind"] == "experiment" and meta["tusklang.metrics.primary"].startswith("[")


# --- the CLI -----------------------------------------------------------------------------------------


def _compile(tmp: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "compile",
            str(SEED / "project.tsk"),
            "--db",
            f"sqlite:///{ROOT / 'fixtures' / 'db' / 'seed.db'}",
            "--env-file",
            str(SEED / "seed.env"),
            "-o",
            str(out),
            *extra,
        ]
    )


def test_cli_target_flagd_writes_the_export_of_the_golden_snapshot_byte_identically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1706832000")  # the golden snapshot's compile time
    out = tmp_path / "flagd.json"
    assert _compile(tmp_path, out, "--target", "flagd") == 0
    first = out.read_bytes()
    golden = json.loads((SEED / "snapshot.json").read_text(encoding="utf-8"))
    assert first.decode("utf-8") == dumps_flagd(to_flagd(golden)[0])
    assert json.loads(first)["$schema"] == "https://flagd.dev/schema/v0/flags.json"
    assert _compile(tmp_path, out, "--target", "flagd") == 0
    assert out.read_bytes() == first


def test_cli_target_flagd_refuses_a_flag_it_cannot_express_and_keeps_the_old_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "p.tsk"
    project.write_text(
        "feature_flags = {\n"
        "    flags {\n"
        '        by_account = { enabled = true, rollout_percentage = 25, bucket_by = "account.id" }\n'
        "        plain = { enabled = true, rollout_percentage = 50 }\n"
        "    }\n"
        "}\n",
        encoding="utf-8",
    )
    out = tmp_path / "flagd.json"
    out.write_text("previous\n", encoding="utf-8")
    code = main(["compile", str(project), "-o", str(out), "--target", "flagd", "--format", "json"])
    assert code == 1
    assert out.read_text(encoding="utf-8") == "previous\n"
    report = json.loads(capsys.readouterr().out)
    assert [d["code"] for d in report["diagnostics"] if d["severity"] == "error"] == ["flagd-unsupported"]
    assert "by_account" in report["diagnostics"][0]["message"]
    # the default target is still the snapshot, and it compiles
    assert main(["compile", str(project), "-o", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["format"] == "tusklang.snapshot/1"


@pytest.mark.parametrize("op", ["semver_ge", "semver_lt", "semver_eq", "semver_ne"])
def test_semver_edge_inputs_agree(op: str, flagd_clock: _Clock) -> None:
    """flagd's sem_ver strips `V` and reads numbers as versions; ours does neither, and our pattern
    accepts one trailing newline: the export's guards make both answer alike."""
    snapshot = {
        "format": "tusklang.snapshot/1",
        "flags": {"v": _flag("v", [{"attribute": "ver", "op": op, "value": "1.2"}])},
    }
    document, _ = to_flagd(snapshot)
    core = flagd_core.FlagdCore()
    core.set_flags(document)
    client = Client(snapshot)
    versions = [
        "1.2.0",
        "v1.2",
        "V1.2",
        "1.2.0\n",
        "1.2.0\n\n",
        "1.2.0-rc.1",
        "1.2.0+build",
        "1",
        1,
        1.2,
        "",
        None,
        "1.2.3",
        "01.2.0",
        ["1.2.0"],
    ]
    for ver in versions:
        assert _compare(core, client, "v", {"ver": ver}, 0) is None, ver
