"""20,000 simulated users through Client + EventTracker into PostgreSQL, counted per the event contract and
decided by `tusklang.experiments.decision`: the true winner is found, A/A declares nothing, SRM is caught.

The experiment's analysis is the seed's: Bayesian at 95%. An arm wins when its probability to be best
reaches 1 - 0.05 / arms (0.975 for two) and its expected loss is small; the bar is shared among the
arms because with "P(best) >= 0.95" alone any of two identical arms could cross it, and a two-arm A/A
test named a false winner in 36 of 400 runs. With 10,000 units per arm, 10% vs 12% is a z of about 4.5,
far above that bar.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from tusklang.evaluate import Client
from tusklang.events import EventStore, EventTracker, experiment_counts
from tusklang.experiments.decision import DecisionConfig, decide

EXP = "checkout_test"
METRIC = "purchase"
USERS = 20_000


def snapshot(weights: tuple[int, int] = (50_000, 50_000)) -> dict[str, Any]:
    return {
        "format": "tusklang.snapshot/1",
        "experiments": {
            EXP: {
                "key": EXP,
                "type": "string",
                "variants": {"control": "control", "treatment": "treatment"},
                "off_variant": "control",
                "default_variant": "control",
                "rules": [
                    {
                        "id": "experiment",
                        "split": {
                            "salt": f"{EXP}/split",
                            "weights": [["control", weights[0]], ["treatment", weights[1]]],
                        },
                    }
                ],
                "analysis": {"statistical_significance": 0.95, "bayesian_analysis": True, "minimum_sample_size": 1000},
            }
        },
    }


def configured(snap: dict[str, Any]) -> tuple[DecisionConfig, dict[str, float]]:
    """What the report would read from the snapshot: the analysis config and the split weights."""
    experiment = snap["experiments"][EXP]
    weights = {name: float(w) for name, w in experiment["rules"][0]["split"]["weights"]}
    return DecisionConfig.from_config(experiment["analysis"]), weights


def simulate(
    client: Client, rates: dict[str, float], seed: int, prefix: str, untracked: Client | None = None, lose: float = 0.0
) -> dict[str, tuple[int, int]]:
    """Each user sees the experiment once and converts with its variant's rate; returns the true counts.

    With ``untracked`` and ``lose``, that share of treatment users is served by a code path without the
    tracker (a logging bug): they are assigned but never exposed, which is what SRM must catch.
    """
    rng = random.Random(seed)
    units: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    for i in range(USERS):
        ctx = {"user_id": f"{prefix}{i}"}
        variant = (untracked or client).variant(EXP, ctx)
        assert variant is not None
        if untracked is not None and not (variant == "treatment" and rng.random() < lose):
            client.evaluate(EXP, ctx)
        units[variant] += 1
        if rng.random() < rates[variant]:
            client.track(METRIC, ctx, round(rng.uniform(10, 90), 2))
            converted[variant] += 1
    return {v: (units[v], converted[v]) for v in units}


def run_through(url: str, rates: dict[str, float], seed: int, **kw: Any) -> tuple[Any, dict[str, tuple[int, int]]]:
    snap = snapshot()
    with EventStore(url, batch_size=5000) as store:
        client = Client(snap, tracker=EventTracker(store, snapshot=snap))
        truth = simulate(client, rates, seed, f"s{seed}-", **kw)
        store.flush()
        counts = experiment_counts(store, EXP, METRIC)
    return counts, truth


@pytest.mark.postgres
def test_ab_through_postgres_finds_the_true_winner(pg_events_url: str):
    counts, truth = run_through(pg_events_url, {"control": 0.10, "treatment": 0.12}, seed=11)
    assert counts.arms == truth  # the contract's counting recovers exactly what happened
    assert counts.mixed_units == 0
    assert sum(u for u, _ in counts.arms.values()) == USERS
    config, weights = configured(snapshot())
    decision = decide(counts.arms, "control", weights, config)
    assert (decision.status, decision.winner) == ("winner", "treatment"), decision.why
    assert decision.srm is not None and not decision.srm.mismatch
    # The frequentist rule (z-test) reaches the same verdict on the same counts.
    frequentist = decide(counts.arms, "control", weights, DecisionConfig(minimum_sample_size=1000, bayesian=False))
    assert (frequentist.status, frequentist.winner) == ("winner", "treatment"), frequentist.why


@pytest.mark.postgres
def test_aa_through_postgres_declares_no_winner(pg_events_url: str):
    counts, truth = run_through(pg_events_url, {"control": 0.10, "treatment": 0.10}, seed=3)
    assert counts.arms == truth
    config, weights = configured(snapshot())
    decision = decide(counts.arms, "control", weights, config)
    assert decision.status == "no_winner_yet", decision.why


def test_aa_declares_no_winner_in_at_least_95_of_100_runs():
    """Counts in memory (same assignment by the evaluator, same decision function), 100 seeds."""
    client = Client(snapshot())
    config, weights = configured(snapshot())
    winners = []
    for seed in range(100):
        rng = random.Random(seed)
        units: Counter[str] = Counter()
        converted: Counter[str] = Counter()
        for i in range(USERS):
            variant = client.variant(EXP, {"user_id": f"aa{seed}-{i}"})
            assert variant is not None
            units[variant] += 1
            converted[variant] += rng.random() < 0.10
        arms = {v: (units[v], converted[v]) for v in units}
        decision = decide(arms, "control", weights, config)
        assert decision.status != "problem", decision.why  # a fair split must never look like SRM
        if decision.status == "winner":
            winners.append(seed)
    assert len(winners) <= 5, f"false winners in A/A runs: seeds {winners}"


def test_lost_exposures_in_one_arm_are_flagged_as_srm():
    snap = snapshot()
    config, weights = configured(snap)
    with EventStore("sqlite:///:memory:", batch_size=5000) as store:
        client = Client(snap, tracker=EventTracker(store, snapshot=snap))
        truth = simulate(client, {"control": 0.1, "treatment": 0.12}, 5, "srm-", untracked=Client(snap), lose=0.06)
        store.flush()
        counts = experiment_counts(store, EXP, METRIC)
    assert counts.arms["control"][0] == truth["control"][0]
    assert counts.arms["treatment"][0] < truth["treatment"][0]
    decision = decide(counts.arms, "control", weights, config)
    assert decision.status == "problem" and decision.srm is not None and decision.srm.mismatch, decision.why
    assert "Sample ratio mismatch" in decision.why
    # The same users with exposures intact are not flagged: the check is about the loss, not the data size.
    clean = decide(truth, "control", weights, config)
    assert clean.srm is not None and not clean.srm.mismatch
