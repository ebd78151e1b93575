"""Our bucketing against flagd's own `fractional` (openfeature-flagd-core), unit by unit."""

from __future__ import annotations

import random

import pytest

from tusklang.evaluate import Client

flagd_core = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402

N = 10_000


def _unit_ids() -> list[str]:
    rng = random.Random(5)
    ids = [f"user-{i}" for i in range(N - 400)]
    # Lengths around every CBOR header boundary (23/24 and 255/256 bytes) and non-ASCII text.
    ids += ["x" * n for n in range(1, 300)]
    ids += ["".join(rng.choice("äöüßé漢字😀abc") for _ in range(rng.randint(1, 90))) for _ in range(101)]
    return ids


def _flagd_doc() -> dict:
    def fractional(salt: str, weights: list[list]) -> dict:
        return {"fractional": [{"cat": [f"{salt}:", {"var": "user_id"}]}, *weights]}

    return {
        "flags": {
            "gate": {
                "state": "ENABLED",
                "variants": {"in": "in", "out": "out"},
                "defaultVariant": "out",
                "targeting": fractional("quarter/rollout", [["in", 25_000], ["out", 75_000]]),
            },
            "split": {
                "state": "ENABLED",
                "variants": {"ai_v1": "ai_v1", "ai_v2": "ai_v2", "control": "control"},
                "defaultVariant": "control",
                "targeting": fractional("ai/split", [["ai_v1", 50_000], ["ai_v2", 30_000], ["control", 20_000]]),
            },
        }
    }


def _snapshot() -> dict:
    def flag(key: str, variants: list[str], default: str, rule: dict) -> dict:
        return {
            "key": key,
            "type": "string",
            "variants": {v: v for v in variants},
            "off_variant": default,
            "default_variant": default,
            "rules": [{"id": "r", **rule}],
        }

    return {
        "format": "tusklang.snapshot/1",
        "flags": {
            "gate": flag(
                "gate",
                ["in", "out"],
                "out",
                {"rollout": {"salt": "quarter/rollout", "percentage": 25_000}, "serve": "in"},
            ),
            "split": flag(
                "split",
                ["ai_v1", "ai_v2", "control"],
                "control",
                {
                    "split": {
                        "salt": "ai/split",
                        "weights": [["ai_v1", 50_000], ["ai_v2", 30_000], ["control", 20_000]],
                    }
                },
            ),
        },
    }


def test_every_unit_gets_flagds_variant_for_a_gate_and_a_split() -> None:
    core = flagd_core.FlagdCore()
    core.set_flags(_flagd_doc())
    client = Client(_snapshot())
    mismatches: list[tuple[str, str, str, str]] = []
    seen: dict[str, set[str]] = {"gate": set(), "split": set()}
    for uid in _unit_ids():
        ctx = EvaluationContext(targeting_key=uid, attributes={"user_id": uid})
        for key in ("gate", "split"):
            theirs = core.resolve_string_value(key, "none", ctx).value
            ours = client.evaluate(key, {"user_id": uid}).value
            seen[key].add(ours)
            if theirs != ours:
                mismatches.append((key, uid, ours, theirs))
    assert not mismatches, mismatches[:5]
    # Guard against a vacuous pass (e.g. both sides serving the default to everyone).
    assert seen == {"gate": {"in", "out"}, "split": {"ai_v1", "ai_v2", "control"}}
