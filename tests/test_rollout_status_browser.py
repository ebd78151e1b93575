"""The rollout status page (`tusk rollout status --format html`, `tusk rollout simulate --format html`) in
headless Chromium: no console errors, no external resource, and the chart and table in the DOM say what
the delivery store says (every decision with its percentage and reason, each metric against its
threshold or the stable side). Screenshots in test-artifacts/."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tusklang.cli import main
from tusklang.delivery.db import Database
from tusklang.delivery.metrics import Sample, SqlMetricSource
from tusklang.overrides import OverrideStore

from .browser import Browser

pytestmark = pytest.mark.slow

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SNAPSHOT = {
    "format": "tusklang.snapshot/1",
    "flags": {
        "checkout_v2": {
            "key": "checkout_v2",
            "type": "boolean",
            "variants": {"off": False, "on": True},
            "off_variant": "off",
            "default_variant": "off",
            "rules": [{"id": "general", "rollout": {"salt": "checkout_v2/rollout", "percentage": 0}, "serve": "on"}],
        }
    },
}
POLICY = {
    "progressive_delivery": {
        "canary_deployments": {
            "flag": "checkout_v2",
            "traffic_split": {"canary": 10, "stable": 90},
            "health_checks": {
                "metrics": ["error_rate", "latency_p95"],
                "thresholds": {"error_rate": 0.05, "latency_p95": 800},
                "compare": {"error_rate": {"max_ratio": 2, "max_difference": 0.01}},
                "evaluation_period": "5 minutes",
                "min_samples": 3,
            },
            "rollback": {"failure_limit": 1},
        }
    }
}


class _Page(HTMLParser):
    """The decision markers of the chart, the table rows, the metric panels and every URL-ish attribute."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.markers: list[dict[str, str | None]] = []
        self.rows: list[dict[str, str | None]] = []
        self.reasons: list[str] = []
        self.panels: list[dict[str, str | None]] = []
        self.samples: dict[str, list[str | None]] = {}
        self.urls: list[str] = []
        self._panel: str | None = None
        self._reason = False
        self._title = False
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href", "xlink:href", "action"):
            if found.get(name):
                self.urls.append(str(found[name]))
        if "url(" in (found.get("style") or ""):
            self.urls.append(str(found["style"]))
        classes = (found.get("class") or "").split()
        if tag == "circle" and "decision" in classes:
            self.markers.append({**found, "title": ""})
            self._title = True
        elif tag == "title" and self._title:
            self._in_title = True
        elif tag == "tr" and found.get("data-decision") is not None:
            self.rows.append(found)
        elif tag == "td" and "reason" in classes:
            self._reason = True
            self.reasons.append("")
        elif tag == "g" and "metric" in classes:
            self.panels.append(found)
            self._panel = f"{found['data-metric']}/{found['data-kind']}"
            self.samples[self._panel] = []
        elif tag == "circle" and "sample" in classes and self._panel:
            self.samples[self._panel].append(
                next(c.removeprefix("verdict-") for c in classes if c.startswith("verdict-"))
            )

    def handle_endtag(self, tag: str) -> None:
        if tag in ("title", "circle"):
            self._title = self._in_title = False
        if tag == "td":
            self._reason = False
        elif tag == "g":
            self._panel = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.markers[-1]["title"] = (self.markers[-1]["title"] or "") + data
        if self._reason:
            self.reasons[-1] += data


def _parse(dom: str) -> _Page:
    page = _Page()
    page.feed(dom)
    return page


def _record(db: str, minute: int, canary_errors: float) -> None:
    with Database(db) as conn:
        source = SqlMetricSource(conn)
        source.ensure_schema()
        for second in (10, 20, 30, 40):
            when = T0 + timedelta(minutes=minute, seconds=second)
            source.record(Sample(when, "canary", "error_rate", canary_errors))
            source.record(Sample(when, "stable", "error_rate", 0.01))
            for target in ("canary", "stable"):
                source.record(Sample(when, target, "latency_p95", 320.0))


