"""`tusk experiment report NAME --by ATTRIBUTE` (issue 18, user_segment_analysis): per-slice counts equal a
count of the rows, per-slice intervals and p-values are tusklang.experiments.stats', the correction runs over
every judged comparison of every slice (a slice significant only before Holm is named), slices too small to
judge are named and untested, on SQLite and PostgreSQL, in text, JSON and HTML (Chromium)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tusklang.cli import main
from tusklang.evaluate import Client
from tusklang.events import EventStore, EventTracker, init_schema
from tusklang.events.schema import Connection
from tusklang.experiments import stats

from .test_events import snapshot
from .test_report import snapshot_file

# slice -> variant -> (units, conversions). FR is significant on its own p-value (about 0.036) but not after
# Holm over the four judged comparisons; US is too small; None is a unit whose exposure carries no country.
DESIGN: dict[str | None, dict[str, tuple[int, int]]] = {
    "DE": {"control": (1000, 100), "B": (1000, 200)},
    "FR": {"control": (1000, 100), "B": (1000, 130)},
    "IT": {"control": (1000, 100), "B": (1000, 105)},
    "US": {"control": (20, 2), "B": (20, 3)},
    None: {"control": (200, 20), "B": (200, 22)},
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.db'}"
    else:
        yield request.getfixturevalue("pg_events_url")


def load(url: str, design: dict[str | None, dict[str, tuple[int, int]]]) -> None:
    """Exposures with a `country` attribute and conversions after them; a unit that moved from DE to FR
    after its first exposure stays in DE (its first exposure decides)."""
    rows: list[tuple[object, ...]] = []
    for country, arms in design.items():
        attributes = json.dumps({"country": country, "plan": "pro"}) if country else None
        for variant, (units, conversions) in arms.items():
            for i in range(units):
                unit = f"{country}-{variant}-{i}"
                rows.append(("exposure", 1000.0 + i, "exp1", variant, "SPLIT", None, unit, attributes))
                if i < conversions:
                    rows.append(("conversion", 5000.0, None, None, None, "purchase", unit, attributes))
    rows.append(("exposure", 9000.0, "exp1", "control", "SPLIT", None, "DE-control-0", '{"country":"FR"}'))
    with Connection(url) as conn:
        init_schema(conn)
    sql = (
        "INSERT INTO tusk_events (kind, occurred_at, flag, variant, reason, event, unit_id, value, sample_rate, "
        "attributes) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, NULL, 1.0, {p})"
    )
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            db.executemany(sql.format(p="?"), rows)
    else:
        with psycopg.connect(url) as pg, pg.cursor() as cur:
            cur.executemany(sql.format(p="%s"), rows)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_slices_counts_intervals_and_holm_over_every_slice(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load(store_url, DESIGN)
    snap = snapshot_file(tmp_path, {"control": 1, "B": 1}, {"minimum_sample_size": 100})
    code, out, err = run(
        capsys, "experiment", "report", "exp1", "--events-db", store_url, "--snapshot", str(snap), "--by", "country",
        "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    slices = {s["value"]: s for s in report["slices"]}
    assert set(slices) == {"DE", "FR", "IT", "US", "(not recorded)"}
    for country, arms in DESIGN.items():
        got = slices[country or "(not recorded)"]
        assert {a["name"]: (a["units"], a["conversions"]) for a in got["arms"]} == arms

    assert report["too_small"] == ["US"] and not slices["US"]["judged"]
    assert slices["US"]["too_small"] == "control has 20 units (fewer than 100)"
    assert all(a["p_value"] is None and a["ci"] is None for a in slices["US"]["arms"])

    # Per-slice intervals and p-values are the stats module's; the correction spans all judged slices.
    judged = [c for c in ("DE", "FR", "IT", None) if c != "US"]
    p_values = []
    for country in judged:
        (cu, cc), (vu, vc) = DESIGN[country]["control"], DESIGN[country]["B"]
        test = stats.two_proportion_ztest(cc, cu, vc, vu, 0.95)
        arm = next(a for a in slices[country or "(not recorded)"]["arms"] if a["name"] == "B")
        assert arm["ci"] == pytest.approx([test.ci_low, test.ci_high])
        assert arm["p_value"] == pytest.approx(test.p_value)
        p_values.append(test.p_value)
    adjusted = stats.holm(p_values)
    for country, expected in zip(judged, adjusted):
        arm = next(a for a in slices[country or "(not recorded)"]["arms"] if a["name"] == "B")
        assert arm["p_value_adjusted"] == pytest.approx(expected)
    assert report["comparisons"] == 4
    assert report["significant"] == ["DE: B"]
    assert report["significant_before_correction_only"] == ["FR: B"]  # p about 0.036 alone, not after Holm
    assert any("Holm-corrected over all of them" in w for w in report["warnings"])
    assert any("FR: B" in w and "before the Holm correction" in w for w in report["warnings"])
    assert any("too small to judge" in w and "US" in w for w in report["warnings"])


def test_text_names_small_slices_and_the_threshold_is_configurable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    load(url, DESIGN)
    code, out, err = run(capsys, "experiment", "report", "exp1", "--events-db", url, "--metric", "purchase", "--by",
                         "country")  # fmt: skip
    assert code == 0, err
    assert "country = US: 40 units (too small to judge: control has 20 units (fewer than 100))" in out
    assert "warning: significant at 0.05 before the holm correction" not in out  # labels are Holm, not holm
    assert "warning: significant at 0.05 before the Holm correction but not after it: FR: B" in out
    code, out, err = run(capsys, "experiment", "report", "exp1", "--events-db", url, "--metric", "purchase", "--by",
                         "country", "--min-slice-units", "10", "--format", "json")  # fmt: skip
    report = json.loads(out)
    # 20 units per arm now suffice, but 2 conversions are too few for the normal approximation.
    assert report["too_small"] == ["US"] and report["comparisons"] == 4
    assert report["slices"][-2]["too_small"] == "control has 2 conversions of 20 (fewer than 5 of each outcome)"
    # Usage: an attribute name that is not one, --min-slice-units without --by.
    assert run(capsys, "experiment", "report", "exp1", "--events-db", url, "--by", "x') OR 1=1 --")[0] == 2
    assert run(capsys, "experiment", "report", "exp1", "--events-db", url, "--min-slice-units", "5")[0] == 2
    # Nothing to analyse: exit 1.
    assert run(capsys, "experiment", "report", "nope", "--events-db", url, "--metric", "purchase", "--by", "x")[0] == 1


def test_slices_recorded_by_a_real_tracker_add_up_to_the_whole_report(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    snap = snapshot()
    with EventStore(store_url) as store:
        tracker = EventTracker(store, snapshot=snap, attributes=["country", "beta"])
        client = Client(snap, tracker=tracker)
        for i in range(300):
            ctx = {"user_id": f"u{i}", "account_id": f"u{i}", "country": ["DE", "FR", "IT"][i % 3], "beta": i % 2 == 0}
            client.evaluate("colors", ctx)
            if i % 4 == 0:
                client.track("buy", ctx, 1.0)
    common = ("experiment", "report", "colors", "--events-db", store_url, "--metric", "buy", "--control", "red")
    code, out, err = run(capsys, *common, "--format", "json")
    assert code == 0, err
    whole = {a["name"]: (a["units"], a["conversions"]) for a in json.loads(out)["arms"]}
    for attribute, values in (("country", {"DE", "FR", "IT"}), ("beta", {"true", "false"})):
        code, out, err = run(capsys, *common, "--by", attribute, "--format", "json")
        assert code == 0, err
        report = json.loads(out)
        assert {s["value"] for s in report["slices"]} == values
        summed: dict[str, tuple[int, int]] = {}
        for piece in report["slices"]:
            for arm in piece["arms"]:
                u, c = summed.get(arm["name"], (0, 0))
                summed[arm["name"]] = (u + arm["units"], c + arm["conversions"])
        assert summed == whole


@pytest.mark.slow
def test_slices_page_in_chromium(browser: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from .browser import Browser

    assert isinstance(browser, Browser)
    url = f"sqlite:///{tmp_path / 'events.db'}"
    load(url, DESIGN)
    page = tmp_path / "slices.html"
    code, _, err = run(capsys, "experiment", "report", "exp1", "--events-db", url, "--metric", "purchase", "--by",
                       "country", "--format", "html", "-o", str(page))  # fmt: skip
    assert code == 0, err
    result = browser.load(page.as_uri(), screenshot="experiment-slices.png")
    assert result.console_errors == []
    dom = result.dom
    for country in ("DE", "FR", "IT", "US", "(not recorded)"):
        assert f'data-slice="{country}"' in dom
    assert 'data-slice="US" data-judged="false"' in dom and "too small to judge" in dom
    assert dom.count('class="intervals"') == 4  # one chart per judged slice, none for US
    assert dom.count('class="significant"') == 1  # DE's B
