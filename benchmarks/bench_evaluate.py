"""Evaluation throughput: tusklang's reference evaluator against peer SDKs evaluating locally, offline.

Two equivalent flags over N distinct contexts:
  * boolean: ``country in [US, CA] and plan == premium`` + a 25% rollout on user_id;
  * a 50/30/20 multivariate split on user_id.
Peers are optional (benchmark-only, not project dependencies): each one not installed is skipped with a
note. Every peer's distribution is checked before timing (a misconfigured rule makes a peer look fast);
peer objects and peer-specific context objects are built OUTSIDE the timed loop (their conversion cost
is reported separately where it applies), the flag definitions once. Rounds are interleaved; the
figures are medians; quote the ratios, not the absolute rates.

Run: ``python benchmarks/bench_evaluate.py [--n 100000] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tusklang.evaluate import Client  # noqa: E402

COUNTRIES = ["US", "CA", "DE", "FR"]
PLANS = ["premium", "free"]
SPLIT = [("ai_v1", 50), ("ai_v2", 30), ("control", 20)]
EXPECTED_ON = 0.5 * 0.5 * 0.25  # US/CA x premium x 25% rollout


def contexts(n: int) -> list[dict[str, Any]]:
    return [{"user_id": f"user-{i}", "country": COUNTRIES[i % 4], "plan": PLANS[(i // 4) % 2]} for i in range(n)]


# --- each peer: build(contexts) -> (bool_fn(i) -> bool, split_fn(i) -> str) ---------------------------


def tusk_snapshot() -> dict[str, Any]:
    """The two benchmark flags as a snapshot (bench_tracking.py measures the same ones)."""
    return {
        "format": "tusklang.snapshot/1",
        "flags": {
            "checkout": {
                "key": "checkout",
                "type": "boolean",
                "variants": {"on": True, "off": False},
                "off_variant": "off",
                "default_variant": "off",
                "rules": [
                    {
                        "id": "targeting",
                        "conditions": [
                            {"attribute": "country", "op": "in", "values": ["US", "CA"]},
                            {"attribute": "plan", "op": "==", "value": "premium"},
                        ],
                        "rollout": {"salt": "checkout/rollout", "percentage": 25_000},
                        "serve": "on",
                    }
                ],
            },
            "ai": {
                "key": "ai",
                "type": "string",
                "variants": {v: v for v, _ in SPLIT},
                "off_variant": "control",
                "default_variant": "control",
                "rules": [{"id": "ab", "split": {"salt": "ai/split", "weights": [[v, w * 1000] for v, w in SPLIT]}}],
            },
        },
    }


def tusk(ctxs: list[dict[str, Any]]) -> tuple[Callable[[int], Any], Callable[[int], Any]]:
    snapshot = tusk_snapshot()
    client = Client(snapshot)
    evaluate = client.evaluate
    # Full results (value + variant + reason + rule + detail) are produced; we read .value.
    return (lambda i: evaluate("checkout", ctxs[i]).value), (lambda i: evaluate("ai", ctxs[i]).value)


def flagd(ctxs: list[dict[str, Any]]) -> tuple[Callable[[int], Any], Callable[[int], Any]]:
    from openfeature.contrib.tools.flagd.core import FlagdCore
    from openfeature.evaluation_context import EvaluationContext

    core = FlagdCore()
    core.set_flags(
        {
            "flags": {
                "checkout": {
                    "state": "ENABLED",
                    "variants": {"on": True, "off": False},
                    "defaultVariant": "off",
                    "targeting": {
                        "if": [
                            {
                                "and": [
                                    {"in": [{"var": "country"}, ["US", "CA"]]},
                                    {"==": [{"var": "plan"}, "premium"]},
                                ]
                            },
                            {
                                "fractional": [
                                    {"cat": ["checkout/rollout:", {"var": "user_id"}]},
                                    ["on", 25_000],
                                    ["off", 75_000],
                                ]
                            },
                            "off",
                        ]
                    },
                },
                "ai": {
                    "state": "ENABLED",
                    "variants": {v: v for v, _ in SPLIT},
                    "defaultVariant": "control",
                    "targeting": {
                        "fractional": [
                            {"cat": ["ai/split:", {"var": "user_id"}]},
                            *[[v, w * 1000] for v, w in SPLIT],
                        ]
                    },
                },
            }
        }
    )
    ectx = [EvaluationContext(targeting_key=c["user_id"], attributes=c) for c in ctxs]
    rb, rs = core.resolve_boolean_value, core.resolve_string_value
    return (lambda i: rb("checkout", False, ectx[i]).value), (lambda i: rs("ai", "control", ectx[i]).value)


def growthbook(ctxs: list[dict[str, Any]]) -> tuple[Callable[[int], Any], Callable[[int], Any]]:
    from growthbook import GrowthBook

    features = {
        "checkout": {
            "defaultValue": False,
            "rules": [
                {
                    "condition": {"country": {"$in": ["US", "CA"]}, "plan": "premium"},
                    "force": True,
                    "coverage": 0.25,
                    "hashAttribute": "user_id",
                }
            ],
        },
        "ai": {
            "defaultValue": "control",
            "rules": [
                {
                    "key": "ai",
                    "variations": [v for v, _ in SPLIT],
                    "weights": [w / 100 for _, w in SPLIT],
                    "hashAttribute": "user_id",
                }
            ],
        },
    }
    gb = GrowthBook(features=features)  # no api host / client key: never fetches; no trackingCallback

    def run(key: str) -> Callable[[int], Any]:
        def one(i: int) -> Any:
            gb.set_attributes(ctxs[i])
            return gb.get_feature_value(key, None)

        return one

    return run("checkout"), run("ai")


def flagsmith(ctxs: list[dict[str, Any]]) -> tuple[Callable[[int], Any], Callable[[int], Any]]:
    from flag_engine.engine import get_evaluation_result

    base = {
        "environment": {"key": "env", "name": "bench"},
        "segments": {
            "1": {
                "key": "1",
                "name": "checkout_targeting",
                "rules": [
                    {
                        "type": "ALL",
                        "conditions": [
                            {"property": "country", "operator": "IN", "value": ["US", "CA"]},
                            {"property": "plan", "operator": "EQUAL", "value": "premium"},
                            {"property": "$.identity.key", "operator": "PERCENTAGE_SPLIT", "value": "25"},
                        ],
                    }
                ],
                "overrides": [{"key": "o1", "name": "checkout", "enabled": True, "value": True, "priority": 0}],
            }
        },
        "features": {
            "checkout": {"key": "f1", "name": "checkout", "enabled": False, "value": False},
            "ai": {
                "key": "f2",
                "name": "ai",
                "enabled": True,
                "value": "control",
                "variants": [
                    {"value": "ai_v1", "weight": 50, "priority": 0},
                    {"value": "ai_v2", "weight": 30, "priority": 1},
                ],
            },
        },
    }
    identities = [
        {
            **base,
            "identity": {
                "identifier": c["user_id"],
                "key": f"env_{c['user_id']}",
                "traits": {"country": c["country"], "plan": c["plan"]},
            },
        }
        for c in ctxs
    ]
    # The engine evaluates every feature of the environment per call, as its SDK does.
    return (lambda i: get_evaluation_result(identities[i])["flags"]["checkout"]["enabled"]), (
        lambda i: get_evaluation_result(identities[i])["flags"]["ai"]["value"]
    )


def launchdarkly(ctxs: list[dict[str, Any]]) -> tuple[Callable[[int], Any], Callable[[int], Any]]:
    from ldclient import Context, LDClient
    from ldclient.config import Config
    from ldclient.integrations import Files

    flags = {
        "checkout": {
            "key": "checkout",
            "version": 1,
            "on": True,
            "variations": [True, False],
            "offVariation": 1,
            "fallthrough": {"variation": 1},
            "targets": [],
            "prerequisites": [],
            "salt": "checkout",
            "rules": [
                {
                    "id": "targeting",
                    "clauses": [
                        {"attribute": "country", "op": "in", "values": ["US", "CA"], "negate": False},
                        {"attribute": "plan", "op": "in", "values": ["premium"], "negate": False},
                    ],
                    "rollout": {"variations": [{"variation": 0, "weight": 25_000}, {"variation": 1, "weight": 75_000}]},
                }
            ],
        },
        "ai": {
            "key": "ai",
            "version": 1,
            "on": True,
            "variations": [v for v, _ in SPLIT],
            "offVariation": 2,
            "targets": [],
            "prerequisites": [],
            "rules": [],
            "salt": "ai",
            "fallthrough": {
                "rollout": {"variations": [{"variation": i, "weight": w * 1000} for i, (_, w) in enumerate(SPLIT)]}
            },
        },
    }
    path = Path(tempfile.mkdtemp()) / "ld.json"
    path.write_text(json.dumps({"flags": flags}))
    config = Config(
        sdk_key="bench-unused",
        update_processor_class=Files.new_data_source(paths=[str(path)]),
        send_events=False,
        diagnostic_opt_out=True,
    )
    client = LDClient(config=config, start_wait=5)
    ld_ctx = [Context.builder(c["user_id"]).set("country", c["country"]).set("plan", c["plan"]).build() for c in ctxs]
    var = client.variation
    return (lambda i: var("checkout", ld_ctx[i], False)), (lambda i: var("ai", ld_ctx[i], "control"))


def unleash(ctxs: list[dict[str, Any]]) -> tuple[Callable[[int], Any], Callable[[int], Any]]:
    from UnleashClient import UnleashClient
    from UnleashClient.cache import FileCache

    features = {
        "version": 1,
        "features": [
            {
                "name": "checkout",
                "enabled": True,
                "strategies": [
                    {
                        "name": "flexibleRollout",
                        "parameters": {"rollout": "25", "stickiness": "userId", "groupId": "checkout"},
                        "constraints": [
                            {"contextName": "country", "operator": "IN", "values": ["US", "CA"]},
                            {"contextName": "plan", "operator": "IN", "values": ["premium"]},
                        ],
                    }
                ],
            },
            {
                "name": "ai",
                "enabled": True,
                "strategies": [{"name": "default", "parameters": {}}],
                "variants": [
                    {"name": v, "weight": w * 10, "weightType": "variable", "stickiness": "userId"} for v, w in SPLIT
                ],
            },
        ],
    }
    cache = FileCache("tusk-bench", directory=tempfile.mkdtemp())
    cache.bootstrap_from_dict(features)
    client = UnleashClient(
        url="http://127.0.0.1:9/unused",
        app_name="bench",
        cache=cache,
        disable_metrics=True,
        disable_registration=True,
    )
    client.initialize_client(fetch_toggles=False)
    uctx = [{"userId": c["user_id"], "properties": {"country": c["country"], "plan": c["plan"]}} for c in ctxs]
    return (lambda i: client.is_enabled("checkout", uctx[i])), (lambda i: client.get_variant("ai", uctx[i])["name"])


PEERS: list[tuple[str, Callable[..., Any]]] = [
    ("tusklang", tusk),
    ("flagd-core", flagd),
    ("growthbook", growthbook),
    ("flagsmith-engine", flagsmith),
    ("launchdarkly", launchdarkly),
    ("unleash", unleash),
]


def distribution_ok(name: str, bool_fn: Callable[[int], Any], split_fn: Callable[[int], Any], n: int) -> str | None:
    sample = min(n, 40_000)
    on = sum(1 for i in range(sample) if bool_fn(i) is True) / sample
    if abs(on - EXPECTED_ON) > 0.01:
        return f"boolean on-rate {on:.4f}, expected {EXPECTED_ON:.4f}"
    counts = Counter(split_fn(i) for i in range(sample))
    for variant, weight in SPLIT:
        share = counts.get(variant, 0) / sample
        if abs(share - weight / 100) > 0.015:
            return f"split share of {variant} {share:.4f}, expected {weight / 100:.2f} ({dict(counts)})"
    return None


def timed(fn: Callable[[int], Any], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


SEED_SNAPSHOT = ROOT / "fixtures" / "seed" / "snapshot.json"


def seed_contexts(n: int) -> list[dict[str, Any]]:
    """Contexts that exercise the seed flags' targeting: tiers, regions, devices, segments, usage."""
    tiers = ["free", "premium", "enterprise"]
    regions = ["us-east", "us-west", "eu-west", "ap-south"]
    devices = ["mobile", "desktop", "tablet"]
    return [
        {
            "user_id": f"user-{i}",
            "environment": ["staging", "production"][i % 2],
            "account_tier": tiers[i % 3],
            "region": regions[i % 4],
            "device_type": devices[i % 3],
            "plan": ["enterprise", "free"][i % 2],
            "platform": ["web", "android", "ios"][i % 3],
            "segments": ["premium_users"] if i % 5 == 0 else [],
            "sessions": i % 20,
            "purchases": i % 4,
            "beta_tester": i % 7 == 0,
            "user_preferences": ["dark_mode"] if i % 2 else [],
            "time_zone": "America/New_York",
        }
        for i in range(n)
    ]


