"""Consent tracking (issue 18, security_config.compliance.consent_tracking): with it on, a context whose
consent attribute (configurable, default `consent`) does not allow analytics leaves no event (checked with raw
SQL on SQLite and PostgreSQL), while its evaluation is unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tusklang
from tusklang.evaluate import Client
from tusklang.events import EventStore, EventTracker, allows_analytics

from .test_events import snapshot
from .test_events_privacy import KEY, ROOT, Raw


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.db'}"
    else:
        yield request.getfixturevalue("pg_events_url")


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        (True, True),
        ("granted", True),
        (" Granted ", True),
        ("analytics", True),
        ("all", True),
        (["functional", "analytics"], True),
        (("ALL",), True),
        ({"analytics_storage": "granted", "ad_storage": "denied"}, True),
        ({"analytics": True}, True),
        (None, False),
        (False, False),
        ("denied", False),
        ("true", False),
        ("", False),
        (1, False),
        (["functional", "marketing"], False),
        ({"analytics_storage": "denied"}, False),
        ({"ad_storage": "granted"}, False),
        (["analytics"] * 100, False),  # not a consent record: bounded work on the hot path
    ],
)
def test_what_allows_analytics(value: object, allowed: bool) -> None:
    assert allows_analytics(value) is allowed


CONTEXTS: list[dict[str, Any]] = [
    {"user_id": "yes-bool", "account_id": "a1", "consent": True},
    {"user_id": "yes-word", "account_id": "a2", "consent": "granted"},
    {"user_id": "yes-list", "account_id": "a3", "consent": ["analytics"]},
    {"user_id": "no-missing", "account_id": "a4"},
    {"user_id": "no-false", "account_id": "a5", "consent": False},
    {"user_id": "no-denied", "account_id": "a6", "consent": "denied"},
    {"user_id": "no-other", "account_id": "a7", "consent": ["marketing"]},
]


def test_non_consenting_contexts_leave_no_event_and_evaluate_the_same(store_url: str) -> None:
    snap = snapshot()
    config = {"security_config": {"compliance": {"consent_tracking": True}}}
    plain = Client(snap)
    with EventStore(store_url) as store:
        tracker = EventTracker(store, snapshot=snap, config=config)
        client = Client(snap, tracker=tracker)
        for ctx in CONTEXTS:
            for key in ("plain", "gradual", "colors", "exp"):
                assert client.evaluate(key, ctx) == plain.evaluate(key, ctx)  # evaluation is never affected
            client.track("buy", ctx, 1.0)
        assert tracker.without_consent == 4 * 5  # 4 contexts x (4 evaluations + 1 conversion)
    units = {r[0] for r in Raw(store_url).rows("SELECT DISTINCT unit_id FROM tusk_events")}
    assert {u for u in units if u.startswith("no-") or u in ("a4", "a5", "a6", "a7")} == set()
    assert {"yes-bool", "yes-word", "yes-list"} <= units
    kinds = {r[0] for r in Raw(store_url).rows("SELECT DISTINCT kind FROM tusk_events")}
    assert kinds == {"evaluation", "exposure", "conversion"}


def test_consent_attribute_is_configurable_and_reaches_the_tracker_through_the_snapshot(tmp_path: Path) -> None:
    source = """
feature_flags = {
    flags = { beta = { enabled = true, rollout_percentage = 100, fallback = false } }
}
security_config = { compliance = { consent_tracking = true, consent_attribute = "tracking_ok" } }
"""
    project = tmp_path / "project.tsk"
    project.write_text(source)
    compiled = tusklang.compile([str(project)]).snapshot
    assert compiled["runtime"]["data_protection"]["consent_attribute"] == "tracking_ok"
    with EventStore("sqlite:///:memory:") as store:
        tracker = EventTracker(store, snapshot=compiled)
        assert tracker.consent_attribute == "tracking_ok"
        client = Client(compiled, tracker=tracker)
        client.evaluate("beta", {"user_id": "u1", "tracking_ok": "granted"})
        client.evaluate("beta", {"user_id": "u2", "consent": True})  # the default name means nothing here
        store.flush()
        assert [r[0] for r in store.query("SELECT unit_id FROM tusk_events")] == ["u1"]
    # Without consent_tracking the snapshot says nothing and every context is recorded, as before.
    project.write_text(source.replace("consent_tracking = true", "consent_tracking = false"))
    compiled = tusklang.compile([str(project)]).snapshot
    assert "consent_attribute" not in compiled.get("runtime", {}).get("data_protection", {})


def test_the_seed_config_turns_consent_on(monkeypatch: pytest.MonkeyPatch) -> None:
    config = tusklang.loads((ROOT / "fixtures" / "seed" / "project.tsk").read_text())
    monkeypatch.setenv("TUSK_PII_KEY", KEY)
    with EventStore("sqlite:///:memory:") as store:
        assert EventTracker(store, config=config).consent_attribute == "consent"