def test_rollout_status_page_in_chromium(
    browser: Browser, tmp_path: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = f"tusk-page-{uuid.uuid4().hex[:8]}:"
    snapshot = tmp_path / "flags.json"
    snapshot.write_text(json.dumps(SNAPSHOT), encoding="utf-8")
    config = tmp_path / "delivery.json"
    config.write_text(json.dumps(POLICY), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'rollout.db'}"
    common = ["--rollout-db", db, "--redis", redis_url]
    try:
        start = ["rollout", "start", "web", "--config", str(config), "--snapshot", str(snapshot), "--prefix", prefix]
        assert main([*start, *common, "--now", T0.isoformat()]) == 0
        _record(db, 1, 0.011)
        assert main(["rollout", "run", "web", *common, "--now", (T0 + timedelta(minutes=5)).isoformat()]) == 0
        _record(db, 6, 0.012)
        assert main(["rollout", "run", "web", *common, "--now", (T0 + timedelta(minutes=10)).isoformat()]) == 0
        _record(db, 11, 0.09)  # the canary's errors climb: over the threshold and 9x stable's
        assert main(["rollout", "run", "web", *common, "--now", (T0 + timedelta(minutes=15)).isoformat()]) == 0
        capsys.readouterr()
        assert main(["rollout", "status", "web", *common, "--format", "json"]) == 0
        status = json.loads(capsys.readouterr().out)
        page = tmp_path / "status.html"
        assert main(["rollout", "status", "web", *common, "--format", "html", "-o", str(page)]) == 0
        capsys.readouterr()
    finally:
        store = OverrideStore.from_url(redis_url, prefix)
        store.client.delete(store.hash_key, store.version_key, store.audit_key)
        store.close()

    html = page.read_text(encoding="utf-8")
    assert not re.search(r"<script|<link|<img|@import", html)
    result = browser.load(page.as_uri(), screenshot="rollout-status.png")
    assert result.console_errors == []
    parsed = _parse(result.dom)
    assert parsed.urls == []  # nothing outside the page itself

    decisions = status["decisions"]
    assert [d["action"] for d in decisions] == ["start", "advance", "advance", "rollback"]
    assert [(m["data-action"], float(m["data-percent"] or "nan")) for m in parsed.markers] == [
        (d["action"], d["canary_percent"]) for d in decisions
    ]
    assert [r["data-action"] for r in parsed.rows] == [d["action"] for d in decisions]
    assert [" ".join(r.split()) for r in parsed.reasons] == [" ".join(d["reason"].split()) for d in decisions]
    assert "rollback: 1 consecutive failing intervals" in parsed.reasons[-1]
    # Each marker's tooltip carries its reason and the override version it was written as.
    for marker, decision in zip(parsed.markers, decisions):
        assert decision["override"]["status"] == "applied"
        title = " ".join((marker["title"] or "").split())
        assert " ".join(decision["reason"].split()) in title
        assert title.endswith(f"(override version {decision['override']['version']})")

    panels = {f"{p['data-metric']}/{p['data-kind']}": p for p in parsed.panels}
    assert set(panels) == {"error_rate/threshold", "latency_p95/threshold", "error_rate/compare"}
    assert panels["error_rate/threshold"]["data-threshold"] == "0.05"
    assert panels["latency_p95/threshold"]["data-threshold"] == "800.0"
    # One point per judged decision, the last one failing both the threshold and the comparison.
    assert parsed.samples["error_rate/threshold"] == ["pass", "pass", "fail"]
    assert parsed.samples["error_rate/compare"] == ["pass", "pass", "fail"]
    assert parsed.samples["latency_p95/threshold"] == ["pass", "pass", "pass"]
    assert 'id="binding" data-flag="checkout_v2" data-rule="general"' in result.dom
    assert 'data-status="rolled_back"' in result.dom


def test_simulation_page_in_chromium(
    browser: Browser, tmp_path: Path, fixtures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "simulation.html"
    config = str(fixtures_dir / "delivery" / "seed_policy.json")
    metrics = str(fixtures_dir / "delivery" / "climbing_errors.csv")
    assert main(["rollout", "simulate", config, "--metrics", metrics, "--format", "json"]) == 0
    replay: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert main(["rollout", "simulate", config, "--metrics", metrics, "--format", "html", "-o", str(page)]) == 0
    capsys.readouterr()
    result = browser.load(page.as_uri(), screenshot="rollout-simulation.png")
    assert result.console_errors == []
    parsed = _parse(result.dom)
    assert parsed.urls == []
    # The start, then every judged decision of the replay, in order.
    expected = [("start", 10.0)] + [(d["action"], d["canary_percent"]) for d in replay["decisions"]]
    assert [(m["data-action"], float(m["data-percent"] or "nan")) for m in parsed.markers] == expected
    assert parsed.samples["error_rate/threshold"][-1] == "fail"
    assert {p["data-metric"] for p in parsed.panels} == {"error_rate", "response_time", "throughput"}
