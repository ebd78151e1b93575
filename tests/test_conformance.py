"""The evaluation conformance suite (fixtures/conformance/*.json) run against the reference evaluator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tusklang.evaluate import Client, bucket_hash, cbor_text, pick_variant
from tusklang.snapshot import snapshot_json_schema

SUITE = Path(__file__).resolve().parent.parent / "fixtures" / "conformance"
TOPICS = sorted(p for p in SUITE.glob("*.json") if p.name != "bucketing.json")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_suite_is_large_and_covers_every_condition_op() -> None:
    docs = [_load(p) for p in TOPICS]
    assert sum(len(d["cases"]) for d in docs) >= 300
    ops: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("op"), str):
                ops.add(node["op"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for doc in docs:
        walk(doc["snapshots"])
    expected = {
        "in",
        "not_in",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "contains_any",
        "contains_all",
        "starts_with",
        "ends_with",
        "matches",
        "semver_eq",
        "semver_ne",
        "semver_lt",
        "semver_le",
        "semver_gt",
        "semver_ge",
        "before",
        "after",
        "exists",
        "segment",
        "time_window",
        "active_between",
        "all",
        "any",
        "not",
    }
    assert expected <= ops, expected - ops


@pytest.mark.parametrize("path", TOPICS, ids=lambda p: p.stem)
def test_topic(path: Path) -> None:
    doc = _load(path)
    schema = snapshot_json_schema()
    # One client per snapshot, reused across the topic's cases in order: a stale per-user cache would show.
    clients = {}
    for name, snap in doc["snapshots"].items():
        jsonschema.validate(snap, schema)
        clients[name] = Client(snap)
    failures = []
    for case in doc["cases"]:
        client = clients[case["snapshot_ref"]] if "snapshot_ref" in case else Client(case["snapshot"])
        got = client.evaluate(case["flag"], case["context"], now=case.get("now"))
        want = case["expected"]
        actual = {"value": got.value, "variant": got.variant, "reason": got.reason}
        wanted = {k: want[k] for k in ("value", "variant", "reason")}
        for extra in ("rule", "error_code"):
            if extra in want:
                actual[extra], wanted[extra] = getattr(got, extra), want[extra]
        ok = actual == wanted and type(got.value) is type(want["value"])
        if "detail_contains" in want and want["detail_contains"] not in (got.detail or ""):
            ok = False
        if not ok:
            failures.append(f"{case['name']}: got {got.to_dict()}, want {want}")
    assert not failures, "\n".join(failures[:10])


def test_bucketing_vectors() -> None:
    doc = _load(SUITE / "bucketing.json")
    assert len(doc["vectors"]) >= 40
    for v in doc["vectors"]:
        data = f"{v['salt']}:{v['unit']}".encode()
        assert cbor_text(data).hex() == v["cbor_hex"]
        h = bucket_hash(v["salt"], v["unit"])
        assert h == v["hash"]
        b = (h * v["total"]) >> 32
        assert b == v["bucket"]
        assert pick_variant(b, [tuple(w) for w in v["weights"]]) == v["variant"]


@pytest.mark.parametrize("text", ["1.2.3\n", "1.2.3-01", "01.2.3", "1.2.3-", "1.2.3+"])
def test_semver_rejects_what_semver_2_rejects(text: str) -> None:
    from tusklang.evaluate.conditions import semver_key

    assert semver_key(text) is None


def test_semver_orders_prerelease_identifiers_as_the_spec_does() -> None:
    from tusklang.evaluate.conditions import semver_key

    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11"]
    ordered += ["1.0.0-rc.1", "1.0.0"]
    keys = [semver_key(v) for v in ordered]
    assert all(k is not None for k in keys)
    assert keys == sorted(keys)  # type: ignore[type-var]
