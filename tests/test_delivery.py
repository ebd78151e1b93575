"""Progressive delivery: policy rules, the canary state machine, blue/green, persistence and the CLI."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tusklang.cli import main
from tusklang.delivery import (
    Action,
    BlueGreenController,
    CanaryController,
    InMemoryMetricSource,
    RolloutStore,
    Sample,
    SqlMetricSource,
    Status,
    drive,
    load_policy,
    parse_duration,
    simulate,
)
from tusklang.delivery.db import Database
from tusklang.delivery.simulate import read_samples_csv
from tusklang.diagnostics import TuskError

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HEALTHY = {"error_rate": 0.01, "response_time": 300.0, "throughput": 5000.0}


@pytest.fixture
def seed_block(fixtures_dir: Path) -> dict:
    return json.loads((fixtures_dir / "delivery" / "seed_policy.json").read_text())["progressive_delivery"]


def stream(minutes: int, values: Callable[[int], dict[str, float]], target: str = "canary") -> list[Sample]:
    """One sample per metric per minute; ``values(minute)`` gives that minute's metric values."""
    out = []
    for minute in range(minutes):
        for metric, value in values(minute).items():
            out.append(Sample(T0 + timedelta(minutes=minute, seconds=30), target, metric, value))
    return out


def with_rollback(block: dict, **rollback: object) -> dict:
    block = copy.deepcopy(block)
    block["canary_deployments"]["rollback"].update(rollback)
    return block