def evaluate_all_rates(n: int, rounds: int) -> tuple[float, float, int]:
    """Flags per second on the seed snapshot: evaluate_all() against one evaluate() call per flag."""
    client = Client.from_file(SEED_SNAPSHOT)
    keys = [*client.snapshot.flags, *client.snapshot.experiments]
    ctxs = seed_contexts(n)
    evaluate, evaluate_all = client.evaluate, client.evaluate_all
    assert evaluate_all(ctxs[0]) == {k: evaluate(k, ctxs[0]) for k in keys}
    all_rates, one_rates = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        for ctx in ctxs:
            evaluate_all(ctx)
        all_rates.append(n * len(keys) / (time.perf_counter() - start))
        start = time.perf_counter()
        for ctx in ctxs:
            for key in keys:
                evaluate(key, ctx)
        one_rates.append(n * len(keys) / (time.perf_counter() - start))
    return statistics.median(all_rates), statistics.median(one_rates), len(keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="distinct contexts per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # SDK chatter about unused URLs
    ctxs = contexts(args.n)
    ready: dict[str, tuple[Callable[[int], Any], Callable[[int], Any]]] = {}
    for name, build in PEERS:
        try:
            fns = build(ctxs)
        except ImportError as exc:
            print(f"skip {name}: not installed ({exc.name})")
            continue
        except Exception as exc:  # a peer that cannot be set up is reported, not fatal
            print(f"skip {name}: setup failed: {type(exc).__name__}: {exc}")
            continue
        problem = distribution_ok(name, *fns, args.n)
        if problem:
            print(f"skip {name}: distribution check failed: {problem}")
            continue
        print(f"ok   {name}: distribution checked")
        ready[name] = fns
    rates: dict[str, dict[str, list[float]]] = {name: {"bool": [], "split": []} for name in ready}
    for rnd in range(args.rounds):
        for name, (bool_fn, split_fn) in ready.items():
            rates[name]["bool"].append(timed(bool_fn, args.n))
            rates[name]["split"].append(timed(split_fn, args.n))
        print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr)
    med = {name: {k: statistics.median(v) for k, v in r.items()} for name, r in rates.items()}
    print(f"\n{args.n:,} distinct contexts, median of {args.rounds} interleaved rounds (evaluations/s)")
    print(f"{'evaluator':<18}{'bool+25%':>12}{'50/30/20':>12}{'ours/peer bool':>16}{'ours/peer split':>17}")
    ours = med.get("tusklang")
    for name, m in med.items():
        ratio_b = f"{ours['bool'] / m['bool']:.1f}x" if ours else "-"
        ratio_s = f"{ours['split'] / m['split']:.1f}x" if ours else "-"
        print(f"{name:<18}{m['bool']:>12,.0f}{m['split']:>12,.0f}{ratio_b:>16}{ratio_s:>17}")
    if ours:
        peers = {k: v for k, v in med.items() if k != "tusklang"}
        if peers:
            fastest_b = max(peers.items(), key=lambda kv: kv[1]["bool"])
            fastest_s = max(peers.items(), key=lambda kv: kv[1]["split"])
            print(
                f"\nvs fastest peer: bool {ours['bool'] / fastest_b[1]['bool']:.1f}x ({fastest_b[0]}), "
                f"split {ours['split'] / fastest_s[1]['split']:.1f}x ({fastest_s[0]})"
            )
    all_rate, one_rate, count = evaluate_all_rates(max(1, args.n // 10), args.rounds)
    print(
        f"\nevaluate_all() on the seed snapshot ({count} flags and experiments, {max(1, args.n // 10):,} contexts): "
        f"{all_rate:,.0f} flags/s; evaluate() per flag: {one_rate:,.0f} flags/s; ratio {all_rate / one_rate:.2f}x"
    )


if __name__ == "__main__":
    main()
