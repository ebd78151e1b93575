"""Client API: loading, hot reload, convenience accessors, explanations and never-raising evaluation."""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tusklang.diagnostics import TuskError
from tusklang.evaluate import Client, explain
from tusklang.snapshot import load_snapshot

SNAP: dict[str, Any] = {
    "format": "tusklang.snapshot/1",
    "scale": 100_000,
    "segments": {"premium_users": {"conditions": [{"attribute": "plan", "op": "==", "value": "premium"}]}},
    "flags": {
        "checkout": {
            "key": "checkout",
            "type": "boolean",
            "variants": {"on": True, "off": False},
            "off_variant": "off",
            "default_variant": "off",
            "rules": [
                {
                    "id": "premium",
                    "conditions": [{"op": "segment", "segments": ["premium_users"]}],
                    "serve": "on",
                }
            ],
        },
        "theme": {
            "key": "theme",
            "type": "string",
            "variants": {"dark": "dark", "light": "light"},
            "off_variant": "light",
            "default_variant": "light",
            "rules": [
                {
                    "id": "night",
                    "conditions": [{"op": "time_window", "start_minute": 1080, "end_minute": 360}],
                    "serve": "dark",
                }
            ],
        },
    },
    "experiments": {
        "pricing": {
            "key": "pricing",
            "type": "string",
            "variants": {"a": "a", "b": "b", "none": "none"},
            "off_variant": "none",
            "default_variant": "none",
            "rules": [{"id": "t", "split": {"salt": "pricing/split", "weights": [["a", 1], ["b", 1]]}}],
            "metrics": {"primary": ["conversion_rate"]},
        }
    },
}


def _with(mutate: Any) -> dict[str, Any]:
    doc = copy.deepcopy(SNAP)
    mutate(doc)
    return doc


def test_accessors() -> None:
    client = Client(json.dumps(SNAP))
    assert client.is_enabled("checkout", {"plan": "premium"}) is True
    assert client.is_enabled("checkout", {"plan": "free"}) is False
    assert client.variant("theme", {}, now="2024-06-01T20:00:00Z") == "dark"
    assert client.value("theme", {}, "blue", now="2024-06-01T12:00:00Z") == "light"
    assert client.value("missing", {}, "blue") == "blue"
    assert client.value("theme", {}, 5, now="2024-06-01T12:00:00Z") == 5  # a number asked of a string flag
    assert client.variant("pricing", {"user_id": "u1"}) in {"a", "b"}
    assert client.evaluate_experiment("pricing", {"user_id": "u1"}).reason == "SPLIT"
    assert client.evaluate_experiment("checkout", {}).error_code == "FLAG_NOT_FOUND"
    results = client.evaluate_all({"plan": "premium", "user_id": "u1"}, now="2024-06-01T12:00:00Z")
    assert set(results) == {"checkout", "theme", "pricing"}
    assert results["checkout"].value is True and results["theme"].reason == "DEFAULT"


def test_now_defaults_to_the_current_utc_clock() -> None:
    client = Client(SNAP)
    minute = time.gmtime().tm_hour * 60 + time.gmtime().tm_min
    at_night = minute >= 1080 or minute < 360
    if minute in (359, 360, 1079, 1080):
        pytest.skip("too close to a window edge to be deterministic")
    assert client.variant("theme", {}) == ("dark" if at_night else "light")


