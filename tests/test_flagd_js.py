"""`tusk compile --target flagd` checked by a second, independent flagd evaluator: flagd's TypeScript core.

tests/test_flagd_export.py runs the export through flagd's Python core; here the same golden seed
snapshot and the conformance suite go through `@openfeature/flagd-core` (the evaluator behind flagd's
JavaScript in-process providers) under Node.js, so a second implementation of flagd's JsonLogic agrees
with ours on targeting, types, segments, schedules and time windows.

One thing differs on purpose: the TypeScript core 4.x buckets with flagd's `fractional` v2 (murmur3 of
the bucket string), the export targets v3 (murmur3 of its CBOR encoding, docs/flagd.md), so every unit
lands in a different bucket. The snapshots compared here therefore have their randomness taken out
(a rollout above 0% at 100%, schedule steps alternating 0% and 100%, each split down to one variant)
before both sides see them; the hash itself is checked against flagd's Python core (v3) and the
bucketing vectors.
The npm package is pinned in tests/flagd_js/package.json (`npm ci --prefix tests/flagd_js`, which
.ci/run does); without Node.js or the package the tests skip outside CI and fail under CI=true.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tusklang.evaluate import Client
from tusklang.export.flagd import dumps_flagd, to_flagd

from .conftest import IN_CI
from .flagd_fuzz import flagd_js as _run_js
from .flagd_fuzz import ofrep_context, without_randomness
from .test_flagd_export import CONFORMANCE, SEED, TARGETING_KEY_SNAPSHOT, _contexts, _epoch, _flag

ORACLE = Path(__file__).resolve().parent / "flagd_js"


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    problem = None
    if found is None:
        problem = "Node.js (`node`) is not on PATH"
    elif not (ORACLE / "node_modules" / "@openfeature" / "flagd-core").is_dir():
        problem = "@openfeature/flagd-core is not installed: run `npm ci --prefix tests/flagd_js`"
    if problem:
        if IN_CI:
            pytest.fail(problem + " (CI=true: a missing oracle is a failure, not a skip)", pytrace=False)
        pytest.skip(problem)
    assert found is not None
    return found


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    return "object"


def flagd_js(node: str, document: dict[str, Any], cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return _run_js(node, document, cases)


def test_flagd_typescript_core_serves_what_we_serve_for_every_seed_flag_over_10000_contexts(node: str) -> None:
    snapshot = without_randomness(json.loads((SEED / "snapshot.json").read_text(encoding="utf-8")))
    document, diagnostics = to_flagd(snapshot)
    assert not [d for d in diagnostics if d.is_error]
    client = Client(snapshot)
    keys = sorted(snapshot["flags"]) + sorted(snapshot["experiments"])
    cases, ours = [], []
    for ctx, now in _contexts(snapshot):
        for key in keys:
            result = client.evaluate(key, ofrep_context(client.snapshot, key, ctx), now=now)
            cases.append({"key": key, "type": _kind(result.value), "context": ctx, "now": now})
            ours.append(result)
    answers = flagd_js(node, document, cases)
    mismatches = []
    for case, got, mine in zip(cases, answers, ours):
        if (got["value"], got["variant"]) == (mine.value, mine.variant):
            continue
        mismatches.append(
            f"{case['key']} {case['context']} @{case['now']}: flagd-js {got['variant']}={got['value']!r} "
            f"({got['errorCode']}), ours {mine.variant}={mine.value!r} ({mine.detail})"
        )
    # Mistyped and missing attributes included: the export's type tests use only operators that never
    # raise in either JsonLogic (see is_num / is_list in tusklang/export/flagd.py).
    assert not mismatches, f"{len(mismatches)} of {len(cases)} differ, e.g.\n" + "\n".join(mismatches[:10])
    # Not vacuous: the comparison saw every flag serve more than one variant where it can.
    served = Counter((case["key"], mine.variant) for case, mine in zip(cases, ours))
    varied = {key for key in keys if sum(1 for (k, _), n in served.items() if k == key and n >= 10) > 1}
    assert len(varied) >= len(keys) - 1, sorted(set(keys) - varied)  # dark_mode_v2 is disabled


@pytest.mark.parametrize(
    "path",
    sorted(p for p in CONFORMANCE.glob("*.json") if p.name not in ("bucketing.json", "dates.json")),
    ids=lambda p: p.stem,
)
def test_flagd_typescript_core_agrees_on_the_conformance_suite(path: Path, node: str) -> None:
    topic = json.loads(path.read_text(encoding="utf-8"))
    compared = 0
    for ref, original in topic["snapshots"].items():
        snapshot = without_randomness(original)
        document, _ = to_flagd(snapshot)
        client = Client(snapshot)
        cases, ours = [], []
        for case in topic["cases"]:
            if case["snapshot_ref"] != ref or case["flag"] not in document["flags"]:
                continue
            if not isinstance(case["context"], dict):
                continue
            now = _epoch(case["now"])
            result = client.evaluate(case["flag"], case["context"], now=now)
            if result.error_code:
                continue
            cases.append({"key": case["flag"], "type": _kind(result.value), "context": case["context"], "now": now})
            ours.append((case["name"], result))
        if not cases:
            continue
        for (name, mine), got in zip(ours, flagd_js(node, document, cases)):
            assert (got["value"], got["variant"]) == (mine.value, mine.variant), (name, got, mine)
            compared += 1
    assert compared >= 1


def test_list_conditions_on_any_attribute_type_agree_in_both_flagd_cores(node: str) -> None:
    """`contains_*` and external segments test for a list first; `contains_all` of nothing means
    "is a list", which the export can now say."""
    from openfeature.contrib.tools.flagd import core as flagd_core
    from openfeature.evaluation_context import EvaluationContext

    def flag(key: str, condition: dict[str, Any]) -> dict[str, Any]:
        return _flag(key, [condition])

    snapshot = {
        "format": "tusklang.snapshot/1",
        "external_segments": ["vip"],
        "flags": {
            "any": flag("any", {"attribute": "tags", "op": "contains_any", "values": ["a", 1]}),
            "all": flag("all", {"attribute": "tags", "op": "contains_all", "values": ["a", True]}),
            "list": flag("list", {"attribute": "tags", "op": "contains_all", "values": []}),
            "vip": flag("vip", {"op": "segment", "segments": ["vip"]}),
            "num": flag("num", {"attribute": "tags", "op": ">=", "value": 2}),
        },
    }
    document, diagnostics = to_flagd(snapshot)
    assert not [d for d in diagnostics if d.is_error]
    client = Client(snapshot)
    python_core = flagd_core.FlagdCore()
    python_core.set_flags(dumps_flagd(document))
    values: list[Any] = [None, "a", 1, 2.5, True, 0, [], ["a"], ["a", True], [1], [["a"]], {"a": 1}, {}, "{"]
    values += [["vip"], "vip"]
    cases, ours = [], []
    for value in values:
        for key in snapshot["flags"]:
            context = {"user_id": "u", "tags": value, "segments": value}
            ours.append(client.evaluate(key, context))
            cases.append({"key": key, "type": "boolean", "context": context, "now": 1_700_000_000})
    for case, got, mine in zip(cases, flagd_js(node, document, cases), ours):
        py = python_core.resolve_boolean_value(case["key"], False, EvaluationContext(attributes=case["context"]))
        assert (got["value"], got["variant"]) == (mine.value, mine.variant), (case, got, mine)
        assert (py.value, py.variant) == (mine.value, mine.variant), (case, py, mine)
    served = {(c["key"], m.variant) for c, m in zip(cases, ours)}
    assert {(k, "on") for k in snapshot["flags"]} <= served and {(k, "off") for k in snapshot["flags"]} <= served


def test_the_targeting_key_buckets_as_the_unit_attribute_would_in_both_flagd_cores(node: str) -> None:
    """Each core, with its own bucketing (the TypeScript core's fractional v2 included), serves a context
    holding only `targetingKey: k` what it serves with `k` under every unit attribute: the key is read
    where the attributes are (rollouts, splits, conditions, segments, the zone of a time window); our
    OFREP semantics, checked against us in tests/test_flagd_export.py."""
    from openfeature.contrib.tools.flagd import core as flagd_core

    snapshot = TARGETING_KEY_SNAPSHOT
    document, _ = to_flagd(snapshot)
    python_core = flagd_core.FlagdCore()
    python_core.set_flags(dumps_flagd(document))
    units = ("user_id", "account", "timezone")
    keys = [f"u{i}" for i in range(150)] + ["vip-1", "acme", "initech", "Europe/Berlin", "Asia/Tokyo", ""]
    cases, python = [], []
    for n, key in enumerate(keys):
        now = 1_711_800_000 + 997 * n  # 2024-03-30, hours apart: inside and outside the window
        by_key: dict[str, Any] = {"targetingKey": key}
        if n % 3 == 1:
            by_key["account"] = None  # null stands in like missing
        both = {"targetingKey": f"other-{n}", **dict.fromkeys(units, key)}  # the attributes win
        plain = dict.fromkeys(units, key)
        for flag in ("gate", "by_account", "by_zone"):  # plain_segment reads `account`, which it does not bucket by
            for ctx in (by_key, both, plain):
                cases.append({"key": flag, "type": "boolean", "context": ctx, "now": now})
                python.append(_python_value(python_core, flag, ctx, now))
    answers = flagd_js(node, document, cases)
    served: Counter[tuple[str, Any]] = Counter()
    for i in range(0, len(cases), 3):
        flag = cases[i]["key"]
        got = [(a["value"], a["variant"]) for a in answers[i : i + 3]]
        assert got[0] == got[1] == got[2], (cases[i], got)
        assert python[i] == python[i + 1] == python[i + 2], (cases[i], python[i : i + 3])
        served[(flag, got[0][0])] += 1
    # not vacuous: the rollouts and splits put keys on both sides in the TypeScript core
    assert all(served[(f, v)] >= 10 for f in ("gate", "by_account", "by_zone") for v in (True, False)), served


def _python_value(core: Any, flag: str, ctx: dict[str, Any], now: int) -> tuple[Any, Any]:
    import sys

    from .flagd_fuzz import openfeature_context

    targeting = sys.modules["openfeature.contrib.tools.flagd.core.targeting.targeting"]
    real, targeting.time = targeting.time, type("Clock", (), {"time": staticmethod(lambda: float(now))})
    try:
        res = core.resolve_boolean_value(flag, False, openfeature_context(ctx))
    finally:
        targeting.time = real
    return res.value, res.variant
