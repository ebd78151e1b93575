"""The generated evaluator (fused.py) against the closure chain (compile.py) it replaces on the hot path.

Both implement docs/evaluation.md; generated flags (many rules, every condition op, rollouts, schedules,
splits, prerequisites, disabled flags) and generated contexts (every JSON type, missing and null
attributes) must give identical results, field by field. evaluate_all must equal evaluate per key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tusklang.evaluate import Client
from tusklang.evaluate.client import _compile

ATTRS = ["a", "b", "n"]
STRINGS = ["", "US", "CA", "premium", "qa+1@corp.com", "x@example.com", "2.1.0", "1.0.0-rc.1", "v3", "abc"]
NUMBERS = [0, 1, 2.5, -3, 10, 10.0, 2**40]
VERSIONS = ["1.0.0", "2.1.0", "2.1.0-rc.1", "v2", "0.9.9", "2.1.0+build"]
DATES = ["2024-01-15T00:00:00Z", "2024-01-15", "2023-12-31T23:59:59+01:00", 1705276801, "not a date"]
NOWS = [None, "2024-01-20T03:00:00Z", "2024-03-10T22:05:00Z", datetime(2024, 6, 1, 12, tzinfo=UTC), 1.7e9]

scalars = st.sampled_from(STRINGS) | st.sampled_from(NUMBERS) | st.booleans()
values = (
    scalars
    | st.sampled_from(VERSIONS)
    | st.sampled_from(DATES)
    | st.none()
    | st.lists(scalars, max_size=3)
    | st.dictionaries(st.sampled_from(["k"]), scalars, max_size=1)
)
contexts = st.fixed_dictionaries(
    {},
    optional={
        **dict.fromkeys(ATTRS, values),
        "user_id": st.sampled_from(["u1", "u2", "user-7", 42, True]),
        "timezone": st.sampled_from(["Asia/Tokyo", "Mars/Base"]),
        "segments": st.sampled_from([["ext"], []]),
    },
)


def leaf(segments: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """One condition of any op but all/any/not (``segments=False``: no segment reference, for a segment)."""
    attr = st.sampled_from(ATTRS)
    segment = st.builds(
        lambda names: {"op": "segment", "segments": names}, st.sampled_from([["seg"], ["ext"], ["seg", "all_users"]])
    )
    return st.one_of(
        st.builds(
            lambda op, a, vs: {"op": op, "attribute": a, "values": vs},
            st.sampled_from(["in", "not_in"]),
            attr,
            st.lists(scalars, max_size=3) | st.lists(st.sampled_from(STRINGS), min_size=1, max_size=3),
        ),
        st.builds(
            lambda op, a, v: {"op": op, "attribute": a, "value": v},
            st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
            attr,
            scalars,
        ),
        st.builds(
            lambda op, a, v: {"op": op, "attribute": a, "value": v},
            st.sampled_from(["starts_with", "ends_with", "contains"]),
            attr,
            st.sampled_from(["", "US", "qa", "@corp.com", "1.0", "c"]),
        ),
        st.builds(
            lambda a, v: {"op": "matches", "attribute": a, "value": v}, attr, st.sampled_from(["^q", "com$", "\\d"])
        ),
        st.builds(
            lambda op, a, v: {"op": op, "attribute": a, "value": v},
            st.sampled_from([f"semver_{s}" for s in ("eq", "ne", "lt", "le", "gt", "ge")]),
            attr,
            st.sampled_from(VERSIONS),
        ),
        st.builds(
            lambda op, a: {"op": op, "attribute": a, "value": "2024-01-15T00:00:00Z"},
            st.sampled_from(["before", "after"]),
            attr,
        ),
        st.builds(lambda op, a: {"op": op, "attribute": a}, st.sampled_from(["exists", "not_exists"]), attr),
        st.builds(
            lambda op, a, vs: {"op": op, "attribute": a, "values": vs},
            st.sampled_from(["contains_any", "contains_all"]),
            attr,
            st.lists(scalars, max_size=2),
        ),
        segment if segments else st.nothing(),
        st.builds(
            lambda s, e: {"op": "time_window", "start_minute": s, "end_minute": e if e != s else (s + 1) % 1440},
            st.sampled_from([0, 60, 1080, 1439]),
            st.sampled_from([0, 360, 1080, 720]),
        ),
        st.just({"op": "active_between", "start": "2024-01-18T00:00:00Z", "end": "2024-03-01T00:00:00Z"}),
    )


conditions = st.recursive(
    leaf(),
    lambda inner: st.one_of(
        st.builds(
            lambda op, cs: {"op": op, "conditions": cs}, st.sampled_from(["all", "any"]), st.lists(inner, max_size=3)
        ),
        st.builds(lambda c: {"op": "not", "condition": c}, inner),
    ),
    max_leaves=6,
)


@st.composite
def rules(draw: st.DrawFn, key: str, index: int) -> dict[str, Any]:
    rule: dict[str, Any] = {"id": f"r{index}", "conditions": draw(st.lists(conditions, max_size=3))}
    gate = draw(st.sampled_from(["none", "fixed", "full", "zero", "schedule"]))
    if gate in ("fixed", "full", "zero"):
        pct = {"fixed": draw(st.integers(1, 99_999)), "full": 100_000, "zero": 0}[gate]
        rule["rollout"] = {"salt": f"{key}/rollout", "percentage": pct}
    elif gate == "schedule":
        rule["rollout"] = {
            "salt": f"{key}/rollout",
            "schedule": [
                {"at": "2024-01-16T00:00:00Z", "percentage": 20_000},
                {"at": "2024-02-01T00:00:00Z", "percentage": 100_000},
            ],
        }
    if draw(st.booleans()):
        rule["split"] = {"salt": f"{key}/split", "weights": [["on", draw(st.integers(0, 3))], ["off", 1]]}
    else:
        rule["serve"] = draw(st.sampled_from(["on", "off"]))
    return rule


@st.composite
def snapshots(draw: st.DrawFn) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    count = draw(st.integers(1, 4))
    for i in range(count):
        key = f"f{i}"
        requires = [
            {"flag": f"f{j}", "variants": draw(st.sampled_from([["on"], ["off"], ["on", "off"]]))}
            for j in range(i)
            if draw(st.booleans())
        ]
        flags[key] = {
            "key": key,
            "type": "boolean",
            "enabled": draw(st.booleans()) or draw(st.booleans()),
            "variants": {"on": True, "off": False},
            "off_variant": "off",
            "default_variant": draw(st.sampled_from(["on", "off"])),
            "time_zone": draw(st.sampled_from(["UTC", "America/New_York"])),
            "prerequisites": requires,
            "rules": [draw(rules(key, k)) for k in range(draw(st.integers(0, 12)))],
        }
    return {
        "format": "tusklang.snapshot/1",
        "segments": {
            "seg": {
                "match": draw(st.sampled_from(["all", "any"])),
                "conditions": draw(st.lists(leaf(segments=False), max_size=2)),
            }
        },
        "external_segments": ["ext"],
        "flags": flags,
    }


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(snapshot=snapshots(), ctxs=st.lists(contexts, min_size=1, max_size=12), now=st.sampled_from(NOWS))
def test_generated_code_equals_the_closure_chain(
    snapshot: dict[str, Any], ctxs: list[dict[str, Any]], now: Any
) -> None:
    fused = Client(snapshot)
    closures = Client(snapshot)
    closures._swap(_compile(closures.snapshot, fused=False))
    for ctx in ctxs:
        for key in snapshot["flags"]:
            got, want = fused.evaluate(key, ctx, now), closures.evaluate(key, ctx, now)
            assert got == want, (key, ctx)
        assert fused.evaluate_all(ctx, now) == {k: fused.evaluate(k, ctx, now) for k in snapshot["flags"]}
        assert closures.evaluate_all(ctx, now) == {k: closures.evaluate(k, ctx, now) for k in snapshot["flags"]}


# Every leaf operator with its operands, at both positions a rule can take in the generated code: an
# earlier rule (a boolean expression) and the last one (explained failures), for a grid of values.
LEAVES: list[dict[str, Any]] = [
    *(
        {"op": op, "attribute": "a", "values": vs}
        for op in ("in", "not_in")
        for vs in (["US", "CA"], [], [1, 2.5], ["7", 8, True])
    ),
    *(
        {"op": op, "attribute": "a", "value": v}
        for op in ("==", "!=", "<", "<=", ">", ">=")
        for v in ("premium", 10, 2.5, True, False)
    ),
    *(
        {"op": op, "attribute": "a", "value": v}
        for op in ("starts_with", "ends_with", "contains")
        for v in ("qa", "com", "")
    ),
    {"op": "matches", "attribute": "a", "value": "^[a-z]+@corp\\.com$"},
    *(
        {"op": f"semver_{s}", "attribute": "a", "value": v}
        for s in ("eq", "ne", "lt", "le", "gt", "ge")
        for v in ("2.1.0", "2.1.0-rc.1")
    ),
    *({"op": op, "attribute": "a", "value": "2024-01-15T00:00:00Z"} for op in ("before", "after")),
    {"op": "exists", "attribute": "a"},
    {"op": "not_exists", "attribute": "a"},
    *({"op": op, "attribute": "a", "values": ["US", 1]} for op in ("contains_any", "contains_all")),
    {"op": "segment", "segments": ["ext"]},
]
GRID: list[Any] = [
    "US",
    "CA",
    "us",
    "premium",
    "Premium",
    "qa+1@corp.com",
    "ann@corp.com",
    "x.com",
    "",
    "7",
    "com",
    "2.1.0",
    "2.1.0-rc.1",
    "2.1.0-rc.2",
    "v2.1",
    "2.0.9",
    "latest",
    "2024-01-15T00:00:01Z",
    "2024-01-14",
    1,
    2.5,
    7,
    8,
    10,
    10.0,
    9.99,
    11,
    -1,
    0,
    2**70,
    1705276801,
    True,
    False,
    None,
    [],
    ["US"],
    ["US", 1],
    [1, True],
    {"US": 1},
]


def test_every_operator_and_value_class_agrees_in_both_rule_positions() -> None:
    flags: dict[str, Any] = {}
    for i, cond in enumerate(LEAVES):
        for wrapped in (
            cond,
            {"op": "not", "condition": cond},
            {"op": "any", "conditions": [cond, {"op": "exists", "attribute": "z"}]},
        ):
            for position, rules in (
                (
                    "quiet",
                    [
                        {"id": "x", "conditions": [wrapped], "serve": "on"},
                        {"id": "y", "conditions": [{"op": "exists", "attribute": "z"}], "serve": "on"},
                    ],
                ),
                ("last", [{"id": "x", "conditions": [wrapped, {"op": "not_exists", "attribute": "z"}], "serve": "on"}]),
            ):
                key = f"f{i}_{position}_{len(flags)}"
                flags[key] = {
                    "key": key,
                    "type": "boolean",
                    "variants": {"on": True, "off": False},
                    "off_variant": "off",
                    "default_variant": "off",
                    "rules": rules,
                }
    snapshot = {"format": "tusklang.snapshot/1", "external_segments": ["ext"], "flags": flags}
    fused = Client(snapshot)
    closures = Client(snapshot)
    closures._swap(_compile(closures.snapshot, fused=False))
    contexts = [{}, *({"a": v, "segments": ["ext"] if v == "US" else []} for v in GRID)]
    mismatches = [
        (key, ctx, fused.evaluate(key, ctx), closures.evaluate(key, ctx))
        for key in flags
        for ctx in contexts
        if fused.evaluate(key, ctx) != closures.evaluate(key, ctx)
    ]
    assert not mismatches, mismatches[:3]
    served = {fused.evaluate(key, ctx).variant for key in flags for ctx in contexts}
    assert served == {"on", "off"}  # the grid reaches both outcomes
