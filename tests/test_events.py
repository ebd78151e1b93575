"""The event store and tracker: batching, drops, sampling, masking, exposure rules, init and purge."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

import tusklang
from tusklang.cli import main
from tusklang.evaluate import Client
from tusklang.events import (
    EventStore,
    EventStoreError,
    EventTracker,
    MaskingKeyError,
    StoreStats,
    experiment_counts,
    tracking_config,
)
from tusklang.events.schema import EVENT_COLUMNS, SCHEMA_VERSION

ROOT = Path(__file__).resolve().parent.parent
KEY = "k" * 32


def snapshot() -> dict[str, Any]:
    """A split flag, a rollout-only flag, a plain boolean, and an experiment bucketed by account_id."""
    bools = {"on": True, "off": False}
    return {
        "format": "tusklang.snapshot/1",
        "flags": {
            "plain": {
                "key": "plain",
                "type": "boolean",
                "variants": bools,
                "off_variant": "off",
                "default_variant": "on",
            },
            "gradual": {
                "key": "gradual",
                "type": "boolean",
                "variants": bools,
                "off_variant": "off",
                "default_variant": "off",
                "rules": [{"id": "r", "rollout": {"salt": "g", "percentage": 50000}, "serve": "on"}],
            },
            "colors": {
                "key": "colors",
                "type": "string",
                "variants": {"red": "red", "blue": "blue"},
                "off_variant": "red",
                "default_variant": "red",
                "rules": [{"id": "s", "split": {"salt": "c", "weights": [["red", 1], ["blue", 1]]}}],
            },
        },
        "experiments": {
            "exp": {
                "key": "exp",
                "type": "string",
                "variants": {"a": "a", "b": "b"},
                "off_variant": "a",
                "default_variant": "a",
                "bucket_by": "account_id",
                "rules": [
                    {
                        "id": "experiment",
                        "rollout": {"salt": "exp/traffic", "percentage": 50000},
                        "split": {"salt": "exp/split", "weights": [["a", 1], ["b", 1]]},
                    }
                ],
            },
        },
    }


def rows(store: EventStore, where: str = "1 = 1") -> list[dict[str, Any]]:
    store.flush()
    cols = list(EVENT_COLUMNS)
    found = store.query(f"SELECT {', '.join(cols)} FROM tusk_events WHERE {where} ORDER BY id")
    return [dict(zip(cols, r)) for r in found]


# --- exposures, evaluations, conversions ---------------------------------------------------------------


def test_exposure_only_for_variant_splits_with_the_evaluators_unit():
    snap = snapshot()
    with EventStore("sqlite:///:memory:") as store:
        client = Client(snap, tracker=EventTracker(store, snapshot=snap))
        probe = Client(snap)
        account = next(
            f"acct-{i}" for i in range(100) if probe.evaluate("exp", {"account_id": f"acct-{i}"}).reason == "SPLIT"
        )
        ctx = {"user_id": "u1", "account_id": account}
        results = {key: client.evaluate(key, ctx) for key in ("plain", "gradual", "colors", "exp")}
        # `gradual` answers SPLIT when its rollout admits u1, but serves no variant split: not an exposure.
        assert results["colors"].reason == "SPLIT"
        got = rows(store)
        assert [r["flag"] for r in got if r["kind"] == "evaluation"] == ["plain", "gradual", "colors", "exp"]
        exposures = [(r["flag"], r["variant"], r["unit_id"]) for r in got if r["kind"] == "exposure"]
        # The experiment buckets by account_id, so that is its exposure's unit.
        assert exposures == [("colors", results["colors"].variant, "u1"), ("exp", results["exp"].variant, account)]
        # Repeated evaluations write evaluation rows, not a second exposure.
        client.evaluate("colors", ctx)
        assert len(rows(store, "kind = 'exposure' AND flag = 'colors'")) == 1
        assert len(rows(store, "kind = 'evaluation' AND flag = 'colors'")) == 2


def test_experiment_exposes_units_in_the_traffic_only_and_conversions_are_recorded():
    snap = snapshot()
    with EventStore("sqlite:///:memory:") as store:
        client = Client(snap, tracker=EventTracker(store, snapshot=snap))
        admitted = 0
        for i in range(400):
            ctx = {"account_id": f"a{i}"}
            admitted += client.evaluate("exp", ctx).reason == "SPLIT"
            client.track("signup", {"user_id": f"a{i}"}, 5 if i % 2 else None)
        assert 150 < admitted < 250  # a 50% traffic gate
        assert len(rows(store, "kind = 'exposure'")) == admitted
        conversions = rows(store, "kind = 'conversion'")
        assert len(conversions) == 400
        assert {r["value"] for r in conversions} == {5.0, None}
        assert all(r["flag"] is None and r["event"] == "signup" and r["sample_rate"] == 1.0 for r in conversions)


def test_targeting_key_is_the_unit_when_the_bucket_attribute_is_absent():
    with EventStore("sqlite:///:memory:") as store:
        tracker = EventTracker(store, snapshot=snapshot())
        client = Client(snapshot(), tracker=tracker)
        client.evaluate("plain", {"targetingKey": "tk-1"})
        client.track("buy", {"targetingKey": "tk-1"})
        client.track("buy", {"country": "DE"})  # nobody to credit: not stored, counted
        assert [r["unit_id"] for r in rows(store)] == ["tk-1", "tk-1"]
        assert tracker.errors == 1


def test_only_configured_attributes_are_stored():
    with EventStore("sqlite:///:memory:") as store:
        client = Client(snapshot(), tracker=EventTracker(store, attributes=["country", "plan"]))
        ctx = {"user_id": "u1", "country": "DE", "email": "x@example.com", "plan": None, "tags": ["a"]}
        client.evaluate("plain", ctx)
        client.evaluate("plain", {"user_id": "u2", "email": "y@example.com"})
        got = rows(store)
        assert [r["attributes"] for r in got] == ['{"country":"DE"}', None]
        assert "example.com" not in json.dumps(got)


def test_tracker_never_raises_and_the_client_keeps_serving_after_close():
    store = EventStore("sqlite:///:memory:")
    tracker = EventTracker(store)
    client = Client(snapshot(), tracker=tracker)
    store.close()
    assert client.evaluate("plain", {"user_id": "u1"}).value is True  # store closed: event dropped
    client.evaluate("plain", {"user_id": {"not": "a string"}})
    client.track("buy", {"user_id": "u1"}, float("nan"))
    assert store.dropped == 3


# --- the queue ------------------------------------------------------------------------------------------


def test_full_queue_drops_and_counts_without_blocking_evaluation(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = EventStore(url, queue_size=100, batch_size=50, flush_interval=0.01)
    # Another connection holds the write lock, so the writer thread is stuck waiting on the database.
    blocker = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        client = Client(snapshot(), tracker=EventTracker(store))
        slowest = 0.0
        started = time.perf_counter()
        for i in range(5000):
            t0 = time.perf_counter()
            client.evaluate("plain", {"user_id": f"u{i}"})
            slowest = max(slowest, time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # The writer took up to batch_size rows before it blocked; everything beyond the bound was dropped.
    assert store.dropped >= 5000 - 100 - 50
    assert elapsed < 0.5, f"5000 evaluations took {elapsed:.3f}s with a blocked database"
    assert slowest < 0.05, f"one evaluation took {slowest * 1000:.1f} ms"
    store.close()
    with sqlite3.connect(tmp_path / "events.db") as db:
        written = db.execute("SELECT COUNT(*) FROM tusk_events").fetchone()[0]
        recorded = db.execute("SELECT SUM(dropped) FROM tusk_event_drops").fetchone()[0]
    assert recorded == store.dropped
    assert written + recorded == 5000


def test_close_flushes_everything_and_batches_are_written_in_the_background(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'events.db'}"
    with EventStore(url, batch_size=100, flush_interval=0.05) as store:
        client = Client(snapshot(), tracker=EventTracker(store))
        for i in range(250):
            client.evaluate("plain", {"user_id": f"u{i}"})
        deadline = time.monotonic() + 5
        while store.stats().written < 250 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.stats().written == 250  # without any flush() call
        for i in range(7):
            client.track("buy", {"user_id": f"u{i}"})
    with sqlite3.connect(tmp_path / "events.db") as db:
        assert db.execute("SELECT COUNT(*) FROM tusk_events").fetchone()[0] == 257


# --- sampling -------------------------------------------------------------------------------------------


def test_sampling_records_a_tenth_of_evaluations_but_every_exposure_and_conversion():
    n = 20_000
    with EventStore("sqlite:///:memory:") as store:
        tracker = EventTracker(store, snapshot=snapshot(), sampling_rate=0.1, rng=random.Random(7))
        client = Client(snapshot(), tracker=tracker)
        for i in range(n):
            ctx = {"user_id": f"u{i}"}
            client.evaluate("colors", ctx)
            if i % 10 == 0:
                client.track("buy", ctx)
        store.flush()
        counts = dict(store.query("SELECT kind, COUNT(*) FROM tusk_events GROUP BY kind"))
        rates = dict(store.query("SELECT kind, MIN(sample_rate) FROM tusk_events GROUP BY kind"))
    # Binomial(20000, 0.1): mean 2000, sd 42; the bound is about 4.5 sd.
    assert 1810 <= counts["evaluation"] <= 2190
    assert counts["exposure"] == n and counts["conversion"] == n // 10
    assert rates == {"evaluation": 0.1, "exposure": 1.0, "conversion": 1.0}


def test_sampling_rate_and_masking_come_from_the_seed_config(monkeypatch: pytest.MonkeyPatch):
    config = tusklang.loads((ROOT / "fixtures" / "seed" / "project.tsk").read_text())
    settings = tracking_config(config)
    assert settings.sampling_rate == 0.1 and settings.pii_masking is True
    assert settings.retention is not None and settings.retention.days == 90
    monkeypatch.delenv("TUSK_PII_KEY", raising=False)
    with EventStore("sqlite:///:memory:") as store:
        with pytest.raises(MaskingKeyError, match="TUSK_PII_KEY"):
            EventTracker(store, config=config)  # masking configured, no key: refuse to start
        monkeypatch.setenv("TUSK_PII_KEY", KEY)
        tracker = EventTracker(store, config=config, sampling_rate=1.0)
        assert tracker.sampling_rate == 0.1  # the config wins over the constructor's fallback
        assert tracker.pii_masking


# --- PII masking ----------------------------------------------------------------------------------------


def test_pii_masking_stores_keyed_hashes_that_still_join():
    snap = snapshot()
    with EventStore("sqlite:///:memory:") as store:
        tracker = EventTracker(store, snapshot=snap, pii_masking=True, pii_key=KEY)
        client = Client(snap, tracker=tracker)
        for i in range(50):
            ctx = {"user_id": f"user-{i}"}
            client.evaluate("colors", ctx)
            client.track("buy", ctx)
        got = rows(store)
        assert got and all("user-" not in json.dumps(r) for r in got)
        expected = hmac.new(KEY.encode(), b"user-0", hashlib.sha256).hexdigest()
        assert got[0]["unit_id"] == expected
        counts = experiment_counts(store, "colors", "buy")
        assert sum(u for u, _ in counts.arms.values()) == 50
        assert all(units == conversions for units, conversions in counts.arms.values())


def test_pii_masking_refuses_a_missing_or_short_key_and_unmasked_id_attributes(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TUSK_PII_KEY", raising=False)
    with EventStore("sqlite:///:memory:") as store:
        with pytest.raises(MaskingKeyError):
            EventTracker(store, pii_masking=True)
        with pytest.raises(MaskingKeyError, match="at least 16") as info:
            EventTracker(store, pii_masking=True, pii_key="short")
        # one error family: a TuskError with a code, still a ValueError for older callers
        assert isinstance(info.value, tusklang.TuskError) and isinstance(info.value, ValueError)
        assert info.value.code == "TSK257" and "error[TSK257]" in info.value.render()
        with pytest.raises(ValueError, match="user_id"):
            EventTracker(store, pii_masking=True, pii_key=KEY, attributes=["user_id"])


# --- tusk db init / purge -------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _init_twice(capsys: pytest.CaptureFixture[str], url: str) -> None:
    for _ in range(2):
        code, out, err = run(capsys, "db", "init", "--db", url, "--format", "json")
        assert code == 0, err
        assert json.loads(out)["schema_version"] == SCHEMA_VERSION == 2
    with EventStore(url, create=False) as store:
        assert store.query("SELECT version FROM tusk_schema") == [(2,)]
        store.put(("conversion", 1.0, None, None, None, "e", "u", None, 1.0, None))
    run(capsys, "db", "init", "--db", url)
    with EventStore(url) as store:  # init again, and a store's own init, keep the data
        assert store.query("SELECT COUNT(*) FROM tusk_events") == [(1,)]
        assert store.query("SELECT COUNT(*) FROM tusk_schema") == [(1,)]


def test_db_init_is_idempotent_on_sqlite(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    _init_twice(capsys, f"sqlite:///{tmp_path / 'e.db'}")


@pytest.mark.postgres
def test_db_init_is_idempotent_on_postgres(capsys: pytest.CaptureFixture[str], pg_events_url: str):
    _init_twice(capsys, pg_events_url)


def _purge_keeps_recent_rows(capsys: pytest.CaptureFixture[str], url: str) -> None:
    now = 1_714_521_600.0  # 2024-05-01T00:00:00Z
    day = 86_400.0
    times = [now - 200 * day, now - 91 * day, now - 90 * day, now - 89 * day, now - 1]
    with EventStore(url) as store:
        for t in times:
            store.put(("conversion", t, None, None, None, "buy", "u", None, 1.0, None))
    code, out, err = run(
        capsys, "db", "purge", "--db", url, "--retention", "90d", "--now", "2024-05-01T00:00:00Z", "--format", "json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["deleted"] == {"tusk_events": 2, "tusk_event_drops": 0}
    assert report["cutoff"] == "2024-02-01T00:00:00Z"
    with EventStore(url, create=False) as store:
        assert sorted(r[0] for r in store.query("SELECT occurred_at FROM tusk_events")) == times[2:]
    code, out, _ = run(capsys, "db", "purge", "--db", url, "--retention", "90 days", "--now", "2024-05-01")
    assert code == 0 and out.startswith("deleted 0 events")


def test_purge_deletes_old_rows_only_on_sqlite(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    _purge_keeps_recent_rows(capsys, f"sqlite:///{tmp_path / 'e.db'}")


@pytest.mark.postgres
def test_purge_deletes_old_rows_only_on_postgres(capsys: pytest.CaptureFixture[str], pg_events_url: str):
    _purge_keeps_recent_rows(capsys, pg_events_url)


def test_purge_reads_the_retention_from_the_config(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'e.db'}"
    assert run(capsys, "db", "init", "--db", url)[0] == 0
    code, out, err = run(
        capsys,
        "db",
        "purge",
        "--db",
        url,
        "--config",
        str(ROOT / "fixtures/seed/project.tsk"),
        "--now",
        "2024-05-01T00:00:00Z",
        "--format",
        "json",
    )
    assert code == 0, err
    assert json.loads(out)["retention_seconds"] == 90 * 86_400


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["db", "purge", "--db", "sqlite:///x.db"], "--retention"),
        (["db", "purge", "--db", "sqlite:///x.db", "--retention", "ninety"], "expected a period"),
        (["db", "purge", "--db", "sqlite:///x.db", "--retention", "0d"], "longer than zero"),
        (["db", "purge", "--db", "sqlite:///x.db", "--retention", "1d", "--now", "soon"], "ISO-8601"),
        (["db", "init", "--db", "mysql://h/db"], "unsupported database URL scheme"),
    ],
)
def test_db_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv)
    assert code == 2 and fragment in err
    assert not (tmp_path / "x.db").exists()  # nothing was created by a refused command


def test_purge_without_tables_says_to_init(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    missing = tmp_path / "missing.db"
    code, _, err = run(capsys, "db", "purge", "--db", f"sqlite:///{missing}", "--retention", "1d")
    assert code == 2 and "no such file" in err and not missing.exists()
    sqlite3.connect(tmp_path / "empty.db").close()
    code, _, err = run(capsys, "db", "purge", "--db", f"sqlite:///{tmp_path / 'empty.db'}", "--retention", "1d")
    assert code == 2 and "tusk db init" in err


def test_connection_errors_never_show_the_password():
    with pytest.raises(EventStoreError) as caught:
        EventStore("postgresql://tusk:pw-Zq8-secret@127.0.0.1:1/nothing")
    assert "pw-Zq8-secret" not in str(caught.value) and "tusk:***@" in str(caught.value)


def test_db_help_ends_with_an_example(capsys: pytest.CaptureFixture[str]):
    for sub in ("init", "purge"):
        with pytest.raises(SystemExit):
            main(["db", sub, "--help"])
        assert "example:\n  tusk db " + sub in capsys.readouterr().out


# --- counting per the contract -----------------------------------------------------------------------------


def _counting_rows(store: EventStore) -> None:
    e = "exposure"
    for row in [
        (e, 10.0, "exp", "a", "SPLIT", None, "u1", None, 1.0, None),
        (e, 11.0, "exp", "b", "SPLIT", None, "u2", None, 1.0, None),
        (e, 12.0, "exp", "b", "SPLIT", None, "u3", None, 1.0, None),
        (e, 13.0, "exp", "a", "SPLIT", None, "u2", None, 1.0, None),  # u2 moved after a config change
        (e, 14.0, "exp", "a", "SPLIT", None, "u1", None, 1.0, None),  # a repeat
        (e, 15.0, "other", "a", "SPLIT", None, "u4", None, 1.0, None),  # another experiment
        ("conversion", 9.0, None, None, None, "buy", "u3", None, 1.0, None),  # before u3's exposure
        ("conversion", 20.0, None, None, None, "buy", "u1", 5.0, 1.0, None),
        ("conversion", 21.0, None, None, None, "buy", "u1", 5.0, 1.0, None),  # one unit converts once
        ("conversion", 22.0, None, None, None, "signup", "u2", None, 1.0, None),  # another metric
        ("conversion", 23.0, None, None, None, "buy", "u4", None, 1.0, None),  # never exposed to exp
        ("evaluation", 24.0, "exp", "a", "SPLIT", None, "u5", None, 0.1, None),  # evaluations are no exposure
    ]:
        store.put(row)  # type: ignore[arg-type]
    store.flush()


def _check_counts(store: EventStore) -> None:
    _counting_rows(store)
    counts = experiment_counts(store, "exp", "buy")
    assert counts.arms == {"a": (1, 1), "b": (2, 0)}
    assert counts.mixed_units == 1
    assert experiment_counts(store, "exp", "signup").arms == {"a": (1, 0), "b": (2, 1)}


def test_counting_follows_the_contract_on_sqlite():
    with EventStore("sqlite:///:memory:") as store:
        _check_counts(store)


@pytest.mark.postgres
def test_counting_follows_the_contract_on_postgres(pg_events_url: str):
    with EventStore(pg_events_url) as store:
        _check_counts(store)


def test_a_failing_database_loses_events_but_never_the_caller(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = tmp_path / "events.db"
    with EventStore(f"sqlite:///{path}", flush_interval=0.01) as store:
        client = Client(snapshot(), tracker=EventTracker(store))
        with sqlite3.connect(path) as other:
            other.execute("DROP TABLE tusk_events")
        for i in range(20):
            assert client.evaluate("plain", {"user_id": f"u{i}"}).value is True
        store.flush()
        assert store.stats().failed == 20 and store.stats().written == 0
    assert "20 events lost" in caplog.text and "no such table" in caplog.text


@pytest.mark.postgres
def test_a_killed_connection_is_replaced_and_nothing_is_lost(
    pg_events_url: str, postgres_url: str, caplog: pytest.LogCaptureFixture
):
    with EventStore(pg_events_url, flush_interval=10) as store:
        tracker = EventTracker(store)
        client = Client(snapshot(), tracker=tracker)
        client.evaluate("plain", {"user_id": "before"})
        store.flush()
        pid = store.query("SELECT pg_backend_pid()")[0][0]
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for i in range(30):
            client.evaluate("plain", {"user_id": f"after-{i}"})
        store.flush()  # fails on the dead session, puts the batch back
        assert "30 events will be retried" in caplog.text
        store.flush()  # reconnects and writes it
        assert store.stats() == StoreStats(queued=0, written=31, dropped=0, failed=0)
        assert store.query("SELECT COUNT(*) FROM tusk_events") == [(31,)]
        assert store.query("SELECT pg_backend_pid()")[0][0] != pid


def test_flush_returns_while_other_threads_keep_queueing(tmp_path: Path) -> None:
    import threading

    stop = threading.Event()
    url = f"sqlite:///{tmp_path / 'events.db'}"
    with EventStore(url, batch_size=500, flush_interval=60, queue_size=20_000) as store:
        produced = [0]

        def produce() -> None:
            i = 0
            while not stop.is_set():
                store.put(("evaluation", time.time(), "f", "on", "SPLIT", None, f"u{i}", None, 1.0, None))
                i += 1
            produced[0] = i

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        try:
            time.sleep(0.2)
            queued = store.stats().queued
            started = time.perf_counter()
            store.flush()  # must write what was queued, not chase the producer forever
            assert time.perf_counter() - started < 20
            assert store.stats().written >= queued
        finally:
            stop.set()
            producer.join(timeout=5)
    # every event was either written or counted as dropped, and the drops were recorded
    with sqlite3.connect(tmp_path / "events.db") as check:
        written = check.execute("SELECT COUNT(*) FROM tusk_events").fetchone()[0]
        recorded = check.execute("SELECT COALESCE(SUM(dropped), 0) FROM tusk_event_drops").fetchone()[0]
    assert written == store.stats().written and recorded == store.stats().dropped
    assert written + recorded == produced[0]  # nothing lost without being counted


def test_the_callers_now_is_the_time_of_every_row_it_causes():
    snap = snapshot()
    when = "2024-03-01T12:00:00+00:00"
    epoch = 1709294400.0
    with EventStore("sqlite:///:memory:") as store:
        client = Client(snap, tracker=EventTracker(store, snapshot=snap))
        ctx = {"user_id": "u1", "account_id": "acct-1"}
        client.evaluate("colors", ctx, now=when)
        results = client.evaluate_all(ctx, now=when)
        client.track("purchase", ctx, 9.5, now=when)
        got = rows(store)
        assert len([r for r in got if r["kind"] == "evaluation"]) == 1 + len(results)
        assert {r["occurred_at"] for r in got} == {epoch}
        client.evaluate("plain", ctx, now="not a time")  # unreadable: the result errs, the row gets the clock
        assert rows(store, "flag = 'plain' AND occurred_at != 1709294400.0")
