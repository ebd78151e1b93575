"""Evaluation throughput: tusklang's reference evaluator against peer SDKs evaluating locally, offline.

Equivalent flags over N distinct contexts, one scenario per column:
  * ``bool``: ``country in [US, CA] and plan == premium`` + a 25% rollout on user_id;
  * ``split``: a 50/30/20 multivariate split on user_id;
  * ``rules10``: ten rules on different attributes and operators (in, ==, ends_with, >=, semver <,
    starts_with, a missing boolean, two-clause and), each serving its own variant; for every context only
    the LAST rule matches, so each evaluation runs all ten (the issue-16 target: >= 10x GrowthBook).
Two more columns are ours only: ``bool now=`` is ``evaluate("checkout", ctx, now=<datetime>)`` (a flag
that does not depend on time must not pay for ``now``), ``prereq`` a flag whose prerequisite is the
``bool`` flag (LaunchDarkly has the same feature and is timed on it too).
Peers are optional (benchmark-only, not project dependencies): each one not installed is skipped with a
note, and a peer that cannot express a scenario shows "-". Every peer's answers are checked before timing
(a misconfigured rule makes a peer look fast); each timed call evaluates only the flag under test (an
engine that evaluates a whole environment per call gets an environment holding that one flag); peer
objects and peer-specific context objects are built OUTSIDE the timed loop, the flag definitions once.
Rounds are interleaved; each rate is of the evaluating thread's CPU time (``timed``); the figures are
medians; quote the ratios, not the absolute rates.

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tusklang.evaluate import Client  # noqa: E402

COUNTRIES = ["US", "CA", "DE", "FR"]
PLANS = ["premium", "free"]
PLATFORMS = ["web", "android", "ios"]
SPLIT = [("ai_v1", 50), ("ai_v2", 30), ("control", 20)]
EXPECTED_ON = 0.5 * 0.5 * 0.25  # US/CA x premium x 25% rollout
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
SCENARIOS = ("bool", "split", "rules10", "bool now=", "prereq")
Fns = dict[str, Callable[[int], Any]]


def contexts(n: int) -> list[dict[str, Any]]:
    return [{"user_id": f"user-{i}", "country": COUNTRIES[i % 4], "plan": PLANS[(i // 4) % 2]} for i in range(n)]


def rich_contexts(n: int) -> list[dict[str, Any]]:
    """``contexts`` plus the attributes the ten rules read (none has ``beta_tester``)."""
    out = contexts(n)
    for i, c in enumerate(out):
        c.update(
            email=f"user-{i}@example.com",
            age=18 + i % 40,
            app_version=f"{1 + i % 3}.{i % 10}.{i % 7}",
            platform=PLATFORMS[i % 3],
        )
    return out


# The ten rules, as (our conditions, GrowthBook condition, flagd JSONLogic, LaunchDarkly clauses,
# Unleash constraints); rule k serves variant rk; every benchmark context fails 1-9 and matches 10.
def _rules10() -> list[tuple[list[dict], dict, dict, list[dict], list[dict]]]:
    def ld(attribute: str, op: str, values: list[Any]) -> dict[str, Any]:
        return {"attribute": attribute, "op": op, "values": values, "negate": False}

    def un(name: str, op: str, values: list[str] | None = None, value: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"contextName": name, "operator": op}
        if values is not None:
            out["values"] = values
        if value is not None:
            out["value"] = value
        return out

    var = lambda name: {"var": name}  # noqa: E731
    return [
        (
            [{"attribute": "country", "op": "in", "values": ["JP", "KR", "CN"]}],
            {"country": {"$in": ["JP", "KR", "CN"]}},
            {"in": [var("country"), ["JP", "KR", "CN"]]},
            [ld("country", "in", ["JP", "KR", "CN"])],
            [un("country", "IN", ["JP", "KR", "CN"])],
        ),
        (
            [{"attribute": "plan", "op": "==", "value": "enterprise"}],
            {"plan": "enterprise"},
            {"==": [var("plan"), "enterprise"]},
            [ld("plan", "in", ["enterprise"])],
            [un("plan", "IN", ["enterprise"])],
        ),
        (
            [{"attribute": "email", "op": "ends_with", "value": "@corp.example"}],
            {"email": {"$regex": "@corp\\.example$"}},
            {"ends_with": [var("email"), "@corp.example"]},
            [ld("email", "endsWith", ["@corp.example"])],
            [un("email", "STR_ENDS_WITH", ["@corp.example"])],
        ),
        (
            [{"attribute": "age", "op": ">=", "value": 65}],
            {"age": {"$gte": 65}},
            {">=": [var("age"), 65]},
            [ld("age", "greaterThanOrEqual", [65])],
            [un("age", "NUM_GTE", value="65")],
        ),
        (
            [{"attribute": "app_version", "op": "semver_lt", "value": "1.0.0"}],
            {"app_version": {"$vlt": "1.0.0"}},
            {"sem_ver": [var("app_version"), "<", "1.0.0"]},
            [ld("app_version", "semVerLessThan", ["1.0.0"])],
            [un("app_version", "SEMVER_LT", value="1.0.0")],
        ),
        (
            [{"attribute": "platform", "op": "in", "values": ["tv", "console"]}],
            {"platform": {"$in": ["tv", "console"]}},
            {"in": [var("platform"), ["tv", "console"]]},
            [ld("platform", "in", ["tv", "console"])],
            [un("platform", "IN", ["tv", "console"])],
        ),
        (
            [
                {"attribute": "country", "op": "==", "value": "BR"},
                {"attribute": "plan", "op": "==", "value": "premium"},
            ],
            {"country": "BR", "plan": "premium"},
            {"and": [{"==": [var("country"), "BR"]}, {"==": [var("plan"), "premium"]}]},
            [ld("country", "in", ["BR"]), ld("plan", "in", ["premium"])],
            [un("country", "IN", ["BR"]), un("plan", "IN", ["premium"])],
        ),
        (
            [{"attribute": "email", "op": "starts_with", "value": "admin"}],
            {"email": {"$regex": "^admin"}},
            {"starts_with": [var("email"), "admin"]},
            [ld("email", "startsWith", ["admin"])],
            [un("email", "STR_STARTS_WITH", ["admin"])],
        ),
        (
            [{"attribute": "beta_tester", "op": "==", "value": True}],
            {"beta_tester": True},
            {"==": [var("beta_tester"), True]},
            [ld("beta_tester", "in", [True])],
            [un("beta_tester", "IN", ["true"])],
        ),
        (
            [
                {"attribute": "plan", "op": "in", "values": ["premium", "free"]},
                {"attribute": "age", "op": ">=", "value": 18},
            ],
            {"plan": {"$in": ["premium", "free"]}, "age": {"$gte": 18}},
            {"and": [{"in": [var("plan"), ["premium", "free"]]}, {">=": [var("age"), 18]}]},
            [ld("plan", "in", ["premium", "free"]), ld("age", "greaterThanOrEqual", [18])],
            [un("plan", "IN", ["premium", "free"]), un("age", "NUM_GTE", value="18")],
        ),
    ]


RULES10_VARIANTS = ["none", *(f"r{k}" for k in range(1, 11))]


# --- each peer: build(contexts) -> {scenario: fn(i) -> value} for the scenarios it can express -----------


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


def tusk_bench_snapshot() -> dict[str, Any]:
    """``tusk_snapshot`` plus the ten-rule flag and a flag gated on ``checkout``."""
    snapshot = tusk_snapshot()
    snapshot["flags"]["rules10"] = {
        "key": "rules10",
        "type": "string",
        "variants": {v: v for v in RULES10_VARIANTS},
        "off_variant": "none",
        "default_variant": "none",
        "rules": [
            {"id": f"rule-{k}", "conditions": ours, "serve": f"r{k}"} for k, (ours, *_) in enumerate(_rules10(), 1)
        ],
    }
    snapshot["flags"]["gated"] = {
        "key": "gated",
        "type": "boolean",
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "default_variant": "off",
        "prerequisites": [{"flag": "checkout", "variants": ["on"]}],
        "rules": [{"id": "everyone", "serve": "on"}],
    }
    return snapshot


def tusk(ctxs: list[dict[str, Any]]) -> Fns:
    client = Client(tusk_bench_snapshot())
    evaluate = client.evaluate
    # Full results (value + variant + reason + rule + detail) are produced; we read .value.
    return {
        "bool": lambda i: evaluate("checkout", ctxs[i]).value,
        "split": lambda i: evaluate("ai", ctxs[i]).value,
        "rules10": lambda i: evaluate("rules10", ctxs[i]).value,
        "bool now=": lambda i: evaluate("checkout", ctxs[i], NOW).value,
        "prereq": lambda i: evaluate("gated", ctxs[i]).value,
    }


def _flagd_checkout() -> dict[str, Any]:
    return {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "targeting": {
            "if": [
                {"and": [{"in": [{"var": "country"}, ["US", "CA"]]}, {"==": [{"var": "plan"}, "premium"]}]},
                {"fractional": [{"cat": ["checkout/rollout:", {"var": "user_id"}]}, ["on", 25_000], ["off", 75_000]]},
                "off",
            ]
        },
    }


def flagd(ctxs: list[dict[str, Any]]) -> Fns:
    from openfeature.contrib.tools.flagd.core import FlagdCore
    from openfeature.evaluation_context import EvaluationContext

    chain: list[Any] = []
    for k, (_, _, logic, _, _) in enumerate(_rules10(), 1):
        chain += [logic, f"r{k}"]
    core = FlagdCore()
    core.set_flags(
        {
            "flags": {
                "checkout": _flagd_checkout(),
                "ai": {
                    "state": "ENABLED",
                    "variants": {v: v for v, _ in SPLIT},
                    "defaultVariant": "control",
                    "targeting": {
                        "fractional": [{"cat": ["ai/split:", {"var": "user_id"}]}, *[[v, w * 1000] for v, w in SPLIT]]
                    },
                },
                "rules10": {
                    "state": "ENABLED",
                    "variants": {v: v for v in RULES10_VARIANTS},
                    "defaultVariant": "none",
                    "targeting": {"if": [*chain, "none"]},
                },
            }
        }
    )
    ectx = [EvaluationContext(targeting_key=c["user_id"], attributes=c) for c in ctxs]
    rb, rs = core.resolve_boolean_value, core.resolve_string_value
    return {
        "bool": lambda i: rb("checkout", False, ectx[i]).value,
        "split": lambda i: rs("ai", "control", ectx[i]).value,
        "rules10": lambda i: rs("rules10", "none", ectx[i]).value,
    }


def growthbook(ctxs: list[dict[str, Any]]) -> Fns:
    from growthbook import GrowthBook

    checkout_rule = {
        "condition": {"country": {"$in": ["US", "CA"]}, "plan": "premium"},
        "force": True,
        "coverage": 0.25,
        "hashAttribute": "user_id",
    }
    features = {
        "checkout": {"defaultValue": False, "rules": [checkout_rule]},
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
        "rules10": {
            "defaultValue": "none",
            "rules": [{"condition": cond, "force": f"r{k}"} for k, (_, cond, _, _, _) in enumerate(_rules10(), 1)],
        },
        # GrowthBook's prerequisites: a rule whose parent condition is on the other feature's value.
        "gated": {
            "defaultValue": False,
            "rules": [
                {
                    "parentConditions": [{"id": "checkout", "condition": {"value": True}, "gate": True}],
                    "force": True,
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

    return {"bool": run("checkout"), "split": run("ai"), "rules10": run("rules10"), "prereq": run("gated")}


def flagsmith(ctxs: list[dict[str, Any]]) -> Fns:
    from flag_engine.engine import get_evaluation_result

    checkout_env = {
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
        "features": {"checkout": {"key": "f1", "name": "checkout", "enabled": False, "value": False}},
    }
    ai_env = {
        "environment": {"key": "env", "name": "bench"},
        "segments": {},
        "features": {
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

    def identity(env: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
        traits = {k: v for k, v in c.items() if k != "user_id"}
        return {**env, "identity": {"identifier": c["user_id"], "key": f"env_{c['user_id']}", "traits": traits}}

    # One environment per flag under test: the engine evaluates every feature of the environment per call
    # (as its SDK does), so an environment holding both benchmark flags would time two evaluations.
    checkout = [identity(checkout_env, c) for c in ctxs]
    ai = [identity(ai_env, c) for c in ctxs]
    return {
        "bool": lambda i: get_evaluation_result(checkout[i])["flags"]["checkout"]["enabled"],
        "split": lambda i: get_evaluation_result(ai[i])["flags"]["ai"]["value"],
    }


def launchdarkly(ctxs: list[dict[str, Any]]) -> Fns:
    from ldclient import Context, LDClient
    from ldclient.config import Config
    from ldclient.integrations import Files

    def flag(key: str, **fields: Any) -> dict[str, Any]:
        base = {"key": key, "version": 1, "on": True, "targets": [], "prerequisites": [], "rules": [], "salt": key}
        return {**base, **fields}

    flags = {
        "checkout": flag(
            "checkout",
            variations=[True, False],
            offVariation=1,
            fallthrough={"variation": 1},
            rules=[
                {
                    "id": "targeting",
                    "clauses": [
                        {"attribute": "country", "op": "in", "values": ["US", "CA"], "negate": False},
                        {"attribute": "plan", "op": "in", "values": ["premium"], "negate": False},
                    ],
                    "rollout": {"variations": [{"variation": 0, "weight": 25_000}, {"variation": 1, "weight": 75_000}]},
                }
            ],
        ),
        "ai": flag(
            "ai",
            variations=[v for v, _ in SPLIT],
            offVariation=2,
            fallthrough={
                "rollout": {"variations": [{"variation": i, "weight": w * 1000} for i, (_, w) in enumerate(SPLIT)]}
            },
        ),
        "rules10": flag(
            "rules10",
            variations=RULES10_VARIANTS,
            offVariation=0,
            fallthrough={"variation": 0},
            rules=[
                {"id": f"rule-{k}", "clauses": clauses, "variation": k}
                for k, (_, _, _, clauses, _) in enumerate(_rules10(), 1)
            ],
        ),
        "gated": flag(
            "gated",
            variations=[True, False],
            offVariation=1,
            fallthrough={"variation": 0},
            prerequisites=[{"key": "checkout", "variation": 0}],
        ),
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

    def context(c: dict[str, Any]) -> Any:
        builder = Context.builder(c["user_id"])
        for name, value in c.items():
            if name != "user_id":
                builder.set(name, value)
        return builder.build()

    ld_ctx = [context(c) for c in ctxs]
    var = client.variation
    return {
        "bool": lambda i: var("checkout", ld_ctx[i], False),
        "split": lambda i: var("ai", ld_ctx[i], "control"),
        "rules10": lambda i: var("rules10", ld_ctx[i], "none"),
        "prereq": lambda i: var("gated", ld_ctx[i], False),
    }


def unleash(ctxs: list[dict[str, Any]]) -> Fns:
    from UnleashClient import UnleashClient
    from UnleashClient.cache import FileCache

    def strategy(constraints: list[dict[str, Any]], variant: str) -> dict[str, Any]:
        return {
            "name": "default",
            "parameters": {},
            "constraints": constraints,
            "variants": [{"name": variant, "weight": 1000, "weightType": "variable", "stickiness": "default"}],
        }

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
            {
                "name": "rules10",
                "enabled": True,
                # Strategies are tried in order; the first whose constraints hold serves its variant.
                "strategies": [strategy(un, f"r{k}") for k, (_, _, _, _, un) in enumerate(_rules10(), 1)],
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

    def context(c: dict[str, Any]) -> dict[str, Any]:
        properties = {k: str(v) for k, v in c.items() if k != "user_id"}
        return {"userId": c["user_id"], "properties": properties}

    uctx = [context(c) for c in ctxs]
    return {
        "bool": lambda i: client.is_enabled("checkout", uctx[i]),
        "split": lambda i: client.get_variant("ai", uctx[i])["name"],
        "rules10": lambda i: client.get_variant("rules10", uctx[i])["name"],
    }


PEERS: list[tuple[str, Callable[..., Any]]] = [
    ("tusklang", tusk),
    ("flagd-core", flagd),
    ("growthbook", growthbook),
    ("flagsmith-engine", flagsmith),
    ("launchdarkly", launchdarkly),
    ("unleash", unleash),
]


def _on_rate(fn: Callable[[int], Any], sample: int) -> str | None:
    on = sum(1 for i in range(sample) if fn(i) is True) / sample
    return None if abs(on - EXPECTED_ON) <= 0.01 else f"on-rate {on:.4f}, expected {EXPECTED_ON:.4f}"


def answer_problem(scenario: str, fn: Callable[[int], Any], n: int) -> str | None:
    """Why a peer's answers for a scenario are not the expected ones (checked before timing), or None."""
    sample = min(n, 40_000)
    if scenario in ("bool", "bool now="):
        return _on_rate(fn, sample)
    if scenario == "prereq":
        # Exactly the units the bool flag serves `on` to, so the same rate.
        return _on_rate(fn, sample)
    if scenario == "split":
        counts = Counter(fn(i) for i in range(sample))
        for variant, weight in SPLIT:
            share = counts.get(variant, 0) / sample
            if abs(share - weight / 100) > 0.015:
                return f"share of {variant} {share:.4f}, expected {weight / 100:.2f} ({dict(counts)})"
        return None
    if scenario == "rules10":
        counts = Counter(fn(i) for i in range(sample))
        return None if counts == Counter({"r10": sample}) else f"expected r10 for every context, got {dict(counts)}"
    raise ValueError(scenario)