# Durations and policy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5 minutes", 300),
        ("10 minutes", 600),
        ("30 seconds", 30),
        ("1 hour", 3600),
        ("2 days", 172800),
        ("2 weeks", 1209600),
    ],
)
def test_durations_in_the_documented_form_parse(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["5m", "five minutes", "1.5 hours", "5", "-5 minutes", "5 fortnights", ""])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_seed_block_loads_with_directions_defaulted_by_name(seed_block: dict) -> None:
    policy = load_policy(seed_block)
    canary = policy.require_canary()
    directions = {c.metric: c.direction.value for c in canary.checks}
    assert directions == {"error_rate": "lower", "response_time": "lower", "throughput": "higher"}
    assert canary.ladder == (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
    assert canary.rollback.failure_limit == 3
    assert canary.rollback.cooldown_period == timedelta(minutes=10)


def test_unknown_metric_without_direction_is_a_policy_error(seed_block: dict) -> None:
    block = copy.deepcopy(seed_block)
    checks = block["canary_deployments"]["health_checks"]
    checks["metrics"].append("queue_depth")
    checks["thresholds"]["queue_depth"] = 50
    with pytest.raises(TuskError, match=r"queue_depth.*no default direction"):
        load_policy(block)
    checks["directions"] = {"queue_depth": "lower"}
    assert load_policy(block).require_canary().checks[-1].direction.value == "lower"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("health_checks", "evaluation_period"), "5 mins", "not a duration"),
        (("traffic_split", "stable"), 80, "must be 100"),
        (("steps",), [25, 20, 100], "rise strictly"),
        (("steps",), [25, 50], "last of steps must be 100"),
        (("gates",), {"nonexistent_gate": 50}, "names no gate"),
        (("surprise",), True, "Extra inputs are not permitted"),
    ],
)
def test_policy_mistakes_are_diagnostics(seed_block: dict, path: tuple[str, ...], value: object, message: str) -> None:
    block = copy.deepcopy(seed_block)
    node = block["canary_deployments"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(TuskError, match=message) as caught:
        load_policy(block)
    assert caught.value.first.code == "TSK800"


# The canary state machine through the simulation ------------------------------------------------------


def test_healthy_canary_goes_from_10_to_100_in_nine_intervals(seed_block: dict) -> None:
    result = simulate(load_policy(seed_block), stream(60, lambda m: HEALTHY))
    actions = [d.action for d in result.decisions]
    assert actions == [Action.ADVANCE] * 8 + [Action.PROMOTE]
    assert [d.canary_percent for d in result.decisions] == [20, 30, 40, 50, 60, 70, 80, 90, 100]
    # One decision per evaluation period: the evaluation period is used, not a hard-coded step.
    gaps = {b.time - a.time for a, b in zip(result.decisions, result.decisions[1:])}
    assert gaps == {timedelta(minutes=5)}
    assert result.final.status is Status.PROMOTED


def test_explicit_steps_are_followed(seed_block: dict) -> None:
    block = copy.deepcopy(seed_block)
    block["canary_deployments"]["steps"] = [25, 50, 100]
    result = simulate(load_policy(block), stream(60, lambda m: HEALTHY))
    assert [d.canary_percent for d in result.decisions] == [25, 50, 100]


def test_high_throughput_is_healthy_not_a_rollback(seed_block: dict) -> None:
    """NOTES.md 8: the sketch rolled back a canary whose throughput beat its (minimum) threshold."""
    values = {**HEALTHY, "throughput": 1_000_000.0}
    result = simulate(load_policy(seed_block), stream(60, lambda m: values))
    assert result.final.status is Status.PROMOTED
    assert Action.ROLLBACK not in [d.action for d in result.decisions]


def test_low_throughput_fails(seed_block: dict) -> None:
    values = {**HEALTHY, "throughput": 20.0}
    result = simulate(load_policy(seed_block), stream(30, lambda m: values))
    assert result.final.status is Status.ROLLED_BACK
    assert "throughput mean 20 (want >= 100" in result.decisions[-1].reason


def test_climbing_error_rate_rolls_back_after_the_failure_limit(seed_block: dict) -> None:
    def climbing(minute: int) -> dict[str, float]:
        return {**HEALTHY, "error_rate": 0.01 if minute < 10 else 0.2}

    for limit in (1, 2, 4):
        result = simulate(load_policy(with_rollback(seed_block, failure_limit=limit)), stream(60, climbing))
        actions = [d.action for d in result.decisions]
        assert actions[:2] == [Action.ADVANCE, Action.ADVANCE]
        assert actions[2:] == [Action.HOLD] * (limit - 1) + [Action.ROLLBACK]
        assert result.final.canary_percent == 0
        assert result.final.status is Status.ROLLED_BACK
        assert result.decisions[-1].checks[0].mean == pytest.approx(0.2)


def test_breach_tolerance_is_the_seed_threshold(seed_block: dict) -> None:
    """threshold = 0.1: up to 10% of an interval's samples may breach; more fails the interval."""

    def spikes(every: int) -> Callable[[int], dict[str, float]]:
        return lambda m: {**HEALTHY, "response_time": 9000.0 if m % every == 0 else 300.0}

    policy = load_policy(seed_block)
    # Ten samples per interval, one breaching: 10% is not more than 10% -> healthy.
    one_in_ten = simulate(load_policy(_period(seed_block, "10 minutes")), stream(100, spikes(10)))
    assert one_in_ten.final.status is Status.PROMOTED
    # One in five breaching (20%) -> every interval fails.
    one_in_five = simulate(policy, stream(60, spikes(5)))
    assert one_in_five.final.status is Status.ROLLED_BACK


def _period(block: dict, period: str) -> dict:
    block = copy.deepcopy(block)
    block["canary_deployments"]["health_checks"]["evaluation_period"] = period
    return block


def test_silence_holds_and_never_rolls_back_or_advances(seed_block: dict) -> None:
    # Data for the first 7 minutes, then an hour of silence, then a final healthy sample stream.
    samples = stream(7, lambda m: HEALTHY) + [
        s for s in stream(90, lambda m: HEALTHY) if s.time >= T0 + timedelta(minutes=70)
    ]
    result = simulate(load_policy(seed_block), samples)
    # The clock starts at the first sample (minute 0:30); windows ending after 12:00 hold no data.
    silent = [d for d in result.decisions if T0 + timedelta(minutes=12) < d.time <= T0 + timedelta(minutes=70)]
    assert silent and {d.action for d in silent} == {Action.HOLD}
    assert all("not enough data" in d.reason for d in silent)
    assert {d.canary_percent for d in silent} == {30}
    # When data returns the rollout moves on from where it held: silence left no failure behind.
    assert Action.ROLLBACK not in [d.action for d in result.decisions]
    assert result.final.canary_percent == 70 and result.final.consecutive_failures == 0


def test_min_samples_turns_a_thin_interval_into_no_data(seed_block: dict) -> None:
    block = copy.deepcopy(seed_block)
    block["canary_deployments"]["health_checks"]["min_samples"] = 10
    result = simulate(load_policy(block), stream(30, lambda m: {**HEALTHY, "error_rate": 0.9}))
    assert {d.action for d in result.decisions} == {Action.HOLD}
    assert result.final.status is Status.PROGRESSING


def test_a_flapping_metric_never_reaches_the_consecutive_limit(seed_block: dict) -> None:
    def flapping(minute: int) -> dict[str, float]:
        bad = (minute // 5) % 2 == 1  # alternate healthy and failing 5-minute intervals
        return {**HEALTHY, "error_rate": 0.3 if bad else 0.01}

    result = simulate(load_policy(with_rollback(seed_block, failure_limit=2)), stream(120, flapping))
    assert Action.ROLLBACK not in [d.action for d in result.decisions]
    assert max(d.consecutive_failures for d in result.decisions) == 1
    # Failing intervals hold the split: it never moves on them.
    for before, decision in zip(result.decisions, result.decisions[1:]):
        if decision.action is Action.HOLD:
            assert decision.canary_percent == before.canary_percent


def test_automatic_rollback_off_pauses_instead(seed_block: dict) -> None:
    result = simulate(
        load_policy(with_rollback(seed_block, automatic=False)),
        stream(60, lambda m: {**HEALTHY, "error_rate": 0.5}),
    )
    assert result.final.status is Status.PAUSED
    assert result.final.canary_percent == 10
    assert "automatic rollback is off" in result.decisions[-1].reason


def test_a_gate_guards_its_step(seed_block: dict) -> None:
    block = copy.deepcopy(seed_block)
    block["canary_deployments"]["gates"] = {"business_gate": 50}
    low_conversion = {**HEALTHY, "conversion_rate": 0.01, "revenue": 5000.0}
    result = simulate(load_policy(block), stream(60, lambda m: low_conversion))
    assert max(d.canary_percent for d in result.decisions) == 40
    held = [d for d in result.decisions if d.gate == "business_gate"]
    assert held and all(d.action is Action.HOLD for d in held)
    assert "conversion_rate mean 0.01 (want >= 0.02" in held[0].reason
    good = {**HEALTHY, "conversion_rate": 0.05, "revenue": 5000.0}
    assert simulate(load_policy(block), stream(60, lambda m: good)).final.status is Status.PROMOTED


# Manual transitions, cooldown and restarts --------------------------------------------------------------


def test_cooldown_blocks_an_immediate_retry(seed_block: dict) -> None:
    controller = CanaryController(load_policy(seed_block))
    result = simulate(load_policy(seed_block), stream(30, lambda m: {**HEALTHY, "error_rate": 0.5}))
    rolled_back = result.final
    assert rolled_back.cooldown_until == result.decisions[-1].time + timedelta(minutes=10)
    with pytest.raises(TuskError, match="cooldown lasts until"):
        controller.start("simulation", rolled_back.cooldown_until - timedelta(seconds=1), rolled_back)
    state, _ = controller.start("simulation", rolled_back.cooldown_until, rolled_back)
    assert state.status is Status.PROGRESSING and state.canary_percent == 10


def test_pause_resume_promote_abort(seed_block: dict) -> None:
    controller = CanaryController(load_policy(seed_block))
    source = InMemoryMetricSource(stream(60, lambda m: HEALTHY))
    state, _ = controller.start("app", T0)
    state, _ = controller.pause(state, T0 + timedelta(minutes=1))
    assert drive(controller, state, source, T0 + timedelta(minutes=20)) == (state, None)
    state, _ = controller.resume(state, T0 + timedelta(minutes=20))
    state, decision = drive(controller, state, source, T0 + timedelta(minutes=25))
    assert decision is not None and decision.action is Action.ADVANCE
    promoted, _ = controller.promote(state, T0 + timedelta(minutes=26))
    assert promoted.canary_percent == 100 and promoted.status is Status.PROMOTED
    aborted, decision = controller.abort(state, T0 + timedelta(minutes=26))
    assert aborted.canary_percent == 0 and decision.action is Action.ABORT
    with pytest.raises(TuskError, match="already rolled_back"):
        controller.abort(aborted, T0 + timedelta(minutes=27))


def test_restart_mid_rollout_resumes_at_the_same_step(seed_block: dict, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rollout.db'}"
    samples = stream(60, lambda m: HEALTHY)

    def controller_process(until_minute: int, start: bool) -> list[Action]:
        """A fresh database connection, store and controller object, as after a restart."""
        policy = load_policy(seed_block)
        with Database(url) as db:
            source, store = SqlMetricSource(db), RolloutStore(db)
            source.ensure_schema()
            store.ensure_schema()
            if start:
                state, decision = CanaryController(policy).start("checkout", T0)
                store.commit(state, seed_block, decision)
                for s in samples:
                    source.record(s)
            actions = []
            for minute in range(1, until_minute + 1):
                state, raw = store.load("checkout")  # type: ignore[misc]
                controller = CanaryController(load_policy(raw))
                new, decision = drive(controller, state, source, T0 + timedelta(minutes=minute))
                if decision is not None:
                    store.commit(new, raw, decision)
                    actions.append(decision.action)
            return actions

    assert controller_process(17, start=True) == [Action.ADVANCE] * 3
    with Database(url) as db:
        loaded = RolloutStore(db).load("checkout")
        assert loaded is not None
        assert (loaded[0].canary_percent, loaded[0].step_index) == (40, 3)
    # "Killed" at minute 17; the new process continues at 40% with the next window ending at minute 20.
    assert controller_process(60, start=False) == [Action.ADVANCE] * 5 + [Action.PROMOTE]
    with Database(url) as db:
        history = RolloutStore(db).history("checkout", limit=100)
    assert [h["action"] for h in history] == ["start"] + ["advance"] * 8 + ["promote"]
    assert history[1]["checks"][0]["threshold"] == 0.05
    assert history[1]["checks"][2]["direction"] == "higher"


def test_a_stale_controller_cannot_overwrite_a_newer_state(seed_block: dict, tmp_path: Path) -> None:
    policy = load_policy(seed_block)
    controller = CanaryController(policy)
    with Database(f"sqlite:///{tmp_path / 'r.db'}") as db:
        store = RolloutStore(db)
        store.ensure_schema()
        state, decision = controller.start("app", T0)
        store.commit(state, seed_block, decision)
        loaded, _ = store.load("app")  # type: ignore[misc]
        paused, decision = controller.pause(loaded, T0)
        store.commit(paused, seed_block, decision)
        with pytest.raises(TuskError, match="changed by another controller"):
            store.commit(*controller.abort(loaded, T0)[:1], seed_block, decision)


# Blue/green ---------------------------------------------------------------------------------------------


def _switched(seed_block: dict) -> tuple[BlueGreenController, object, InMemoryMetricSource]:
    controller = BlueGreenController(load_policy(seed_block))
    state, _ = controller.start("web", T0)
    assert state.canary_percent == 0
    verify = InMemoryMetricSource(stream(5, lambda m: HEALTHY))
    state, decision = drive(controller, state, verify, T0 + timedelta(minutes=5))
    assert decision is not None and decision.action is Action.ADVANCE and state.canary_percent == 100
    return controller, state, verify


def test_bluegreen_flips_back_on_a_failure_inside_the_window(seed_block: dict) -> None:
    controller, state, _ = _switched(seed_block)
    bad = InMemoryMetricSource([Sample(T0 + timedelta(minutes=7), "canary", "error_rate", 0.4)])
    state, decision = drive(controller, state, bad, T0 + timedelta(minutes=8))
    assert decision is not None and decision.action is Action.ROLLBACK
    assert state.canary_percent == 0 and state.status is Status.ROLLED_BACK


def test_bluegreen_does_not_flip_back_after_the_window(seed_block: dict) -> None:
    controller, state, _ = _switched(seed_block)
    ok = InMemoryMetricSource(stream(10, lambda m: HEALTHY))
    state, decision = drive(controller, state, ok, T0 + timedelta(minutes=10, seconds=1))
    assert decision is not None and decision.action is Action.PROMOTE
    late_failure = InMemoryMetricSource([Sample(T0 + timedelta(minutes=11), "canary", "error_rate", 0.4)])
    assert drive(controller, state, late_failure, T0 + timedelta(minutes=12)) == (state, None)
    assert state.canary_percent == 100


def test_bluegreen_failed_verification_never_switches(seed_block: dict) -> None:
    controller = BlueGreenController(load_policy(seed_block))
    state, _ = controller.start("web", T0)
    bad = InMemoryMetricSource(stream(5, lambda m: {**HEALTHY, "response_time": 5000.0}))
    silent = InMemoryMetricSource([])
    held, decision = drive(controller, state, silent, T0 + timedelta(minutes=5))
    assert decision is not None and decision.action is Action.HOLD and held.canary_percent == 0
    state, decision = drive(controller, state, bad, T0 + timedelta(minutes=5))
    assert decision is not None and decision.action is Action.ROLLBACK and state.canary_percent == 0


# CSV and CLI ------------------------------------------------------------------------------------------


def test_malformed_csv_names_every_bad_line(fixtures_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "rollout",
            "simulate",
            str(fixtures_dir / "delivery" / "seed_policy.json"),
            "--metrics",
            str(fixtures_dir / "delivery" / "malformed.csv"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "malformed.csv:3: unknown target 'canry'" in err
    assert "malformed.csv:4: bad time 'yesterday'" in err
    assert "malformed.csv:5: value 'lots' is not a number" in err


def test_csv_header_is_required() -> None:
    with pytest.raises(TuskError, match="header must be timestamp,target,metric,value"):
        read_samples_csv("time,target,metric,value\n", "x.csv")


def test_simulate_json_output(fixtures_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "rollout",
            "simulate",
            str(fixtures_dir / "delivery" / "seed_policy.json"),
            "--metrics",
            str(fixtures_dir / "delivery" / "climbing_errors.csv"),
            "--format",
            "json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [d["action"] for d in out["decisions"]] == ["advance", "advance", "hold", "hold", "rollback"]
    assert set(out["decisions"][0]) == {"time", "action", "canary_percent", "reason"}
    assert out["final"]["status"] == "rolled_back" and out["final"]["canary_percent"] == 0


def test_cli_record_run_status_round_trip(
    fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    config = str(fixtures_dir / "delivery" / "seed_policy.json")
    assert main(["rollout", "start", "app", "--config", config, "--db", db, "--now", "2024-05-01T12:00:00Z"]) == 0
    for metric, value in HEALTHY.items():
        args = [
            "--target",
            "canary",
            "--metric",
            metric,
            "--value",
            str(value),
            "--time",
            "2024-05-01T12:01:00Z",
        ]
        assert main(["rollout", "record", "--db", db, *args]) == 0
    assert main(["rollout", "run", "app", "--db", db, "--now", "2024-05-01T12:05:00Z"]) == 0
    capsys.readouterr()
    assert main(["rollout", "status", "app", "--db", db, "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["state"]["canary_percent"] == 20 and status["state"]["status"] == "progressing"
    assert [d["action"] for d in status["decisions"]] == ["start", "advance"]
    assert status["decisions"][1]["checks"][0]["mean"] == pytest.approx(0.01)
    assert main(["rollout", "abort", "app", "--db", db]) == 0
    capsys.readouterr()
    assert main(["rollout", "start", "app", "--config", config, "--db", db]) == 1
    assert "cooldown lasts until" in capsys.readouterr().err


def test_cli_record_rejects_a_bad_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    args = ["--target", "canary", "--metric", "error_rate", "--value", "0.1", "--time", "noon"]
    assert main(["rollout", "record", "--db", db, *args]) == 2
    assert "not an ISO 8601 time" in capsys.readouterr().err


def test_the_seed_tusklang_block_is_the_policy(fixtures_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tusklang.delivery.simulate import policy_from_text

    tsk = fixtures_dir / "delivery" / "seed_policy.tsk"
    _policy, raw = policy_from_text(tsk.read_text(), str(tsk))
    expected = json.loads((fixtures_dir / "delivery" / "seed_policy.json").read_text())
    assert raw == expected["progressive_delivery"]
    code = main(
        [
            "rollout",
            "simulate",
            str(tsk),
            "--metrics",
            str(fixtures_dir / "delivery" / "healthy.csv"),
            "--format",
            "json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["final"]["status"] == "promoted" and len(out["decisions"]) == 9
