"""Each seed defect the compiler can prevent (NOTES.md) is encoded with its intended meaning.

The snapshot is checked as data and, where behaviour matters, by evaluating it with the reference
evaluator (tusklang.evaluate.Client) so the meaning survives end to end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tusklang.compiler import compile_files
from tusklang.diagnostics import Severity
from tusklang.evaluate import Client

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "fixtures" / "seed" / "snapshot.json"


def compile_text(tmp_path: Path, text: str) -> dict[str, Any]:
    path = tmp_path / "p.tsk"
    path.write_text(text, encoding="utf-8")
    return compile_files([str(path)], static=True, verify=True).snapshot


def flag_block(body: str) -> str:
    return "feature_flags = {\n flags = {\n  f = {\n" + body + "\n  }\n }\n}\n"


def split_weights(flag: dict[str, Any]) -> dict[str, int]:
    return dict(map(tuple, flag["rules"][-1]["split"]["weights"]))


def test_fraction_percent_and_object_weights_mean_the_same(tmp_path: Path) -> None:
    fractions = compile_text(
        tmp_path, flag_block("rollout_percentage = 100\na_b_testing = { variants = { a = 0.5, b = 0.3, c = 0.2 } }")
    )
    percents = compile_text(
        tmp_path, flag_block("rollout_percentage = 100\na_b_testing = { variants = { a = 50, b = 30, c = 20 } }")
    )
    objects = compile_text(
        tmp_path,
        flag_block(
            "rollout_percentage = 100\n"
            "a_b_testing = { variants = { a = { weight = 0.5 }, b = { weight = 0.3 }, c = { weight = 0.2 } } }"
        ),
    )
    expected = {"a": 50_000, "b": 30_000, "c": 20_000}
    for snap in (fractions, percents, objects):
        assert split_weights(snap["flags"]["f"]) == expected


def test_fraction_weights_split_users_as_written(tmp_path: Path) -> None:
    """Defect 3: 0.5/0.3/0.2 compared with 0..99 put almost everyone in control."""
    snap = compile_text(
        tmp_path, flag_block("rollout_percentage = 100\na_b_testing = { variants = { a = 0.5, b = 0.3, c = 0.2 } }")
    )
    client = Client(snap)
    counts = {"a": 0, "b": 0, "c": 0}
    for i in range(4000):
        counts[client.variant("f", {"user_id": f"user-{i}"})] += 1  # type: ignore[index]
    assert 0.46 < counts["a"] / 4000 < 0.54 and 0.26 < counts["b"] / 4000 < 0.34 and 0.17 < counts["c"] / 4000 < 0.23


def test_thirds_round_to_exactly_the_scale(tmp_path: Path) -> None:
    snap = compile_text(
        tmp_path,
        flag_block("rollout_percentage = 100\na_b_testing = { variants = { a = 33.333, b = 33.333, c = 33.334 } }"),
    )
    assert sum(split_weights(snap["flags"]["f"]).values()) == snap["scale"]


def test_sub_percent_rollout(tmp_path: Path) -> None:
    """Defect 1: `% 100` limited rollouts to whole percents."""
    snap = compile_text(tmp_path, flag_block("rollout_percentage = 0.5"))
    assert snap["flags"]["f"]["rules"][0]["rollout"]["percentage"] == 500


def test_rollout_and_split_have_distinct_per_flag_salts(tmp_path: Path) -> None:
    """Defects 1, 3, 4: no shared or empty salt across flags, rollout and split independent."""
    snap = json.loads(GOLDEN.read_text())
    salts = []
    for section in ("flags", "experiments"):
        for key, flag in snap[section].items():
            for rule in flag["rules"]:
                for part in ("rollout", "split"):
                    if rule.get(part):
                        assert key in rule[part]["salt"]
                        salts.append(rule[part]["salt"])
    assert len(salts) == len(set(salts))
    exp = snap["experiments"]["checkout_optimization"]["rules"][0]
    assert exp["rollout"]["salt"] == "checkout_optimization/traffic"
    assert exp["split"]["salt"] == "checkout_optimization/split"


def test_gradual_schedule_active_step_is_the_latest_reached() -> None:
    """Defect 2: the walk returned the first step reached, staying at 5% forever."""
    snap = json.loads(GOLDEN.read_text())
    schedule = snap["flags"]["ai_recommendations"]["rules"][0]["rollout"]["schedule"]
    assert schedule == [
        {"at": "2024-01-21T00:00:00Z", "percentage": 5_000},
        {"at": "2024-01-23T00:00:00Z", "percentage": 15_000},
        {"at": "2024-01-27T00:00:00Z", "percentage": 50_000},
        {"at": "2024-02-03T00:00:00Z", "percentage": 100_000},
    ]
    client = Client(snap)
    ctx = {"account_tier": "premium", "session_frequency": 6, "feature_usage": 12, "sessions": 20, "purchases": 3}

    def admitted(now: str) -> int:
        return sum(
            client.evaluate("ai_recommendations", {**ctx, "user_id": f"u{i}"}, now=now).variant != "fallback"
            for i in range(2000)
        )

    assert admitted("2024-01-20T12:00:00Z") == 0
    assert 50 < admitted("2024-01-22T00:00:00Z") < 160  # 5%
    assert 900 < admitted("2024-01-30T00:00:00Z") < 1100  # 50%, not stuck at 5%
    assert admitted("2024-02-04T00:00:00Z") == 2000


def test_structured_fallback_is_the_default_value() -> None:
    """Defect 6: `{type = "static", value = ...}` was returned as false."""
    client = Client(json.loads(GOLDEN.read_text()))
    result = client.evaluate(
        "ai_recommendations", {"user_id": "u1", "account_tier": "free"}, now="2024-02-05T00:00:00Z"
    )
    assert result.value == "legacy_recommendations"


@pytest.mark.parametrize(
    ("instant", "on"),
    [
        ("2024-02-05T18:00:00Z", True),
        ("2024-02-05T18:30:00Z", True),
        ("2024-02-05T05:59:00Z", True),
        ("2024-02-05T06:00:00Z", False),
        ("2024-02-05T06:30:00Z", False),
        ("2024-02-05T17:59:00Z", False),
    ],
)
def test_time_window_minutes_end_exclusive(instant: str, on: bool) -> None:
    """Defect 5: hour-only, end hour inclusive."""
    client = Client(json.loads(GOLDEN.read_text()))
    ctx = {"user_id": "u", "device_type": "mobile", "user_preferences": ["dark_mode_enabled"]}
    assert client.evaluate("dark_mode", ctx, now=instant).value is on


def test_time_window_uses_the_users_time_zone() -> None:
    client = Client(json.loads(GOLDEN.read_text()))
    ctx = {"user_id": "u", "device_type": "mobile", "user_preferences": ["dark_mode_enabled"], "timezone": "Asia/Tokyo"}
    # 10:00Z is 19:00 in Tokyo
    assert client.evaluate("dark_mode", ctx, now="2024-02-05T10:00:00Z").value is True


def test_segment_criteria_are_typed_predicates() -> None:
    """Defect 11."""
    segments = json.loads(GOLDEN.read_text())["segments"]
    assert segments["early_adopters"]["conditions"] == [
        {"attribute": "account_age", "op": "<=", "unit": "days", "value": 30},
        {"attribute": "feature_usage", "op": ">=", "unit": "features", "value": 5},
        {"attribute": "feedback_score", "op": ">=", "value": 4.0},
    ]
    assert {"attribute": "session_frequency", "op": ">=", "unit": "per_week", "value": 5} in segments["power_users"][
        "conditions"
    ]
    assert {"attribute": "beta_opt_in", "op": "==", "value": True} in segments["beta_program"]["conditions"]
    client = Client(json.loads(GOLDEN.read_text()))
    base = {"user_id": "u", "user_preferences": [], "beta_tester": True}
    assert client.evaluate("beta_features", {**base, "beta_opt_in": True, "feedback_provided": 3}).value is True
    assert client.evaluate("beta_features", {**base, "beta_opt_in": True, "feedback_provided": 2}).value is False


def test_undefined_segments_are_application_computed_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "p.tsk"
    path.write_text(flag_block('rollout_percentage = 100\ntargeting = { user_segments = ["vip", "all_users"] }'))
    result = compile_files([str(path)], static=True, verify=True)
    assert result.snapshot["external_segments"] == ["vip"]
    warnings = [d for d in result.diagnostics if d.code == "TSK330"]
    assert len(warnings) == 1 and warnings[0].severity is Severity.WARNING and "`vip`" in warnings[0].message
    client = Client(result.snapshot)
    assert client.evaluate("f", {"user_id": "u", "segments": ["vip"]}).value is True
    assert client.evaluate("f", {"user_id": "u", "segments": []}).value is True  # all_users matches everyone


def test_feature_usage_and_invite_only_mapping(tmp_path: Path) -> None:
    snap = json.loads(GOLDEN.read_text())
    conditions = snap["flags"]["ai_recommendations"]["rules"][0]["conditions"]
    assert {"attribute": "sessions", "op": ">=", "value": 10} in conditions
    assert {"attribute": "purchases", "op": ">=", "value": 2} in conditions
    assert {"attribute": "beta_tester", "op": "==", "value": True} in snap["flags"]["beta_features"]["rules"][0][
        "conditions"
    ]


def test_manual_overrides_come_first(tmp_path: Path) -> None:
    snap = compile_text(
        tmp_path,
        flag_block(
            'rollout_strategy = "invite_only"\n'
            'targeting = { beta_testers = true, manual_override = true, overrides = { on = ["u9"], off = ["u1"] } }'
        ),
    )
    client = Client(snap)
    assert client.evaluate("f", {"user_id": "u9"}).value is True
    assert client.evaluate("f", {"user_id": "u1", "beta_tester": True}).value is False


def test_experiment_window_and_traffic(tmp_path: Path) -> None:
    snap = json.loads(GOLDEN.read_text())
    rule = snap["experiments"]["checkout_optimization"]["rules"][0]
    assert {"op": "active_between", "start": "2024-02-01T00:00:00Z", "end": "2024-03-02T00:00:00Z"} in rule[
        "conditions"
    ]
    assert rule["rollout"]["percentage"] == 50_000
    client = Client(snap)
    assert client.evaluate("checkout_optimization", {"user_id": "u1"}, now="2024-03-05T00:00:00Z").variant == "control"


# --- JSON Schema ----------------------------------------------------------------------------------


def schema() -> dict[str, Any]:
    return json.loads((ROOT / "docs" / "snapshot.schema.json").read_text())


def test_checked_in_schema_is_current() -> None:
    from tusklang.cli.schema import schema_text

    assert (ROOT / "docs" / "snapshot.schema.json").read_text() == schema_text()


def test_schema_validates_the_golden_snapshot() -> None:
    jsonschema.Draft202012Validator(schema()).validate(json.loads(GOLDEN.read_text()))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.update(format="tusklang.snapshot/2"),
        lambda s: s["flags"]["dark_mode"].update(type="bool"),
        lambda s: s["flags"]["dark_mode"].update(rollout_percentage=10),
        lambda s: s["flags"]["new_checkout_flow"]["rules"][0]["rollout"].update(percentage=-1),
        lambda s: s["segments"]["early_adopters"]["conditions"][0].update(op="=~"),
        lambda s: s["flags"]["dark_mode"]["rules"][0]["conditions"][-1].update(start_minute=1440),
        lambda s: s.pop("format"),
    ],
)
def test_schema_rejects_mutated_snapshots(mutate: Any) -> None:
    snap = json.loads(GOLDEN.read_text())
    mutate(snap)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema()).validate(snap)