def test_result_is_frozen_and_serialises() -> None:
    res = Client(SNAP).evaluate("checkout", {"plan": "free"})
    with pytest.raises(AttributeError):
        res.value = True  # type: ignore[misc]
    as_dict = res.to_dict()
    assert {k: as_dict[k] for k in ("flag", "value", "variant", "reason", "rule", "error_code")} == {
        "flag": "checkout",
        "value": False,
        "variant": "off",
        "reason": "DEFAULT",
        "rule": "premium",
        "error_code": None,
    }
    assert as_dict["detail"] == res.detail
    assert "plan" in (res.detail or "")


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d["flags"]["checkout"].update(default_variant="nope"), "$.flags.checkout.default_variant"),
        (lambda d: d["flags"]["checkout"]["rules"][0].update(serve="x"), "$.flags.checkout.rules[0].serve"),
        (
            lambda d: d["flags"]["checkout"]["rules"][0]["conditions"].append({"op": "segment", "segments": ["ghost"]}),
            "$.flags.checkout.rules[0].conditions[1].segments[0]",
        ),
        (
            lambda d: d["flags"]["checkout"]["rules"][0]["conditions"].append({"op": "bogus"}),
            "$.flags.checkout.rules[0].conditions[1]",
        ),
        (lambda d: d["flags"]["checkout"]["variants"].update(on="yes"), "$.flags.checkout.variants.on"),
        (lambda d: d["flags"]["theme"].update(time_zone="Mars/Base"), "$.flags.theme.time_zone"),
        (
            lambda d: d["experiments"]["pricing"]["rules"][0]["split"].update(weights=[["a", 0]]),
            "$.experiments.pricing.rules[0].split.weights",
        ),
        (
            lambda d: d["segments"].update(
                a={"conditions": [{"op": "segment", "segments": ["b"]}]},
                b={"conditions": [{"op": "segment", "segments": ["a"]}]},
            ),
            "$.segments.a",
        ),
        (
            lambda d: d["flags"]["checkout"]["rules"][0].update(rollout={"salt": "s", "percentage": 100_001}),
            "$.flags.checkout.rules[0].rollout.percentage",
        ),
        (
            lambda d: d["flags"]["checkout"]["rules"][0].update(
                rollout={
                    "salt": "s",
                    "schedule": [
                        {"at": "2024-02-01T00:00:00Z", "percentage": 1},
                        {"at": "2024-01-01T00:00:00Z", "percentage": 2},
                    ],
                }
            ),
            "$.flags.checkout.rules[0].rollout.schedule[1].at",
        ),
        (lambda d: d.update(format="tusklang.snapshot/9"), "$.format"),
        # the one plain float of the format once took "0.5" and true (as 1.0)
        (lambda d: d.update(runtime={"tracking": {"sampling_rate": "0.5"}}), "$.runtime.tracking.sampling_rate"),
        (lambda d: d.update(runtime={"tracking": {"sampling_rate": True}}), "$.runtime.tracking.sampling_rate"),
        (lambda d: d["flags"]["checkout"].update(colour="red"), "$.flags.checkout.colour"),
    ],
)
def test_invalid_snapshot_names_the_json_path(mutate: Any, path: str) -> None:
    with pytest.raises(TuskError) as info:
        load_snapshot(_with(mutate))
    assert any(d.message.startswith(path) for d in info.value.diagnostics), info.value.render()


def test_corrupt_json_is_a_tusk_error() -> None:
    with pytest.raises(TuskError) as info:
        load_snapshot('{"format": ')
    assert info.value.first.code == "snapshot-json"


def test_reload_swaps_atomically_and_rejects_bad_snapshots(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(SNAP))
    client = Client.from_file(path)
    assert client.is_enabled("checkout", {"plan": "premium"})
    path.write_text(json.dumps(_with(lambda d: d["flags"]["checkout"].update(enabled=False))))
    assert client.reload() is True
    assert client.evaluate("checkout", {"plan": "premium"}).reason == "DISABLED"
    path.write_text('{"format": "tusklang.snapshot/1", "flags": {"x": ')
    with caplog.at_level(logging.ERROR, logger="tusklang.evaluate"):
        assert client.reload() is False
    assert "keeping the last good one" in caplog.text
    assert client.evaluate("checkout", {"plan": "premium"}).reason == "DISABLED"  # last good still serves
    path.unlink()
    assert client.reload() is False


def test_watch_picks_up_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(SNAP))
    client = Client.from_file(path, watch=True, interval=0.05)
    try:
        new = tmp_path / "new.json"
        new.write_text(json.dumps(_with(lambda d: d["flags"]["checkout"].update(enabled=False))))
        os.replace(new, path)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and client.evaluate("checkout", {"plan": "premium"}).reason != "DISABLED":
            time.sleep(0.02)
        assert client.evaluate("checkout", {"plan": "premium"}).reason == "DISABLED"
    finally:
        client.close()


def test_explain_walks_each_check() -> None:
    client = Client(SNAP)
    result, lines = explain(client, "checkout", {"plan": "free"})
    assert result.reason == "DEFAULT"
    assert any("FAIL" in line and "premium_users" in line for line in lines)
    result, lines = explain(client, "pricing", {"user_id": "u7"})
    assert any("split" in line and f"`{result.variant}`" in line for line in lines)


def test_bad_now_is_an_error_result_not_an_exception() -> None:
    res = Client(SNAP).evaluate("theme", {}, now="not a time")
    assert res.reason == "ERROR" and res.error_code == "GENERAL"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
contexts = (
    st.dictionaries(st.sampled_from(["plan", "user_id", "timezone", "segments", "country"]), json_values, max_size=5)
    | json_values
)


