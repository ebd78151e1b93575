"""`tusk report flags` (issue 18, flag_performance): per flag, evaluations over time, variant and reason
shares (sampled rows weighed by 1 / sample_rate), units exposed, last evaluation, stale candidates next to
the TSK403 lint; equal to a count of the inserted rows in Python, on SQLite and PostgreSQL; text, JSON and
HTML (Chromium); an erased unit leaves the counts."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest

from tusklang.cli import main
from tusklang.events import init_schema
from tusklang.events.schema import Connection

NOW = 1_764_547_200.0  # 2025-12-01T00:00:00Z
DAY = 86400.0
PROJECT = """
management_config = { flag_lifecycle = { cleanup_threshold = "90 days" } }
feature_flags = {
    flags = {
        checkout = { enabled = true, rollout_percentage = 50, fallback = false, metadata = { created_at = "{today}" } }
        old_banner = {
            enabled = true, rollout_percentage = 10, fallback = false, metadata = { created_at = "2024-01-15" }
        }
        never_used = { enabled = true, fallback = false }
    }
}
"""

# kind, at, flag, variant, reason, unit, sample_rate
Row = tuple[str, float, str, str, str, str, float]


def rows() -> list[Row]:
    out: list[Row] = []
    # checkout: 3 days ago .. today, sampled at 0.5 on the first day, with ERROR and DEFAULT results.
    for i in range(40):
        out.append(("evaluation", NOW - 2.5 * DAY + i, "checkout", "on", "TARGETING_MATCH", f"u{i}", 0.5))
    for i in range(30):
        out.append(("evaluation", NOW - 1.5 * DAY + i, "checkout", "off", "DEFAULT", f"u{i}", 1.0))
    for i in range(10):
        out.append(("evaluation", NOW - 0.5 * DAY + i, "checkout", "off", "ERROR", f"v{i}", 1.0))
    # old_banner: last evaluated 40 days ago (inside a 60-day window, outside the 30-day stale limit).
    for i in range(5):
        out.append(("evaluation", NOW - 40 * DAY + i, "old_banner", "on", "SPLIT", f"u{i}", 1.0))
    # a split: exposures count units too; an anonymous evaluation ('') is not a unit.
    for i in range(8):
        out.append(("exposure", NOW - 0.2 * DAY + i, "colors", "blue" if i % 2 else "red", "SPLIT", f"w{i}", 1.0))
    out.append(("evaluation", NOW - 0.2 * DAY, "colors", "red", "SPLIT", "", 1.0))
    # outside the window (and after "now"): not counted, but older rows still tell the last evaluation.
    out.append(("evaluation", NOW + 10, "checkout", "on", "TARGETING_MATCH", "late", 1.0))
    return out


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.db'}"
    else:
        yield request.getfixturevalue("pg_events_url")


def load(url: str, data: list[Row]) -> None:
    with Connection(url) as conn:
        init_schema(conn)
    sql = (
        "INSERT INTO tusk_events (kind, occurred_at, flag, variant, reason, unit_id, sample_rate) "
        "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})"
    )
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            db.executemany(sql.format(p="?"), data)
    else:
        with psycopg.connect(url) as pg, pg.cursor() as cur:
            cur.executemany(sql.format(p="%s"), data)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def project(tmp_path: Path) -> Path:
    path = tmp_path / "project.tsk"
    # The lint compares created_at with the real clock: checkout is created today, old_banner long ago.
    path.write_text(PROJECT.replace("{today}", date.today().isoformat()))
    return path


def report(capsys: pytest.CaptureFixture[str], url: str, *extra: str) -> dict[str, object]:
    code, out, err = run(
        capsys, "report", "flags", "--db", url, "--now", "2025-12-01T00:00:00Z", "--days", "60", "--format", "json",
        *extra,
    )  # fmt: skip
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_per_flag_numbers_equal_a_count_of_the_rows(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = rows()
    load(store_url, data)
    result = report(capsys, store_url, "--config", str(project(tmp_path)))
    flags = {f["flag"]: f for f in result["flags"]}  # type: ignore[attr-defined]
    assert set(flags) == {"checkout", "old_banner", "never_used", "colors"}
    start = NOW - 60 * DAY
    for name, flag in flags.items():
        mine = [r for r in data if r[2] == name and start <= r[1] < NOW]
        evaluations = [r for r in mine if r[0] == "evaluation"]
        estimated = sum(1 / r[6] for r in evaluations)
        assert flag["evaluations"] == {"rows": len(evaluations), "estimated": pytest.approx(estimated)}
        assert flag["exposures"] == sum(1 for r in mine if r[0] == "exposure")
        assert flag["units"] == len({r[5] for r in mine if r[5]})
        for key, index in (("variants", 3), ("reasons", 4)):
            expected = {}
            for r in evaluations:
                expected[r[index]] = expected.get(r[index], 0.0) + 1 / r[6]
            got = {item[key[:-1]]: item["share"] for item in flag[key]}
            assert got == {k: pytest.approx(v / estimated) for k, v in expected.items()}
        # evaluations over time: one bucket per day of the window, each the weighted count of its day
        series = flag["over_time"]
        assert len(series) == 60
        for i, bucket in enumerate(series):
            day = [r for r in evaluations if start + i * DAY <= r[1] < start + (i + 1) * DAY]
            assert bucket["rows"] == len(day) and bucket["estimated"] == pytest.approx(sum(1 / r[6] for r in day))
        seen = [r[1] for r in data if r[2] == name and r[1] < NOW]
        if seen:
            assert flag["days_since_last"] == pytest.approx((NOW - max(seen)) / DAY, abs=0.01)

    checkout = flags["checkout"]
    assert checkout["error_share"] == pytest.approx(10 / 120)  # 80 estimated TARGETING_MATCH + 30 DEFAULT + 10
    assert checkout["last_evaluated"] == "2025-11-30T12:00:09Z"
    assert flags["never_used"]["last_evaluated"] is None
    # Stale: no evaluation in 30 days (old_banner), or never (never_used); TSK403 shown next to old_banner.
    assert result["stale"] == ["never_used", "old_banner"]
    assert [item["code"] for item in flags["old_banner"]["lint"]] == ["TSK403"]
    assert flags["old_banner"]["lint"][0]["line"] == 6 and flags["checkout"]["lint"] == []
    assert any("colors" in w for w in result["warnings"])  # evaluated but not defined in the project


def test_erased_unit_leaves_the_flag_report(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    load(store_url, rows())
    before = {f["flag"]: f["units"] for f in report(capsys, store_url)["flags"]}  # type: ignore[attr-defined]
    code, _, err = run(capsys, "db", "erase", "--events-db", store_url, "--unit", "u3")
    assert code == 0, err
    after = {f["flag"]: f["units"] for f in report(capsys, store_url)["flags"]}  # type: ignore[attr-defined]
    assert after == {**before, "checkout": before["checkout"] - 1, "old_banner": before["old_banner"] - 1}


def test_text_exit_codes_and_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    load(url, rows())
    config = str(project(tmp_path))
    base = ("report", "flags", "--db", url, "--now", "2025-12-01T00:00:00Z", "--days", "60", "--config", config)
    code, out, err = run(capsys, *base)
    assert code == 0, err
    assert "stale candidates: never_used, old_banner" in out
    assert "old_banner: TSK403 flag `old_banner` is older than" in out
    assert "checkout" in out and "ERROR 8.3%" in out
    assert run(capsys, *base, "--fail-on-stale")[0] == 1
    assert run(capsys, *base, "--stale-days", "100", "--fail-on-stale")[0] == 1  # never_used is still never
    # Nothing to report: an empty store and no project.
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    load(empty, [])
    code, out, err = run(capsys, "report", "flags", "--db", empty, "--format", "json")
    assert code == 1 and "TSK945" in out
    # Usage and I/O: exit 2.
    assert run(capsys, "report", "flags", "--db", url, "--days", "0")[0] == 2
    assert run(capsys, "report", "flags", "--db", url, "--now", "yesterday")[0] == 2
    assert run(capsys, "report", "flags", "--db", url, "--bucket", "hour", "--days", "365")[0] == 2
    code, out, err = run(capsys, "report", "flags", "--db", f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 2
    monkeypatch.delenv("TUSK_DATABASE_URL", raising=False)
    code, out, err = run(capsys, "report", "flags", "--format", "json")
    assert code == 2 and "--db" in out
    assert run(capsys, "report")[0] == 2


def test_help_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["report", "flags", "--help"])
    assert stopped.value.code == 0
    assert "example:\n  tusk report flags --db" in capsys.readouterr().out


@pytest.mark.slow
def test_flags_page_in_chromium(browser: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from html.parser import HTMLParser

    from .browser import Browser

    assert isinstance(browser, Browser)
    url = f"sqlite:///{tmp_path / 'events.db'}"
    load(url, rows())
    config = str(project(tmp_path))
    common = ("report", "flags", "--db", url, "--now", "2025-12-01T00:00:00Z", "--days", "60", "--config", config)
    expected = {f["flag"]: f for f in json.loads(run(capsys, *common, "--format", "json")[1])["flags"]}
    page = tmp_path / "flags.html"
    code, _, err = run(capsys, *common, "--format", "html", "-o", str(page))
    assert code == 0, err
    result = browser.load(page.as_uri(), screenshot="flag-performance.png")
    assert result.console_errors == []

    class Rows(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.flag: str | None = None
            self.found: dict[str, dict[str, object]] = {}

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "tr" and a.get("data-flag"):
                self.flag = a["data-flag"]
                self.found[self.flag or ""] = {"stale": a["data-stale"], "buckets": 0, "lint": [], "reasons": {}}
            elif self.flag is None:
                return
            entry = self.found[self.flag]
            if tag == "td" and a.get("class") == "evaluations":
                entry["estimated"] = float(a["data-estimated"] or 0)
            elif tag == "rect" and a.get("class") == "bucket":
                entry["buckets"] = int(str(entry["buckets"])) + 1
            elif tag == "div" and a.get("class") == "lint":
                entry["lint"].append(a["data-code"])  # type: ignore[attr-defined]
            elif tag == "span" and a.get("data-reason"):
                entry["reasons"][a["data-reason"]] = a["data-share"]  # type: ignore[index]

        def handle_endtag(self, tag: str) -> None:
            if tag == "tr":
                self.flag = None

    parsed = Rows()
    parsed.feed(result.dom)
    assert set(parsed.found) == set(expected)
    for name, flag in expected.items():
        got = parsed.found[name]
        assert got["estimated"] == pytest.approx(flag["evaluations"]["estimated"])
        assert got["stale"] == str(flag["stale"]).lower()
        assert got["buckets"] == sum(1 for b in flag["over_time"] if b["estimated"] > 0)
        assert got["lint"] == [item["code"] for item in flag["lint"]]
    assert parsed.found["checkout"]["reasons"] == {"TARGETING_MATCH": "66.7%", "DEFAULT": "25.0%", "ERROR": "8.3%"}
    assert parsed.found["checkout"]["buckets"] == 3
