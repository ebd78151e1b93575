"""Issue 17: rollouts bound to flags, the override writes of their decisions, restart safety, the lease,
canary-vs-stable comparisons and per-side metrics from the event store. Real Redis and databases."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tusklang.cli import main
from tusklang.delivery import CanaryController, Sample, load_policy, simulate
from tusklang.delivery.binding import Binding, resolve_binding
from tusklang.delivery.controller import Action, Status
from tusklang.delivery.db import Database
from tusklang.delivery.event_metrics import EventMetricSource
from tusklang.delivery.gates import Verdict, judge_compare
from tusklang.delivery.lease import Lease, LeaseHeld
from tusklang.delivery.state import RolloutStore, tagged_reason
from tusklang.delivery.traffic import intent_for, sync
from tusklang.diagnostics import TuskError
from tusklang.evaluate import Client
from tusklang.evaluate.overlay import apply_overrides
from tusklang.overrides import OverrideStore
from tusklang.overrides.writer import VersionConflict, current_version, find_write, write_override
from tusklang.schema.delivery import CompareCheck, Direction, FlagBinding
from tusklang.snapshot import load_snapshot

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SCALE = 100_000


def _flag(key: str, rules: list[dict[str, Any]], variants: dict[str, Any] | None = None) -> dict[str, Any]:
    variants = variants or {"off": False, "on": True}
    default = "off" if "off" in variants else next(iter(variants))
    return {
        "key": key,
        "type": "boolean" if variants == {"off": False, "on": True} else "string",
        "variants": variants,
        "off_variant": default,
        "default_variant": default,
        "rules": rules,
    }


STAFF = {"id": "staff", "conditions": [{"op": "ends_with", "attribute": "email", "value": "@example.com"}]}
SNAPSHOT = {
    "format": "tusklang.snapshot/1",
    "flags": {
        # Exceptions first, then the general rule with the rollout: the rollout rule is the one moved.
        "checkout_v2": _flag(
            "checkout_v2",
            [
                {**STAFF, "serve": "on"},
                {"id": "general", "rollout": {"salt": "checkout_v2/rollout", "percentage": 25_000}, "serve": "on"},
            ],
        ),
        "two_gates": _flag(
            "two_gates",
            [
                {**STAFF, "rollout": {"salt": "a", "percentage": 50_000}, "serve": "on"},
                {"id": "everyone", "rollout": {"salt": "b", "percentage": 10_000}, "serve": "on"},
            ],
        ),
        "no_gate": _flag("no_gate", [{**STAFF, "serve": "on"}, {"id": "everyone", "serve": "on"}]),
        # As the compiler lowers a flag with its own gated rule: the main rule `rollout` comes last.
        "compiled": _flag(
            "compiled",
            [
                {
                    "id": "override/on",
                    "conditions": [{"op": "in", "attribute": "user_id", "values": ["u1"]}],
                    "serve": "on",
                },
                {**STAFF, "rollout": {"salt": "c", "percentage": 5_000}, "serve": "on"},
                {"id": "rollout", "rollout": {"salt": "compiled/rollout", "percentage": 25_000}, "serve": "on"},
            ],
        ),
        "no_rules": _flag("no_rules", []),
        "split_flag": _flag(
            "split_flag",
            [
                {
                    "id": "experiment",
                    "split": {"salt": "split_flag/split", "weights": [["control", 50_000], ["treatment", 50_000]]},
                }
            ],
            {"control": "control", "treatment": "treatment", "other": "other"},
        ),
    },
}


@pytest.fixture
def snapshot() -> Any:
    return load_snapshot(json.dumps(SNAPSHOT))


@pytest.fixture
def snapshot_file(tmp_path: Path) -> Path:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(SNAPSHOT), encoding="utf-8")
    return path


@pytest.fixture
def overrides(redis_url: str, prefix: str) -> Iterator[OverrideStore]:
    store = OverrideStore.from_url(redis_url, prefix)
    yield store
    store.close()


# Binding: which rule, how ---------------------------------------------------------------------------


def test_the_rule_a_binding_moves_is_well_defined(snapshot: Any) -> None:
    def rule(key: str, **extra: str) -> Binding:
        return resolve_binding(snapshot, FlagBinding(key=key, **extra), "p:")

    # The only rule with a rollout gate, not the exception list before it.
    assert rule("checkout_v2") == Binding("checkout_v2", "general", "rollout", "on", "off", "p:")
    # The compiler's main rule (targeting + rollout_percentage), though another rule has a gate too.
    assert rule("compiled").rule == "rollout"
    # No rule has a gate: the last rule, the general targeting.
    assert rule("no_gate").rule == "everyone"
    # Named explicitly: that one.
    assert rule("two_gates", rule="staff").rule == "staff"
    assert rule("checkout_v2", rule="staff").rule == "staff"
    # A split rule is moved by its weights, between the two named variants.
    split = rule("split_flag", canary_variant="treatment", stable_variant="control")
    assert (split.mode, split.rule) == ("split", "experiment")
    assert split.patch(20) == {"weights": {"experiment": [["control", 80], ["treatment", 20]]}}
    assert rule("checkout_v2").patch(12.5) == {"rollout": {"general": 12.5}}


@pytest.mark.parametrize(
    ("key", "extra", "message"),
    [
        ("two_gates", {}, "has 2 rules with a rollout (staff, everyone)"),
        ("checkout_v3", {}, "no flag or experiment `checkout_v3`"),
        ("checkout_v2", {"rule": "generl"}, "has no rule `generl`"),
        ("split_flag", {}, "splits traffic between variants"),
        ("split_flag", {"canary_variant": "treatment", "stable_variant": "treatment"}, "must differ"),
        ("split_flag", {"canary_variant": "treatmnt", "stable_variant": "control"}, "is not a variant"),
        ("checkout_v2", {"canary_variant": "off"}, "serves `on`, so the canary"),
        ("no_rules", {}, "has no rules"),
    ],
)
def test_a_binding_that_cannot_be_made_is_tsk823(snapshot: Any, key: str, extra: dict[str, str], message: str) -> None:
    with pytest.raises(TuskError) as caught:
        resolve_binding(snapshot, FlagBinding(key=key, **extra), "p:")
    assert caught.value.first.code == "TSK823"
    assert message in caught.value.first.message
    if key == "checkout_v3":
        assert caught.value.first.hint == "did you mean `checkout_v2`?"


def test_a_split_binding_keeps_units_on_the_canary_as_it_grows(snapshot: Any) -> None:
    binding = resolve_binding(
        snapshot, FlagBinding(key="split_flag", canary_variant="treatment", stable_variant="control"), "p:"
    )
    users = [f"u{i}" for i in range(4000)]
    seen: dict[float, set[str]] = {}
    for percent in (10, 20, 50):
        client = Client(apply_overrides(snapshot, {"split_flag": binding.patch(percent)}))
        seen[percent] = {u for u in users if client.evaluate("split_flag", {"user_id": u}).variant == "treatment"}
        assert abs(len(seen[percent]) / len(users) - percent / 100) < 0.03
    assert seen[10] <= seen[20] <= seen[50]


# Policy and comparisons -----------------------------------------------------------------------------


def _policy(**health: Any) -> dict[str, Any]:
    checks = {"metrics": ["error_rate"], "thresholds": {"error_rate": 0.05}, "evaluation_period": "5 minutes"}
    checks.update(health)
    return {
        "canary_deployments": {
            "traffic_split": {"canary": 10, "stable": 90},
            "health_checks": checks,
            "rollback": {"failure_limit": 1},
        }
    }


def test_comparisons_in_the_policy(fixtures_dir: Path) -> None:
    seed = json.loads((fixtures_dir / "delivery" / "seed_policy.json").read_text())["progressive_delivery"]
    assert load_policy(seed).require_canary().comparisons == ()  # the seed: absolute thresholds only
    policy = load_policy(_policy(thresholds={}, compare={"error_rate": {"max_ratio": 1.5}})).require_canary()
    assert policy.checks == () and policy.comparisons == (
        CompareCheck(metric="error_rate", direction=Direction.LOWER, max_ratio=1.5, max_difference=None),
    )
    for health, message in [
        ({"thresholds": {}}, "has no entry in thresholds or compare"),
        ({"compare": {"error_rate": {}}}, "needs max_ratio, max_difference or both"),
        ({"compare": {"error_rate": {"max_ratio": 0.5}}}, "greater than or equal to 1"),
        ({"compare": {"latency": {"max_difference": 5}}}, "compare.latency is set but 'latency' is not listed"),
        ({"events": {"latency": {"event": "x"}}}, "events.latency is set but"),
    ]:
        with pytest.raises(TuskError) as caught:
            load_policy(_policy(**health))
        assert message in caught.value.first.message, (health, caught.value.first.message)


def _samples(target: str, metric: str, values: list[float], count: int = 1) -> list[Sample]:
    return [Sample(T0 + timedelta(seconds=i), target, metric, v, count) for i, v in enumerate(values)]


def test_judge_compare_bounds_in_both_directions() -> None:
    lower = CompareCheck(metric="error_rate", direction=Direction.LOWER, max_ratio=2.0, max_difference=0.05)
    canary = _samples("canary", "error_rate", [0.03] * 5)
    stable = _samples("stable", "error_rate", [0.01] * 5)
    (result,) = judge_compare([lower], canary, stable, 5)
    assert (
        result.verdict is Verdict.FAIL and result.ratio == pytest.approx(3) and result.difference == pytest.approx(0.02)
    )
    assert "3x worse, want <= 2x" in result.explain()
    looser = lower.model_copy(update={"max_ratio": 4.0})
    assert judge_compare([looser], canary, stable, 5)[0].verdict is Verdict.PASS
    # Higher is better: the canary serving fewer requests is worse.
    higher = CompareCheck(metric="throughput", direction=Direction.HIGHER, max_ratio=1.2, max_difference=None)
    got = judge_compare(
        [higher], _samples("canary", "throughput", [80] * 5), _samples("stable", "throughput", [100] * 5), 5
    )[0]
    assert got.verdict is Verdict.FAIL and got.ratio == pytest.approx(1.25)
    # Fewer than min_samples on either side: no data, whatever the values.
    thin = judge_compare([lower], canary, stable[:2], 5)[0]
    assert thin.verdict is Verdict.NO_DATA and "5 canary / 2 stable" in thin.explain()
    # An aggregate sample counts for the observations it stands for.
    assert (
        judge_compare(
            [lower], _samples("canary", "error_rate", [0.01], 500), _samples("stable", "error_rate", [0.01], 900), 100
        )[0].verdict
        is Verdict.PASS
    )
    # A zero baseline: any canary error is infinitely worse by ratio (hence max_difference for rates).
    ratio_only = CompareCheck(metric="error_rate", direction=Direction.LOWER, max_ratio=2.0, max_difference=None)
    zero = judge_compare(
        [ratio_only], _samples("canary", "error_rate", [0.001] * 5), _samples("stable", "error_rate", [0.0] * 5), 5
    )[0]
    assert zero.verdict is Verdict.FAIL and "infinitely worse" in zero.explain() and zero.to_dict()["ratio"] is None


def _window(canary: float, stable: float, start: datetime = T0) -> list[Sample]:
    out = []
    for i in range(10):
        when = start + timedelta(seconds=20 * i + 1)
        out += [Sample(when, "canary", "error_rate", canary), Sample(when, "stable", "error_rate", stable)]
    return out


@pytest.mark.parametrize(
    ("health", "canary", "stable", "action"),
    [
        # Under the absolute threshold, but nine times stable's error rate: the canary is the problem.
        ({"compare": {"error_rate": {"max_ratio": 1.5}}}, 0.045, 0.005, Action.ROLLBACK),
        # An incident on both sides: the threshold alone rolls back (the seed's rule) ...
        ({}, 0.2, 0.2, Action.ROLLBACK),
        # ... a comparison alone sees a canary no worse than stable and advances.
        ({"thresholds": {}, "compare": {"error_rate": {"max_ratio": 1.5}}}, 0.2, 0.2, Action.ADVANCE),
        ({"compare": {"error_rate": {"max_ratio": 1.5}}}, 0.011, 0.010, Action.ADVANCE),
    ],
)
def test_the_controller_judges_canary_against_stable(
    health: dict[str, Any], canary: float, stable: float, action: Action
) -> None:
    policy = load_policy(_policy(**health))
    result = simulate(policy, _window(canary, stable), start=T0)
    assert result.decisions[0].action is action, result.decisions[0].reason


# The one writer ----------------------------------------------------------------------------------


def test_write_override_is_compare_and_set_attributed_and_merging(overrides: OverrideStore) -> None:
    first = write_override(
        overrides, "f", {"rollout": {"r": 10}}, actor="ctl", reason="why 1", op="rollout-start", expect_version=0
    )
    assert first.version == 1 and current_version(overrides, "f") == 1
    # An operator's kill switch in between; the controller's next write keeps it (per-field merge).
    write_override(overrides, "f", {"enabled": False}, actor="alice", reason="INC-1", op="disable")
    with pytest.raises(VersionConflict):
        write_override(
            overrides, "f", {"rollout": {"r": 20}}, actor="ctl", reason="why 2", op="rollout-advance", expect_version=1
        )
    assert len(overrides.audit("f")) == 2  # the refused write wrote nothing
    written = write_override(
        overrides, "f", {"rollout": {"r": 20}}, actor="ctl", reason="why 2", op="rollout-advance", expect_version=2
    )
    assert written.new is not None and written.new["enabled"] is False and written.new["rollout"] == {"r": 20}
    entry = find_write(overrides, "f", "why 2", after_version=0)
    assert entry is not None and (entry.version, entry.actor, entry.op) == (3, "ctl", "rollout-advance")
    assert find_write(overrides, "f", "why 2", after_version=3) is None  # only entries after the bound
    # A malformed record (written by hand) is replaced whole, by compare-and-set on "malformed" (None).
    overrides.client.hset(overrides.hash_key, "g", "{not json")
    assert current_version(overrides, "g") is None
    told: list[str] = []
    write_override(
        overrides,
        "g",
        {"rollout": {"r": 5}},
        actor="ctl",
        reason="fix",
        op="x",
        expect_version=None,
        on_malformed=told.append,
    )
    assert overrides.get("g") is not None and told


# Sync: the decision log and the override layer ----------------------------------------------------


@pytest.fixture
def rollout(tmp_path: Path, snapshot: Any, overrides: OverrideStore, prefix: str) -> Iterator[dict[str, Any]]:
    db = Database(f"sqlite:///{tmp_path / 'rollout.db'}")
    store = RolloutStore(db)
    store.ensure_schema()
    policy = _policy()
    controller = CanaryController(load_policy(policy))
    binding = resolve_binding(snapshot, FlagBinding(key="checkout_v2"), prefix)
    state, decision = controller.start("co", T0)
    from dataclasses import replace

    state = replace(state, binding=binding.to_dict())
    state = store.commit(state, policy, decision, intent_for(binding, "co", decision, overrides))
    yield {"db": db, "store": store, "state": state, "policy": policy, "controller": controller, "binding": binding}
    db.close()


def _decide(ctx: dict[str, Any], overrides: OverrideStore, method: str = "abort", minutes: int = 1) -> Any:
    controller, store = ctx["controller"], ctx["store"]
    state, _ = store.load("co")
    new, decision = getattr(controller, method)(state, T0 + timedelta(minutes=minutes))
    return store.commit(new, ctx["policy"], decision, intent_for(ctx["binding"], "co", decision, overrides))


def _percents(overrides: OverrideStore) -> list[Any]:
    return [(e.op, e.new["rollout"]["general"] if e.new else None) for e in overrides.audit("checkout_v2")]


def test_a_pending_write_is_written_once(rollout: dict[str, Any], overrides: OverrideStore) -> None:
    store = rollout["store"]
    assert store.latest_write("co").status == "pending"
    done = sync(store, overrides, "co", "checkout_v2")
    assert done.outcome == "written" and store.latest_write("co").status == "applied"
    assert sync(store, overrides, "co", "checkout_v2").outcome == "current"
    assert _percents(overrides) == [("rollout-start", 10)]
    record = overrides.get("checkout_v2")
    assert record is not None and record["reason"] == tagged_reason("rollout started", "co", done.write.decision_id)
    assert record["updated_by"] == "tusk-rollout:co"


def test_a_write_made_before_a_crash_is_found_not_repeated(rollout: dict[str, Any], overrides: OverrideStore) -> None:
    store = rollout["store"]
    write = store.latest_write("co")
    # The controller wrote, then died before marking it: the audit stream has it.
    write_override(overrides, write.flag, write.patch, actor=write.actor, reason=write.reason, op=write.op)
    done = sync(store, overrides, "co", "checkout_v2")
    assert done.outcome == "found" and done.version == 1
    assert _percents(overrides) == [("rollout-start", 10)]


def test_the_last_decision_wins(rollout: dict[str, Any], overrides: OverrideStore) -> None:
    store = rollout["store"]
    _decide(rollout, overrides, "pause")
    _decide(rollout, overrides, "abort", minutes=2)  # two more decisions, none synced (a crash, Redis down)
    done = sync(store, overrides, "co", "checkout_v2")
    assert done.outcome == "written" and done.write.op == "rollout-abort"
    assert [w.status for w in store.writes("co")] == ["superseded", "superseded", "applied"]
    assert _percents(overrides) == [("rollout-abort", 0)]


def test_an_operator_change_in_between_is_kept(
    rollout: dict[str, Any],
    overrides: OverrideStore,
    snapshot_file: Path,
    redis_url: str,
    prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = rollout["store"]
    sync(store, overrides, "co", "checkout_v2")
    args = [
        "flags",
        "disable",
        "checkout_v2",
        "--snapshot",
        str(snapshot_file),
        "--redis",
        redis_url,
        "--prefix",
        prefix,
    ]
    assert main(args) == 0
    _decide(rollout, overrides, "abort")
    assert sync(store, overrides, "co", "checkout_v2").outcome == "written"
    record = overrides.get("checkout_v2")
    assert record is not None and record["enabled"] is False and record["rollout"] == {"general": 0}


def test_concurrent_syncs_write_a_decision_once(
    tmp_path: Path, rollout: dict[str, Any], redis_url: str, prefix: str
) -> None:
    outcomes: list[str] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(4)

    def one() -> None:
        try:
            with Database(f"sqlite:///{tmp_path / 'rollout.db'}") as db:
                store = RolloutStore(db)
                own = OverrideStore.from_url(redis_url, prefix)
                gate.wait()
                outcomes.append(sync(store, own, "co", "checkout_v2").outcome)
                own.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert outcomes.count("written") == 1 and set(outcomes) <= {"written", "found", "current"}
    store = OverrideStore.from_url(redis_url, prefix)
    assert len(store.audit("checkout_v2")) == 1
    store.close()


# The controller process: killed after its write, restarted; the lease --------------------------------

POLICY = {
    "progressive_delivery": {
        **_policy(),
        "canary_deployments": {**_policy()["canary_deployments"], "flag": "checkout_v2"},
    }
}


def _start(tmp_path: Path, db: str, snapshot_file: Path, redis_url: str, prefix: str) -> None:
    config = tmp_path / "delivery.json"
    config.write_text(json.dumps(POLICY), encoding="utf-8")
    args = ["rollout", "start", "co", "--config", str(config), "--snapshot", str(snapshot_file)]
    assert main([*args, "--redis", redis_url, "--prefix", prefix, "--rollout-db", db, "--now", T0.isoformat()]) == 0
    with Database(db) as conn:
        from tusklang.delivery.metrics import SqlMetricSource

        source = SqlMetricSource(conn)
        for i in range(3):
            for target in ("canary", "stable"):
                source.record(Sample(T0 + timedelta(minutes=1, seconds=i), target, "error_rate", 0.01))


def _run(db: str, redis_url: str, *extra: str, halt: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "TUSK_ROLLOUT_TEST_HALT"}
    if halt:
        env["TUSK_ROLLOUT_TEST_HALT"] = halt
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tusklang.cli",
            "rollout",
            "run",
            "co",
            "--rollout-db",
            db,
            "--redis",
            redis_url,
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_a_controller_killed_after_its_write_does_not_write_again(
    tmp_path: Path, snapshot_file: Path, redis_url: str, prefix: str, overrides: OverrideStore
) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    _start(tmp_path, db, snapshot_file, redis_url, prefix)
    later = (T0 + timedelta(minutes=5)).isoformat()
    first = _run(db, redis_url, "--now", later, "--lease-ttl", "1", halt="after-write:advance")
    assert first.stderr is not None
    line = first.stderr.readline()
    assert "halted after write of decision #2 (advance 20%)" in line, line
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    with Database(db) as conn:
        assert RolloutStore(conn).latest_write("co").status == "pending"
    assert _percents(overrides) == [("rollout-start", 10), ("rollout-advance", 20)]  # written, not marked
    second = _run(db, redis_url, "--now", later, "--wait")
    _out, err = second.communicate(timeout=30)
    assert second.returncode == 0, err
    assert "found already written (version 2)" in err
    assert _percents(overrides) == [("rollout-start", 10), ("rollout-advance", 20)]  # not written twice
    with Database(db) as conn:
        assert RolloutStore(conn).latest_write("co").status == "applied"


@pytest.fixture(params=["sqlite", "postgresql"])
def lease_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lease.db'}"
    else:
        yield request.getfixturevalue("pg_events_url")


def test_one_controller_per_rollout(lease_db: str) -> None:
    with Database(lease_db) as db_a, Database(lease_db) as db_b:
        a = Lease(db_a, "co", ttl=30, holder="a")
        a.ensure_schema()
        b = Lease(db_b, "co", ttl=30, holder="b")
        a.acquire()
        with pytest.raises(LeaseHeld) as caught:
            b.acquire()
        assert caught.value.first.code == "TSK822" and "(a)" in caught.value.first.message
        assert Lease(db_b, "other", ttl=30, holder="b").try_acquire()  # another rollout is free
        a.renew()
        # --wait: b takes over as soon as a's lease ends (released here; a SIGKILLed one expires).
        taken = threading.Event()

        def wait_for_it() -> None:
            b.acquire(wait=True, poll=0.05)
            taken.set()

        waiter = threading.Thread(target=wait_for_it)
        waiter.start()
        time.sleep(0.3)
        assert not taken.is_set()
        a.release()
        waiter.join(timeout=10)
        assert taken.is_set()
        # An expired lease is taken over, and its old holder finds out at its next renewal.
        c = Lease(db_a, "short", ttl=0.2, holder="c")
        c.acquire()
        time.sleep(0.4)
        d = Lease(db_b, "short", ttl=30, holder="d")
        assert d.try_acquire()
        with pytest.raises(LeaseHeld, match="lease was taken by another one"):
            c.renew()


def test_a_second_tusk_rollout_run_is_refused(tmp_path: Path, snapshot_file: Path, redis_url: str, prefix: str) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    _start(tmp_path, db, snapshot_file, redis_url, prefix)
    first = _run(db, redis_url, "--tick", "0.2")
    try:
        deadline = time.monotonic() + 20
        while True:
            with Database(db) as conn:
                lease = Lease(conn, "co")
                lease.ensure_schema()
                if lease.current() is not None:
                    break
            assert time.monotonic() < deadline, "the first controller took no lease"
            time.sleep(0.1)
        second = _run(db, redis_url, "--once")
        _, err = second.communicate(timeout=30)
        assert second.returncode == 1 and "error[TSK822]" in err and "driven by another controller" in err, err
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=10)
    # SIGTERM stops the controller cleanly and frees the lease: the next one need not wait for it.
    assert first.returncode == 0
    with Database(db) as conn:
        assert Lease(conn, "co").current() is None


def test_bound_rollout_commands_need_the_snapshot_and_redis(
    tmp_path: Path,
    snapshot_file: Path,
    redis_url: str,
    prefix: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    db = f"sqlite:///{tmp_path / 'r.db'}"
    config = tmp_path / "delivery.json"
    config.write_text(json.dumps(POLICY), encoding="utf-8")
    base = ["rollout", "start", "co", "--config", str(config), "--rollout-db", db]
    assert main(base) == 2 and "give --snapshot" in capsys.readouterr().err
    assert main([*base, "--snapshot", str(snapshot_file)]) == 2 and "give --redis URL" in capsys.readouterr().err
    assert main([*base, "--snapshot", str(snapshot_file), "--flag", "two_gates", "--redis", redis_url]) == 1
    assert "TSK823" in capsys.readouterr().err
    assert main([*base, "--snapshot", str(snapshot_file), "--redis", redis_url, "--prefix", prefix]) == 0
    capsys.readouterr()
    # A second rollout may not move the same flag while the first is in flight.
    other = ["rollout", "start", "co2", "--config", str(config), "--rollout-db", db, "--snapshot", str(snapshot_file)]
    assert main([*other, "--redis", redis_url, "--prefix", prefix]) == 1
    assert "already moved by rollout 'co'" in capsys.readouterr().err
    assert main(["rollout", "run", "co", "--rollout-db", db, "--once"]) == 2
    assert "give --redis URL" in capsys.readouterr().err
    unbound = tmp_path / "unbound.json"
    unbound.write_text(json.dumps({"progressive_delivery": _policy()}), encoding="utf-8")
    assert main(["rollout", "start", "x", "--config", str(unbound), "--rollout-db", db, "--rule", "r"]) == 2
    assert "--rule without a flag" in capsys.readouterr().err


# Per-side metrics from the event store --------------------------------------------------------------


def test_per_side_metrics_come_from_evaluation_events(pg_events_url: str, snapshot: Any) -> None:
    from tusklang.evaluate.sources import StaticOverrides
    from tusklang.events import EventStore, EventTracker

    binding = resolve_binding(snapshot, FlagBinding(key="checkout_v2"), "p:")
    start = datetime.now(UTC) - timedelta(seconds=1)
    store = EventStore(pg_events_url)
    client = Client(
        snapshot,
        tracker=EventTracker(store, snapshot=snapshot),
        overrides=StaticOverrides({"checkout_v2": binding.patch(30)}),
    )
    served: dict[str, str] = {}
    for i in range(3000):
        user = f"user-{i}"
        served[user] = client.evaluate("checkout_v2", {"user_id": user}).variant or ""
    # Errors: one canary user in 8, one stable user in 40; latencies 500 ms on the canary, 300 on stable.
    for i, (user, variant) in enumerate(served.items()):
        if i % (8 if variant == "on" else 40) == 0:
            client.track("checkout_error", {"user_id": user})
        client.track("checkout_latency", {"user_id": user}, 500.0 if variant == "on" else 300.0)
    store.close()
    end = datetime.now(UTC) + timedelta(seconds=1)

    block = _policy(
        metrics=["error_rate", "latency"],
        thresholds={},
        compare={"error_rate": {"max_difference": 0.02}, "latency": {"max_ratio": 1.2}},
        directions={"latency": "lower"},
        events={
            "error_rate": {"event": "checkout_error"},
            "latency": {"event": "checkout_latency", "aggregate": "mean"},
        },
        min_samples=100,
    )
    policy = load_policy(block)
    metrics = dict(policy.require_canary().health_checks.events)
    with Database(pg_events_url) as db:
        source = EventMetricSource(db, "checkout_v2", {"canary": "on", "stable": "off"}, metrics)
        canary = source.fetch("canary", ["error_rate", "latency"], start, end)
        stable = source.fetch("stable", ["error_rate", "latency"], start, end)
    on = [u for u, v in served.items() if v == "on"]
    off = [u for u, v in served.items() if v == "off"]
    assert abs(len(on) / 3000 - 0.3) < 0.03
    errors_on = sum(1 for i, (u, v) in enumerate(served.items()) if v == "on" and i % 8 == 0)
    errors_off = sum(1 for i, (u, v) in enumerate(served.items()) if v == "off" and i % 40 == 0)
    by = {(s.target, s.metric): s for s in canary + stable}
    assert by["canary", "error_rate"].count == len(on) and by["canary", "error_rate"].value == pytest.approx(
        errors_on / len(on)
    )
    assert by["stable", "error_rate"].count == len(off) and by["stable", "error_rate"].value == pytest.approx(
        errors_off / len(off)
    )
    assert (by["canary", "latency"].value, by["canary", "latency"].count) == (pytest.approx(500.0), len(on))
    assert by["stable", "latency"].value == pytest.approx(300.0)
    # The controller judges them: the canary is 10 points and 1.67x worse than stable: rollback.
    controller = CanaryController(policy)
    state, _ = controller.start("co", start)
    from dataclasses import replace

    state = replace(state, window_start=start)
    new, decision = controller.step(state, canary + stable, start + timedelta(minutes=5))
    assert decision is not None and decision.action is Action.ROLLBACK and new.status is Status.ROLLED_BACK
    assert "error_rate canary" in decision.reason and "latency canary 500 vs stable 300" in decision.reason


# The seed project: the controller changes the seed flag's rollout_percentage, and a Client follows -----


def test_a_client_watching_overrides_follows_the_controller_on_the_seed_flag(
    tmp_path: Path, fixtures_dir: Path, redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tusklang.overrides import RedisOverrides

    seed = fixtures_dir / "seed" / "snapshot.json"
    config = fixtures_dir / "delivery" / "seed_policy.tsk"  # the seed's own progressive_delivery block
    db = f"sqlite:///{tmp_path / 'r.db'}"
    common = ["--rollout-db", db, "--redis", redis_url]
    client = Client.from_file(str(seed), overrides=RedisOverrides(redis_url, prefix=prefix))
    try:
        start = ["rollout", "start", "checkout", "--config", str(config), "--flag", "new_checkout_flow"]
        assert main([*start, "--snapshot", str(seed), "--prefix", prefix, *common]) == 0
        # Bound to the compiler's rule `rollout`, whose gate is the flag's rollout_percentage (25 in the seed).
        assert "rollout of rule `rollout`" in capsys.readouterr().err
        base = {"environment": "production", "region": "us-east", "account_age": 3, "feature_usage": 9}
        users = [{**base, "feedback_score": 4.5, "user_id": f"user-{i}"} for i in range(2000)]

        def share() -> float:
            return sum(client.evaluate("new_checkout_flow", u).variant == "on" for u in users) / len(users)

        deadline = time.monotonic() + 2
        while abs(share() - 0.10) > 0.03:  # the start's 10% replaces the compiled 25%
            assert time.monotonic() < deadline, share()
            time.sleep(0.02)
        admitted = next(u for u in users if client.evaluate("new_checkout_flow", u).variant == "on")
        decided = time.monotonic()
        assert main(["rollout", "abort", "checkout", *common]) == 0
        while client.evaluate("new_checkout_flow", admitted).variant != "off":
            assert time.monotonic() - decided < 1.0, "the Client did not follow the abort within a second"
            time.sleep(0.005)
        assert share() == 0.0
    finally:
        client.close()


def test_a_bound_blue_green_switch_and_flip_back_go_through_the_overrides(
    tmp_path: Path, snapshot_file: Path, redis_url: str, prefix: str, overrides: OverrideStore
) -> None:
    block = copy.deepcopy(POLICY)
    block["progressive_delivery"]["blue_green_deployments"] = {"flag": "checkout_v2", "rollback_window": "10 minutes"}
    config = tmp_path / "bluegreen.json"
    config.write_text(json.dumps(block), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'r.db'}"
    common = ["--rollout-db", db, "--redis", redis_url]

    def at(minutes: float) -> list[str]:
        return ["--now", (T0 + timedelta(minutes=minutes)).isoformat()]

    def record(minutes: float, value: float) -> None:
        with Database(db) as conn:
            from tusklang.delivery.metrics import SqlMetricSource

            SqlMetricSource(conn).record(Sample(T0 + timedelta(minutes=minutes), "canary", "error_rate", value))

    start = ["rollout", "start", "web", "--strategy", "bluegreen", "--config", str(config)]
    assert main([*start, "--snapshot", str(snapshot_file), "--prefix", prefix, *common, *at(0)]) == 0
    record(1, 0.01)
    assert main(["rollout", "run", "web", *common, *at(5)]) == 0  # verified: all traffic switches
    record(7, 0.3)
    assert main(["rollout", "run", "web", *common, *at(8)]) == 0  # a failure inside the window: flip back
    assert _percents(overrides) == [("rollout-start", 0), ("rollout-advance", 100), ("rollout-rollback", 0)]
    assert overrides.audit("checkout_v2")[-1].reason.startswith("rollback: failure inside the rollback window")


def test_a_redis_that_lost_its_data_gets_the_last_decision_again(
    rollout: dict[str, Any], overrides: OverrideStore
) -> None:
    store = rollout["store"]
    assert sync(store, overrides, "co", "checkout_v2").outcome == "written"
    # `tusk flags clear` is a write (the counter grows): the controller leaves it alone ...
    write_override(overrides, "checkout_v2", None, actor="alice", reason="clear", op="clear")
    assert sync(store, overrides, "co", "checkout_v2").outcome == "current"
    assert overrides.get("checkout_v2") is None
    # ... but a Redis restarted without its data (counter back to 0) gets the last decision again.
    overrides.client.delete(overrides.hash_key, overrides.version_key, overrides.audit_key)
    again = sync(store, overrides, "co", "checkout_v2")
    assert again.outcome == "rewritten" and again.version == 1
    assert overrides.get("checkout_v2")["rollout"] == {"general": 10}
    assert sync(store, overrides, "co", "checkout_v2").outcome == "current"


def test_simulate_compares_with_the_stable_rows_of_the_csv(
    fixtures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(fixtures_dir / "delivery" / "compare_policy.json")
    metrics = str(fixtures_dir / "delivery" / "canary_worse_than_stable.csv")
    assert main(["rollout", "simulate", config, "--metrics", metrics, "--format", "json"]) == 0
    replay = json.loads(capsys.readouterr().out)
    # Under the absolute threshold all along; from minute 10 four times stable's error rate: two failing
    # intervals (failure_limit 2), then rollback.
    assert [(d["action"], d["canary_percent"]) for d in replay["decisions"]] == [
        ("advance", 20),
        ("advance", 30),
        ("hold", 30),
        ("rollback", 0),
    ]
    assert "error_rate canary 0.04 vs stable 0.01 (4x worse, want <= 2x" in replay["decisions"][-1]["reason"]
    assert "error_rate mean" not in replay["decisions"][-1]["reason"]  # the threshold passed: not a cause


def test_an_unreachable_override_layer_records_no_decision(
    tmp_path: Path, snapshot_file: Path, redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"redis://:secret@127.0.0.1:{probe.getsockname()[1]}/0"
    db = f"sqlite:///{tmp_path / 'r.db'}"
    _start(tmp_path, db, snapshot_file, redis_url, prefix)
    capsys.readouterr()
    later = ["--now", (T0 + timedelta(minutes=5)).isoformat()]
    assert main(["rollout", "abort", "co", "--rollout-db", db, "--redis", dead, *later]) == 2
    err = capsys.readouterr().err
    assert "nothing was recorded" in err and "secret" not in err
    assert main(["rollout", "run", "co", "--rollout-db", db, "--redis", dead, *later]) == 2
    assert "no decision made" in capsys.readouterr().err
    with Database(db) as conn:
        store = RolloutStore(conn)
        assert [d["action"] for d in store.history("co")] == ["start"]
        state, _ = store.load("co")
        assert state.status is Status.PROGRESSING


@pytest.mark.parametrize("command", ["rollout", "serve"])
def test_sigterm_raised_inside_a_database_statement_is_not_a_database_error(command: str, tmp_path: Path) -> None:
    # The SIGTERM handler raises wherever the process is; inside a statement, the database layer turns any
    # Exception into a database error (exit 2): the controller once exited 2 on SIGTERM in CI this way.
    import importlib

    from tusklang.db.write import connect_write

    terminated = importlib.import_module(f"tusklang.cli.{command}")._Terminated

    class SignalArrives:
        def __conform__(self, protocol: object) -> None:  # sqlite3 adapts the parameter inside the statement
            raise terminated

    db = connect_write(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with pytest.raises(terminated):
            db.execute("SELECT ?", (SignalArrives(),))
    finally:
        db.close()
