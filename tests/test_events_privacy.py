"""A data subject's rights and consent (issue 18): `tusk db erase` removes every row of a unit, in clear and
under PII masking (checked with raw SQL on SQLite and PostgreSQL), leaves an erasure record without any
id, and the experiment report recomputes without the unit; `tusk db export` returns exactly the unit's
rows."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tusklang.cli import main
from tusklang.evaluate import Client
from tusklang.events import UNIT_TABLES, EventStore, EventTracker, experiment_counts
from tusklang.events.schema import Connection, ddl

from .test_events import snapshot

ROOT = Path(__file__).resolve().parent.parent
KEY = "privacy-test-key-" + "x" * 16


def masked(unit: str, key: str = KEY) -> str:
    return hmac.new(key.encode(), unit.encode(), hashlib.sha256).hexdigest()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


class Raw:
    """Raw SQL on the store, outside tusklang, so the checks do not trust the code under test."""

    def __init__(self, url: str) -> None:
        self.url = url

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.url.startswith("sqlite"):
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as conn:
                return conn.execute(sql, params).fetchall()
        with psycopg.connect(self.url) as conn:
            return conn.execute(sql.replace("?", "%s"), params).fetchall()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.db'}"
    else:
        yield request.getfixturevalue("pg_events_url")


def record_traffic(url: str, *, masking: bool) -> dict[str, str]:
    """Evaluations, exposures and conversions for 60 users through a real Client and tracker; unit -> stored id."""
    snap = snapshot()
    with EventStore(url) as store:
        tracker = EventTracker(
            store, snapshot=snap, pii_masking=masking, pii_key=KEY if masking else None, attributes=["country"]
        )
        client = Client(snap, tracker=tracker)
        for i in range(60):
            ctx = {"user_id": f"user-{i}", "account_id": f"user-{i}", "country": "DE" if i % 2 else "FR"}
            for key in ("plain", "colors", "exp"):
                client.evaluate(key, ctx)
            client.track("buy", ctx, 10.0)
            if i % 3 == 0:
                client.track("buy", ctx, 5.0)
    return {f"user-{i}": masked(f"user-{i}") if masking else f"user-{i}" for i in range(60)}


@pytest.mark.parametrize("masking", [False, True], ids=["clear", "pii_masking"])
def test_erase_removes_every_row_of_the_unit_and_nothing_else(
    store_url: str, masking: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = record_traffic(store_url, masking=masking)
    raw = Raw(store_url)
    victim, other = stored["user-7"], stored["user-8"]
    before_total = raw.rows("SELECT COUNT(*) FROM tusk_events")[0][0]
    victim_rows = raw.rows("SELECT COUNT(*) FROM tusk_events WHERE unit_id = ?", (victim,))[0][0]
    other_rows = raw.rows("SELECT COUNT(*) FROM tusk_events WHERE unit_id = ?", (other,))[0][0]
    assert victim_rows >= 4 and other_rows >= 4  # evaluations, conversions (and exposures) of each
    with EventStore(store_url) as store:
        units_before = experiment_counts(store, "colors", "buy").arms

    if masking:
        monkeypatch.setenv("TUSK_PII_KEY", KEY)
    else:
        monkeypatch.delenv("TUSK_PII_KEY", raising=False)
    code, out, err = run(
        capsys, "db", "erase", "--events-db", store_url, "--unit", "user-7", "--request", "GDPR-117", "--format", "json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["deleted"] == {"tusk_events": victim_rows}
    assert result["masked_forms_matched"] is masking

    # Raw SQL: no row of the unit in any table that holds units, in either form; everything else is intact.
    for table, column in UNIT_TABLES.items():
        left = raw.rows(f"SELECT COUNT(*) FROM {table} WHERE {column} IN (?, ?)", ("user-7", masked("user-7")))
        assert left[0][0] == 0
    assert raw.rows("SELECT COUNT(*) FROM tusk_events")[0][0] == before_total - victim_rows
    assert raw.rows("SELECT COUNT(*) FROM tusk_events WHERE unit_id = ?", (other,))[0][0] == other_rows

    # The erasure record holds no id and no hash of one.
    records = raw.rows("SELECT * FROM tusk_erasures")
    assert len(records) == 1
    text = json.dumps([list(r) for r in records], default=str)
    assert "user-7" not in text and masked("user-7") not in text and "GDPR-117" in text
    assert records[0][2:5] == (1, victim_rows, 1 if masking else 0)

    # The report recomputes without the unit: one unit fewer in the arm it was in, the others unchanged.
    with EventStore(store_url) as store:
        units_after = experiment_counts(store, "colors", "buy").arms
    assert sum(u for u, _ in units_after.values()) == sum(u for u, _ in units_before.values()) - 1
    assert sum(1 for v in units_before if units_before[v] != units_after.get(v)) == 1


def test_the_report_command_recomputes_without_an_erased_unit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    record_traffic(url, masking=True)
    monkeypatch.setenv("TUSK_PII_KEY", KEY)

    def units() -> int:
        code, out, err = run(
            capsys,
            "experiment",
            "report",
            "colors",
            "--events-db",
            url,
            "--metric",
            "buy",
            "--control",
            "red",
            "--format",
            "json",
        )
        assert code == 0, err
        return sum(arm["units"] for arm in json.loads(out)["arms"])

    before = units()
    assert run(capsys, "db", "erase", "--events-db", url, "--unit", "user-3", "--unit", "user-4")[0] == 0
    assert units() == before - 2


def test_erase_under_masking_needs_the_key_when_the_config_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    stored = record_traffic(url, masking=True)
    config = tmp_path / "project.tsk"
    config.write_text("security_config = { data_protection = { pii_masking = true } }\n")
    monkeypatch.delenv("TUSK_PII_KEY", raising=False)
    code, out, err = run(capsys, "db", "erase", "--events-db", url, "--unit", "user-1", "--config", str(config))
    assert code == 2 and "TSK257" in err and "TUSK_PII_KEY" in err
    # Without --config and without a key only clear ids are matched, and the command says so.
    code, out, err = run(capsys, "db", "erase", "--events-db", url, "--unit", "user-1")
    assert code == 0 and "deleted 0 rows" in out and "TUSK_PII_KEY is not set" in err
    assert Raw(url).rows("SELECT COUNT(*) FROM tusk_events WHERE unit_id = ?", (stored["user-1"],))[0][0] > 0
    # A dry run counts and deletes nothing, and leaves no record.
    monkeypatch.setenv("TUSK_PII_KEY", KEY)
    code, out, err = run(capsys, "db", "erase", "--events-db", url, "--unit", "user-1", "--dry-run", "--format", "json")
    counted = json.loads(out)["deleted"]["tusk_events"]
    assert code == 0 and counted > 0
    assert Raw(url).rows("SELECT COUNT(*) FROM tusk_events WHERE unit_id = ?", (stored["user-1"],))[0][0] == counted
    assert Raw(url).rows("SELECT COUNT(*) FROM tusk_erasures")[0][0] == 1  # the first, key-less run's


def test_erase_reads_ids_from_a_file_and_refuses_a_request_reference_that_could_hold_a_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    record_traffic(url, masking=False)
    monkeypatch.delenv("TUSK_PII_KEY", raising=False)
    code, out, err = run(capsys, "db", "erase", "--events-db", url, "--unit", "user-1", "--request", "Jane Doe")
    assert code == 2 and "personal data" in err
    listing = tmp_path / "ids.txt"
    listing.write_text("user-1\n\nuser-2\nuser-1\n")
    code, out, err = run(capsys, "db", "erase", "--events-db", url, "--units-file", str(listing), "--format", "json")
    assert code == 0 and json.loads(out)["units"] == 2
    assert Raw(url).rows("SELECT COUNT(*) FROM tusk_events WHERE unit_id IN ('user-1', 'user-2')")[0][0] == 0
    code, out, err = run(capsys, "db", "erase", "--events-db", url)
    assert code == 2 and "--unit" in err


def test_every_table_with_unit_ids_is_erased(tmp_path: Path) -> None:
    """A new table of the store with a unit column must be added to UNIT_TABLES, or erasure would miss it."""
    url = f"sqlite:///{tmp_path / 'events.db'}"
    with Connection(url) as conn:
        for statement in ddl("sqlite"):
            conn.execute(statement)
        tables = [str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}
            holding = {c for c in columns if "unit" in c and c != "units"}
            assert not holding or UNIT_TABLES.get(table) in holding, (table, holding)
    assert "tusk_erasures" in tables


@pytest.mark.parametrize("masking", [False, True], ids=["clear", "pii_masking"])
def test_export_returns_exactly_the_units_rows(
    store_url: str, masking: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = record_traffic(store_url, masking=masking)
    if masking:
        monkeypatch.setenv("TUSK_PII_KEY", KEY)
    else:
        monkeypatch.delenv("TUSK_PII_KEY", raising=False)
    out_file = tmp_path / "export.json"
    code, _, err = run(
        capsys, "db", "export", "--events-db", store_url, "--unit", "user-5", "--format", "json", "-o", str(out_file)
    )
    assert code == 0, err
    document = json.loads(out_file.read_text())
    expected = Raw(store_url).rows(
        "SELECT id, kind, flag, variant, event, value, attributes FROM tusk_events WHERE unit_id = ? ORDER BY id",
        (stored["user-5"],),
    )
    got = sorted(document["events"], key=lambda e: e["id"])
    assert [e["id"] for e in got] == [r[0] for r in expected] and document["count"] == len(expected) >= 4
    for event, row in zip(got, expected):
        assert (event["kind"], event["flag"], event["variant"], event["event"], event["value"]) == row[1:6]
        assert event["attributes"] == (json.loads(row[6]) if row[6] else None)
        assert event["unit"] == "user-5"  # the id the subject knows, never the stored hash
    assert masked("user-5") not in out_file.read_text()
    assert document["format"] == "tusklang.events-export/1" and document["masked_forms_matched"] is masking


def test_export_to_stdout_and_of_an_unknown_unit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    record_traffic(url, masking=False)
    monkeypatch.delenv("TUSK_PII_KEY", raising=False)
    code, out, err = run(capsys, "db", "export", "--events-db", url, "--unit", "user-9", "--unit", "nobody")
    assert code == 0, err
    document = json.loads(out)
    assert document["units"] == ["user-9", "nobody"] and document["count"] >= 4
    assert {event["unit"] for event in document["events"]} == {"user-9"}
    code, out, err = run(capsys, "db", "export", "--events-db", url, "--unit", "nobody")
    assert code == 0 and json.loads(out)["events"] == []
    # Missing tables: exit 2, with the way out.
    code, out, err = run(capsys, "db", "export", "--events-db", f"sqlite:///{tmp_path / 'other.db'}", "--unit", "x")
    assert code == 2