def timed(fn: Callable[[int], Any], n: int) -> float:
    """Evaluations per second of the calling thread's CPU time: on a shared machine wall time also
    measures the neighbours (the loop is single-threaded, so on an idle machine the two agree). The
    thread's own clock, not the process's: a peer's background threads (LaunchDarkly's data source,
    Unleash's scheduler) are not charged to its evaluations."""
    start = time.thread_time()
    for i in range(n):
        fn(i)
    return n / (time.thread_time() - start)


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
    parser.add_argument("--only", default="", help="comma-separated peers to run (default: all installed)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # SDK chatter about unused URLs
    ctxs = rich_contexts(args.n)
    only = {name for name in args.only.split(",") if name}
    ready: dict[str, Fns] = {}
    for name, build in PEERS:
        if only and name not in only and name != "tusklang":
            continue
        try:
            fns = build(ctxs)
        except ImportError as exc:
            print(f"skip {name}: not installed ({exc.name})")
            continue
        except Exception as exc:  # a peer that cannot be set up is reported, not fatal
            print(f"skip {name}: setup failed: {type(exc).__name__}: {exc}")
            continue
        checked: Fns = {}
        for scenario, fn in fns.items():
            try:
                problem = answer_problem(scenario, fn, args.n)
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if problem:
                print(f"skip {name} {scenario}: answers checked wrong: {problem}")
            else:
                checked[scenario] = fn
        print(f"ok   {name}: answers checked for {', '.join(checked) or 'nothing'}")
        if checked:
            ready[name] = checked
    rates: dict[str, dict[str, list[float]]] = {name: {s: [] for s in fns} for name, fns in ready.items()}
    for rnd in range(args.rounds):
        for name, fns in ready.items():
            for scenario, fn in fns.items():
                rates[name][scenario].append(timed(fn, args.n))
        print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr)
    med = {name: {s: statistics.median(v) for s, v in r.items()} for name, r in rates.items()}
    print(f"\n{args.n:,} distinct contexts, median of {args.rounds} interleaved rounds (evaluations/s)")
    print(f"{'evaluator':<18}" + "".join(f"{s:>12}" for s in SCENARIOS))
    for name, m in med.items():
        print(f"{name:<18}" + "".join(f"{m[s]:>12,.0f}" if s in m else f"{'-':>12}" for s in SCENARIOS))
    ours = med.get("tusklang")
    if ours:
        print("\nours / peer (same scenario)")
        print(f"{'peer':<18}" + "".join(f"{s:>12}" for s in SCENARIOS))
        for name, m in med.items():
            if name == "tusklang":
                continue
            cells = [f"{ours[s] / m[s]:.1f}x" if s in m and s in ours else "-" for s in SCENARIOS]
            print(f"{name:<18}" + "".join(f"{c:>12}" for c in cells))
        if "bool" in ours and "bool now=" in ours:
            ratio = ours["bool now="] / ours["bool"]
            print(f"\nevaluate(..., now=datetime) / evaluate(...) on the bool flag: {ratio:.2f}x")
    all_rate, one_rate, count = evaluate_all_rates(max(1, args.n // 10), args.rounds)
    print(
        f"\nevaluate_all() on the seed snapshot ({count} flags and experiments, {max(1, args.n // 10):,} contexts): "
        f"{all_rate:,.0f} flags/s; evaluate() per flag: {one_rate:,.0f} flags/s; ratio {all_rate / one_rate:.2f}x"
    )


if __name__ == "__main__":
    main()