@settings(max_examples=300, deadline=None)
@given(ctx=contexts, key=st.sampled_from(["checkout", "theme", "pricing", "nope"]) | st.text(max_size=4))
def test_evaluation_never_raises(ctx: Any, key: str) -> None:
    res = _CLIENT.evaluate(key, ctx)
    assert res.reason in {"STATIC", "TARGETING_MATCH", "SPLIT", "DEFAULT", "DISABLED", "ERROR"}
    assert (res.error_code is None) == (res.reason != "ERROR")


_CLIENT = Client(SNAP)


def test_typed_evaluation_reports_type_mismatch_with_the_callers_default() -> None:
    client = Client.from_file(Path(__file__).resolve().parent.parent / "fixtures" / "seed" / "snapshot.json")
    served = client.evaluate("ai_recommendations", {"user_id": "u1"})
    assert isinstance(served.value, str)
    wrong = client.evaluate_typed("ai_recommendations", "boolean", {"user_id": "u1"}, default=False)
    assert (wrong.value, wrong.reason, wrong.error_code) == (False, "ERROR", "TYPE_MISMATCH")
    assert "serves a string" in (wrong.detail or "")
    right = client.evaluate_typed("ai_recommendations", "string", {"user_id": "u1"}, default="x")
    assert right == served
    missing = client.evaluate_typed("no_such_flag", "boolean", {}, default=True)
    assert (missing.value, missing.error_code) == (True, "FLAG_NOT_FOUND")
    assert client.value("ai_recommendations", {"user_id": "u1"}, default=0) == 0
    assert client.value("ai_recommendations", {"user_id": "u1"}, default="x") == served.value


class RecordingTracker:
    """The Tracker protocol, recording calls (the event store itself is tested in test_events.py)."""

    def __init__(self) -> None:
        self.evaluations: list[tuple[str, str | None]] = []
        self.snapshots = 0

    def evaluation(self, context: Any, result: Any) -> None:
        self.evaluations.append((result.flag, result.variant))

    def conversion(self, event: str, context: Any, value: float | None) -> None:
        self.evaluations.append((f"conversion:{event}", None))

    def use_snapshot(self, snapshot: Any) -> None:
        self.snapshots += 1


def test_tracker_sees_every_evaluation_path_and_every_new_snapshot() -> None:
    path = Path(__file__).resolve().parent.parent / "fixtures" / "seed" / "snapshot.json"
    tracker = RecordingTracker()
    client = Client(path.read_text(encoding="utf-8"), tracker=tracker)
    ctx = {"user_id": "u1"}
    client.evaluate("dark_mode", ctx)
    client.evaluate_experiment("checkout_optimization", ctx, now="2024-02-10T00:00:00Z")
    client.track("purchase", ctx, 12.5)
    assert [flag for flag, _ in tracker.evaluations] == ["dark_mode", "checkout_optimization", "conversion:purchase"]
    assert client.reload(path.read_text(encoding="utf-8"))
    assert tracker.snapshots == 1
    untracked = Client(path.read_text(encoding="utf-8"))
    assert "evaluate" not in vars(untracked)  # no per-call tracking cost without a tracker


def test_a_unit_id_with_a_lone_surrogate_is_an_invalid_context_not_a_logged_bug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """json.loads accepts "\\ud800"; such a unit id cannot be encoded to be hashed. Every way to evaluate
    it says INVALID_CONTEXT (it once said GENERAL with a Python message and logged a traceback per call)."""
    client = Client.from_file(Path(__file__).resolve().parent.parent / "fixtures" / "typed" / "snapshot.json")
    context = json.loads('{"user_id": "a\\ud800", "country": "DE"}')
    with caplog.at_level(logging.ERROR, logger="tusklang.evaluate"):
        direct = client.evaluate("checkout_layout", context)
        every = client.evaluate_all(context)
        behind = client.evaluate("new_pricing_page", context)  # requires checkout_layout
    assert (direct.reason, direct.error_code) == ("ERROR", "INVALID_CONTEXT")
    assert "lone surrogate" in (direct.detail or "") and every["checkout_layout"] == direct
    assert behind.reason == "PREREQUISITE_FAILED" and "INVALID_CONTEXT" in (behind.detail or "")
    assert every["new_pricing_page"] == behind
    assert caplog.records == []
    # a text attribute with one is only compared, never encoded: it is evaluated as any other string
    assert client.evaluate("checkout_layout", {"user_id": "u1", "country": "\ud800"}).reason != "ERROR"
