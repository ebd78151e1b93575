"""The HTML experiment report in headless Chromium: no console errors, the interval chart drawn, the counts
in the DOM equal the event store's. Screenshot in test-artifacts/."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from tusklang.cli import main

from .browser import Browser
from .test_report import SMALL_COUNTS, _bulk, snapshot_file, sqlite_store

pytestmark = pytest.mark.slow


class _Arms(HTMLParser):
    """units / conversions per `tr[data-arm]`, and the arms drawn in the SVG chart."""

    def __init__(self) -> None:
        super().__init__()
        self.arm: str | None = None
        self.cell: str | None = None
        self.counts: dict[str, dict[str, int]] = {}
        self.drawn: list[str] = []
        self.circles = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr" and found.get("data-arm"):
            self.arm = found["data-arm"]
            self.counts[self.arm or ""] = {}
        elif tag == "td" and self.arm and found.get("class") in ("units", "conversions"):
            self.cell = found["class"]
        elif tag == "g" and found.get("data-arm"):
            self.drawn.append(found["data-arm"] or "")
        elif tag == "circle":
            self.circles += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self.arm = None
        self.cell = None

    def handle_data(self, data: str) -> None:
        if self.arm and self.cell:
            self.counts[self.arm][self.cell] = int(data)


def test_report_page_in_chromium(browser: Browser, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arms = {"control": (1000, 100), "variant_a": (1000, 120), "variant_b": (1000, 90)}
    url = sqlite_store(tmp_path / "events.db", _bulk(arms))
    snap = snapshot_file(tmp_path, {"control": 1, "variant_a": 1, "variant_b": 1}, {"minimum_sample_size": 500})
    page = tmp_path / "report.html"
    code = main(
        ["experiment", "report", "exp1", "--db", url, "--snapshot", str(snap), "--format", "html", "-o", str(page)]
    )
    capsys.readouterr()
    assert code == 0
    result = browser.load(page.as_uri(), screenshot="experiment-report.png")
    assert result.console_errors == []
    parsed = _Arms()
    parsed.feed(result.dom)
    assert parsed.counts == {name: {"units": u, "conversions": c} for name, (u, c) in arms.items()}
    assert parsed.drawn == ["variant_a", "variant_b"] and parsed.circles == 2
    assert 'data-status="no_winner_yet"' in result.dom


def test_small_report_counts_in_chromium(browser: Browser, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from .test_report import SMALL

    url = sqlite_store(tmp_path / "events.db", SMALL)
    page = tmp_path / "report.html"
    code = main(
        ["experiment", "report", "exp1", "--db", url, "--metric", "purchase", "--format", "html", "-o", str(page)]
    )
    capsys.readouterr()
    assert code == 0
    result = browser.load(page.as_uri())
    assert result.console_errors == []
    parsed = _Arms()
    parsed.feed(result.dom)
    assert {name: (v["units"], v["conversions"]) for name, v in parsed.counts.items()} == SMALL_COUNTS
