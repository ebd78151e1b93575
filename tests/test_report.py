"""`tusk experiment report`: counts from the event store (per the contract) and the numbers built on them."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from tusklang.cli import main
from tusklang.experiments import stats

ROOT = Path(__file__).resolve().parent.parent

# The event-store contract's DDL (docs: /work/shared/spec events schema), portable to both databases
# except the id column, which PostgreSQL generates.
DDL = """
CREATE TABLE IF NOT EXISTS tusk_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tusk_events (
    id          {id},
    kind        TEXT NOT NULL,
    occurred_at DOUBLE PRECISION NOT NULL,
    flag        TEXT,
    variant     TEXT,
    reason      TEXT,
    event       TEXT,
    unit_id     TEXT NOT NULL,
    value       DOUBLE PRECISION,
    sample_rate DOUBLE PRECISION NOT NULL,
    attributes  TEXT
);
CREATE INDEX IF NOT EXISTS tusk_events_kind_flag ON tusk_events (kind, flag, variant);
CREATE INDEX IF NOT EXISTS tusk_events_kind_event ON tusk_events (kind, event);
CREATE INDEX IF NOT EXISTS tusk_events_time ON tusk_events (occurred_at);
CREATE TABLE IF NOT EXISTS tusk_event_drops (occurred_at DOUBLE PRECISION NOT NULL, dropped INTEGER NOT NULL);
"""
SQLITE_ID = "INTEGER PRIMARY KEY"
POSTGRES_ID = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"

Event = tuple[str, float, str | None, str | None, str | None, str]  # kind, at, flag, variant, event, unit


def exposure(at: float, flag: str, variant: str, unit: str) -> Event:
    return ("exposure", at, flag, variant, None, unit)


def conversion(at: float, event: str, unit: str) -> Event:
    return ("conversion", at, None, None, event, unit)


def evaluation(at: float, flag: str, variant: str, unit: str) -> Event:
    return ("evaluation", at, flag, variant, None, unit)


INSERT = (
    "INSERT INTO tusk_events (kind, occurred_at, flag, variant, reason, event, unit_id, value, sample_rate) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, NULL, 1.0)"
)


def _rows(events: Iterable[Event]) -> list[tuple[object, ...]]:
    return [
        (kind, at, flag, variant, "SPLIT" if kind == "exposure" else None, event, unit)
        for kind, at, flag, variant, event, unit in events
    ]


def sqlite_store(path: Path, events: Iterable[Event], dropped: Sequence[tuple[float, int]] = ()) -> str:
    """A store in the version-1 shape (tusk_event_drops without `failed`/`since`); `dropped` is
    (recorded at, count) pairs."""
    connection = sqlite3.connect(path)
    connection.executescript(DDL.format(id=SQLITE_ID))
    connection.execute("INSERT INTO tusk_schema VALUES (1)")
    connection.executemany(INSERT.format(p="?"), _rows(events))
    connection.executemany("INSERT INTO tusk_event_drops VALUES (?, ?)", dropped)
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


# Hand-counted: control has u1..u10 plus w1 = 11 units; converted u1, u2, u3 (u1 twice) and w1 = 4.
# u4 converted only BEFORE its exposure, u5 converted on another event: neither counts. w1 was exposed
# to control first, then to B (a config change): counted once, in control. B has v1..v12 = 12 units,
# v1..v6 converted = 6; v7's second exposure does not make a second unit. Evaluations and another
# experiment's exposures are not units of this one.
SMALL: list[Event] = [
    *(exposure(100 + i, "exp1", "control", f"u{i}") for i in range(1, 11)),
    *(exposure(100 + i, "exp1", "B", f"v{i}") for i in range(1, 13)),
    exposure(150, "exp1", "B", "v7"),
    exposure(100, "exp1", "control", "w1"),
    exposure(200, "exp1", "B", "w1"),
    conversion(300, "purchase", "w1"),
    conversion(200, "purchase", "u1"),
    conversion(250, "purchase", "u1"),
    conversion(200, "purchase", "u2"),
    conversion(104, "purchase", "u3"),  # at the exposure instant: counts (occurred_at >= first exposure)
    conversion(50, "purchase", "u4"),
    conversion(200, "signup", "u5"),
    *(conversion(200, "purchase", f"v{i}") for i in range(1, 7)),
    evaluation(90, "exp1", "B", "u1"),
    evaluation(90, "exp1", "control", "zz"),
    exposure(100, "exp2", "B", "u1"),
    exposure(100, "exp2", "control", "u9"),
]
SMALL_COUNTS = {"control": (11, 4), "B": (12, 6)}


def snapshot_file(tmp_path: Path, weights: dict[str, int], analysis: dict[str, object] | None = None) -> Path:
    experiment: dict[str, object] = {
        "key": "exp1",
        "type": "string",
        "variants": {name: name for name in weights},
        "off_variant": "control",
        "default_variant": "control",
        "rules": [
            {
                "id": "experiment",
                "rollout": {"salt": "exp1/traffic", "percentage": 100000},
                "split": {"salt": "exp1/split", "weights": [[name, w] for name, w in weights.items()]},
            }
        ],
        "metrics": {"primary": ["purchase"]},
    }
    if analysis is not None:
        experiment["analysis"] = analysis
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"format": "tusklang.snapshot/1", "experiments": {"exp1": experiment}}))
    return path


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_counts_follow_the_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Drops recorded at 120 and 400 fall in exp1's window (first exposure at 100); the one at 50 does not.
    url = sqlite_store(tmp_path / "events.db", SMALL, dropped=[(120, 3), (400, 4), (50, 1000)])
    code, out, err = run(
        ["experiment", "report", "exp1", "--db", url, "--metric", "purchase", "--format", "json"], capsys
    )
    assert code == 0, err
    report = json.loads(out)
    assert {arm["name"]: (arm["units"], arm["conversions"]) for arm in report["arms"]} == SMALL_COUNTS
    assert [arm["name"] for arm in report["arms"]] == ["control", "B"]
    assert report["units_in_several_variants"] == 1
    assert report["dropped_events"] == 7
    assert report["lost_events"] == {
        "dropped": 7,
        "failed": 0,
        "total": 7,
        "first": "1970-01-01T00:02:00Z",
        "last": "1970-01-01T00:06:40Z",
    }
    assert any("more than one variant" in w for w in report["warnings"])
    assert any("7 dropped" in w and "counts may be low" in w for w in report["warnings"])
    assert report["srm"] is None  # no snapshot, no configured weights


def test_numbers_match_the_statistics_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = sqlite_store(tmp_path / "events.db", SMALL)
    code, out, _ = run(
        ["experiment", "report", "exp1", "--db", url, "--metric", "purchase", "--format", "json"], capsys
    )
    assert code == 0
    control, b = json.loads(out)["arms"]
    assert control["rate"] == pytest.approx(4 / 11) and b["rate"] == pytest.approx(6 / 12)
    assert b["uplift"] == pytest.approx((6 / 12 - 4 / 11) / (4 / 11))
    test = stats.two_proportion_ztest(4, 11, 6, 12)
    assert b["ci"] == pytest.approx([test.ci_low, test.ci_high])
    assert b["p_value"] == pytest.approx(test.p_value) and b["p_value_adjusted"] == pytest.approx(test.p_value)
    assert b["p_beat_control"] == pytest.approx(stats.prob_beats_control(4, 11, 6, 12))
    assert [control["p_best"], b["p_best"]] == pytest.approx(stats.prob_best([(4, 11), (6, 12)]))
    assert control["p_value"] is None and control["ci"] is None


def _bulk(arms: dict[str, tuple[int, int]], flag: str = "exp1") -> list[Event]:
    events: list[Event] = []
    for variant, (units, conversions) in arms.items():
        for i in range(units):
            unit = f"{variant}-{i}"
            events.append(exposure(1000.0 + i, flag, variant, unit))
            if i < conversions:
                events.append(conversion(5000.0, "purchase", unit))
    return events


def test_report_reproduces_the_documented_vectors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """100/1000 vs 120/1000: the numbers docs/statistics.md pins (P(beat) 0.923183, CI -0.007411..0.047411)."""
    url = sqlite_store(tmp_path / "events.db", _bulk({"control": (1000, 100), "B": (1000, 120)}))
    snap = snapshot_file(tmp_path, {"control": 50000, "B": 50000}, {"minimum_sample_size": 500})
    code, out, err = run(
        ["experiment", "report", "exp1", "--db", url, "--snapshot", str(snap), "--format", "json"], capsys
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["metric"] == "purchase"  # the experiment's first primary metric
    b = report["arms"][1]
    assert (b["units"], b["conversions"]) == (1000, 120)
    assert b["p_beat_control"] == pytest.approx(0.923183, abs=1e-6)
    assert b["ci"] == pytest.approx([-0.007411, 0.047411], abs=1e-6)
    assert b["p_value"] == pytest.approx(0.152918, abs=1e-6)
    assert b["uplift"] == pytest.approx(0.2)
    assert b["uplift_ci"] == pytest.approx([-0.0658942489, 0.5415813449], abs=1e-9)
    assert report["srm"]["mismatch"] is False and report["srm"]["p"] == pytest.approx(1.0)
    assert report["decision"]["status"] == "no_winner_yet"
    assert report["decision"]["why"].startswith("No winner yet")


def test_srm_against_configured_weights_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """[5000, 5400] at 50/50 is the documented mismatch (p = 8.77e-05); 25/75 weights make [2500, 7500] fine."""
    url = sqlite_store(tmp_path / "events.db", _bulk({"control": (5000, 500), "B": (5400, 560)}))
    snap = snapshot_file(tmp_path, {"control": 50000, "B": 50000})
    code, out, _ = run(
        ["experiment", "report", "exp1", "--db", url, "--snapshot", str(snap), "--format", "json"], capsys
    )
    assert code == 1
    report = json.loads(out)
    assert report["srm"]["mismatch"] is True
    assert report["srm"]["p"] == pytest.approx(8.76994e-05, rel=1e-5)
    assert report["decision"]["status"] == "problem"
    assert "Sample ratio mismatch" in report["decision"]["why"]


def test_three_variants_holm_and_a_variant_without_units(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arms = {"control": (2000, 200), "B": (2000, 250), "C": (2000, 205)}
    url = sqlite_store(tmp_path / "events.db", _bulk(arms))
    snap = snapshot_file(tmp_path, {"control": 30000, "B": 30000, "C": 30000, "D": 10000})
    code, out, err = run(
        ["experiment", "report", "exp1", "--db", url, "--snapshot", str(snap), "--format", "json"], capsys
    )
    assert code == 1, err  # the SRM below
    report = json.loads(out)
    by_name = {arm["name"]: arm for arm in report["arms"]}
    assert by_name["D"]["units"] == 0 and by_name["D"]["p_value"] is None and by_name["D"]["p_best"] is None
    raw = [stats.two_proportion_ztest(200, 2000, s, n).p_value for n, s in (arms["B"], arms["C"])]
    assert [by_name["B"]["p_value_adjusted"], by_name["C"]["p_value_adjusted"]] == pytest.approx(stats.holm(raw))
    assert by_name["B"]["p_value"] == pytest.approx(0.012351, abs=1e-6)  # documented vector 200/2000 vs 250/2000
    # D has weight 10% and no units: the SRM check sees it (expected 600 units, observed 0).
    assert report["srm"]["mismatch"] is True and report["decision"]["status"] == "problem"
    code, out, _ = run(
        [
            "experiment",
            "report",
            "exp1",
            "--db",
            url,
            "--snapshot",
            str(snap),
            "--correction",
            "bonferroni",
            "--format",
            "json",
        ],
        capsys,
    )
    b = {arm["name"]: arm for arm in json.loads(out)["arms"]}["B"]
    assert b["p_value_adjusted"] == pytest.approx(min(1.0, 2 * raw[0]))


def test_text_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = sqlite_store(tmp_path / "events.db", SMALL)
    code, out, _ = run(["experiment", "report", "exp1", "--db", url, "--metric", "purchase"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "experiment exp1, metric purchase (bayesian, 95% confidence, Holm correction)"
    control_row = next(line for line in lines if line.startswith("control (control)"))
    assert control_row.split()[3:6] == ["11", "4", "36.36%"]
    b_row = next(line for line in lines if line.startswith("B "))
    assert b_row.split()[1:5] == ["-", "12", "6", "50.00%"]
    assert "SRM: not checked" in out
    assert "decision: no_winner_yet" in out and "Too little data" in out


def test_html_report_has_the_interval_chart_and_escapes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evil = "<script>alert(1)</script>"
    events = [*SMALL, *(exposure(100 + i, "exp1", evil, f"x{i}") for i in range(5))]
    url = sqlite_store(tmp_path / "events.db", events)
    out_file = tmp_path / "report.html"
    code, _, err = run(
        ["experiment", "report", "exp1", "--db", url, "--metric", "purchase", "--format", "html", "-o", str(out_file)],
        capsys,
    )
    assert code == 0, err
    html = out_file.read_text()
    assert '<svg id="intervals"' in html
    assert html.count('class="interval interval-') == 2  # B and the odd variant, each with an interval
    assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in html and "https://" not in html


def test_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = sqlite_store(tmp_path / "events.db", SMALL)
    code, _, err = run(["experiment", "report", "nope", "--db", url, "--metric", "purchase"], capsys)
    assert code == 1 and "error[TSK945]: no exposures of experiment 'nope'" in err
    code, _, err = run(["experiment", "report", "exp1", "--db", url], capsys)
    assert code == 2 and "events in the store: purchase, signup" in err
    code, _, err = run(
        ["experiment", "report", "exp1", "--db", url, "--metric", "purchase", "--control", "ctl"], capsys
    )
    assert code == 1 and "no exposures of the control 'ctl'" in err
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    code, _, err = run(["experiment", "report", "exp1", "--db", f"sqlite:///{empty}", "--metric", "m"], capsys)
    assert code == 2 and "missing table" in err and "tusk db init" in err
    snap = snapshot_file(tmp_path, {"control": 1, "B": 1})
    code, _, err = run(["experiment", "report", "other", "--db", url, "--snapshot", str(snap)], capsys)
    assert code == 1 and "the snapshot has no experiment 'other'" in err


@pytest.mark.postgres
def test_counts_on_postgres(postgres_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    import psycopg

    sys.path.insert(0, str(ROOT / "fixtures" / "db"))
    from build import schema_url  # type: ignore[import-not-found]

    schema = f"tusk_report_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        try:
            conn.execute(f"SET search_path TO {schema}")
            conn.execute(DDL.format(id=POSTGRES_ID))
            with conn.cursor() as cur:
                cur.executemany(INSERT.format(p="%s"), _rows(SMALL))
            url = schema_url(postgres_url, schema)
            code, out, err = run(
                ["experiment", "report", "exp1", "--db", url, "--metric", "purchase", "--format", "json"], capsys
            )
            assert code == 0, err
            report = json.loads(out)
            assert {arm["name"]: (arm["units"], arm["conversions"]) for arm in report["arms"]} == SMALL_COUNTS
            assert report["units_in_several_variants"] == 1
            assert postgres_url not in out + err
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_the_report_warns_when_its_window_lost_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A store written by EventStore (schema version 2) where one batch failed and one event was dropped:
    every format says so; an experiment that started after the losses is not warned."""
    from tusklang.events import EventStore

    path = tmp_path / "events.db"
    url = f"sqlite:///{path}"
    rows = [("exposure", 1_000.0 + i, "exp1", "AB"[i % 2], "SPLIT", None, f"u{i}", None, 1.0, None) for i in range(60)]
    with EventStore(url, queue_size=40, batch_size=1_000, flush_interval=60, clock=lambda: 2_000.0) as store:
        for item in rows[:20]:
            store.put(item)
        store.flush()
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TRIGGER block BEFORE INSERT ON tusk_events BEGIN SELECT RAISE(ABORT, 'no'); END")
        for item in rows[20:60]:
            assert store.put(item)
        assert not store.put(rows[0])  # the queue is full: one drop
        store.flush()  # the batch of 40 fails; the losses are recorded at 2,000
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TRIGGER block")
        store.put(("exposure", 3_000.0, "exp2", "A", "SPLIT", None, "late", None, 1.0, None))
        store.put(("exposure", 3_000.0, "exp2", "B", "SPLIT", None, "late2", None, 1.0, None))
        store.put(("conversion", 3_001.0, None, None, None, "purchase", "u0", None, 1.0, None))
    args = ["experiment", "report", "exp1", "--db", url, "--metric", "purchase", "--control", "A"]
    code, out, err = run([*args, "--format", "json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["lost_events"] == {
        "dropped": 1,
        "failed": 40,
        "total": 41,
        "first": "1970-01-01T00:17:00Z",  # the first lost event (1,020 s)
        "last": "1970-01-01T00:33:20Z",  # recorded at 2,000 s
    }
    warning = "events were lost while this experiment ran: 1 dropped (the recording queue was full) and 40 lost"
    assert any(w.startswith(warning) for w in report["warnings"]) and "warning: events were lost" in err
    code, out, _ = run([*args, "--format", "text"], capsys)
    assert code == 0 and "warning: " + warning in out
    code, out, _ = run([*args, "--format", "html"], capsys)
    assert code == 0 and warning in out
    # exp2 began after the losses were recorded: its window has none
    code, out, _ = run(
        ["experiment", "report", "exp2", "--db", url, "--metric", "purchase", "--control", "A", "--format", "json"],
        capsys,
    )
    assert (
        code == 0
        and json.loads(out)["lost_events"]["total"] == 0
        and not any("lost" in w for w in json.loads(out)["warnings"])
    )
