"""`explain` and `tusk eval --explain` on typed flags (issue 16): which rule and which clause matched (its
path through all/any/not), which prerequisite failed and why; `evaluate_all` agrees with `evaluate`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tusklang.cli import main
from tusklang.evaluate import Client, explain
from tusklang.evaluate import reasons as r

from .test_serve import _seed_contexts
from .test_serve_typed import TYPED, typed_contexts

SEED = Path(__file__).resolve().parent.parent / "fixtures" / "seed" / "snapshot.json"
SERVES = re.compile(
    r"^  -> serves `(?P<variant>[^`]+)` \((?P<reason>\w+)\), rule `(?P<rule>[^`]+)` \(#(?P<index>\d+)\)"
)


@pytest.mark.parametrize(
    ("path", "contexts"), [(TYPED, typed_contexts(200)), (SEED, _seed_contexts(150))], ids=["typed", "seed"]
)
def test_explain_narrates_the_evaluators_decision(path: Path, contexts: list[dict[str, object]]) -> None:
    client = Client.from_file(path)
    keys = [*client.snapshot.flags, *client.snapshot.experiments]
    outcomes: set[str] = set()
    for context in contexts:
        for key in keys:
            result, lines = explain(client, key, context, "2024-06-01T12:00:00Z")
            assert result == client.evaluate(key, context, "2024-06-01T12:00:00Z")
            served = [m for m in map(SERVES.match, lines) if m]
            if result.reason == r.PREREQUISITE_FAILED:
                assert lines[-2].startswith(f"FAIL prerequisite `{result.prerequisite}` served "), lines
                assert lines[-1] == f"-> off variant `{result.variant}` (PREREQUISITE_FAILED)"
                outcomes.add("prerequisite")
            elif served:
                # The one rule that served is the result's, named with its index, and its variant is served.
                (only,) = served
                model = client.snapshot.flags.get(key) or client.snapshot.experiments[key]
                assert only["rule"] == result.rule and only["variant"] == result.variant
                assert model.rules[int(only["index"])].id == result.rule
                assert "; matched when[" in lines[-1] or lines[-1].endswith("; no conditions"), lines[-1]
                outcomes.add("rule")
            elif result.reason == r.DEFAULT:
                assert lines[-1].startswith(f"no rule served -> default variant `{result.variant}`"), lines
                outcomes.add("default")
    assert {"rule", "default"} <= outcomes
    if path == TYPED:
        assert "prerequisite" in outcomes


def test_explain_shows_the_clause_path_that_matched() -> None:
    client = Client.from_file(TYPED)
    context = {
        "user_id": "u1",
        "country": "DE",
        "app_version": "2.2.0",
        "email": "a@example.com",
        "signup": "2024-06-01",
    }
    result, lines = explain(client, "checkout_layout", context)
    assert (result.rule, result.variant) == ("beta", "compact")
    # new-apps: the `not` failed because the clause inside it held.
    assert "  FAIL when[1]: not (email ends_with '@example.com'): negated condition holds" in lines
    assert "    ok   when[1].not: email ends_with '@example.com'" in lines
    # beta: the `any` held by its second clause (the segment did not), named with attribute, op and operand.
    assert any(line.startswith("    FAIL when[0].any[0]: segment in [beta_users]") for line in lines)
    assert lines[-1] == (
        "  -> serves `compact` (SPLIT), rule `beta` (#3); matched when[0].any[1] signup after 2024-01-01T00:00:00+00:00"
    )
    # An `all` of plain conditions: every clause is part of the match.
    _, lines = explain(
        client, "search_limit", {"user_id": "u3", "country": "NL", "environment": "production", "seats": 60}
    )
    assert lines[1].startswith("ok   prerequisite `new_pricing_page` served `on`")
    assert lines[-1] == (
        "  -> serves `high` (TARGETING_MATCH), rule `big-orgs` (#1); matched when[0] seats >= 50; when[1] seats < 10000"
    )


def test_explain_says_which_prerequisite_failed_and_why() -> None:
    client = Client.from_file(TYPED)
    result, lines = explain(client, "dark_mode_v3", {"user_id": "u1", "country": "DE", "environment": "production"})
    assert (result.reason, result.prerequisite, result.value) == ("PREREQUISITE_FAILED", "search_limit", False)
    # search_limit served its off variant because its own prerequisite failed: the chain is spelled out.
    assert lines[-2] == (
        "FAIL prerequisite `search_limit` served `low` (PREREQUISITE_FAILED), not one of [high, unlimited]: "
        "prerequisite `new_pricing_page` served `fallback`, not one of [on]"
    )


@pytest.mark.parametrize(
    ("path", "contexts"), [(TYPED, typed_contexts(200)), (SEED, _seed_contexts(150))], ids=["typed", "seed"]
)
def test_evaluate_all_agrees_with_evaluate(path: Path, contexts: list[dict[str, object]]) -> None:
    client = Client.from_file(path)
    for context in contexts:
        for now in (None, "2024-06-01T12:00:00Z"):
            every = client.evaluate_all(context, now)
            assert list(every) == [*client.snapshot.flags, *client.snapshot.experiments]
            for key, result in every.items():
                assert result == client.evaluate(key, context, now), (key, context)


def _typed_file(tmp_path: Path) -> Path:
    path = tmp_path / "flags.json"
    path.write_bytes(TYPED.read_bytes())
    return path


def test_cli_explain_names_the_failed_prerequisite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(_typed_file(tmp_path))
    context = '{"user_id": "u1", "country": "DE", "environment": "production"}'
    assert main(["eval", path, "dark_mode_v3", "--context", context, "--explain"]) == 0
    out = capsys.readouterr().out
    assert "dark_mode_v3 = false  (variant off, reason PREREQUISITE_FAILED, prerequisite search_limit)" in out
    assert "FAIL prerequisite `search_limit` served `low`" in out
    assert main(["eval", path, "dark_mode_v3", "--context", context, "--explain", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["reason"], doc["prerequisite"], doc["rule"]) == ("PREREQUISITE_FAILED", "search_limit", None)
    assert doc["explain"][-1] == "-> off variant `off` (PREREQUISITE_FAILED)"


def test_cli_all_names_rules_and_prerequisites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(_typed_file(tmp_path))
    context = '{"user_id": "u1", "country": "%s", "environment": "production", "email": "jo@acme.com"}'
    assert main(["eval", path, "--all", "--context", context % "NL"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "banner_slots      []  (variant off, reason STATIC)",
        'checkout_layout   {"dense": true, "rows": 50}  (variant compact, reason TARGETING_MATCH, rule benelux)',
        "dark_mode_v3      true  (variant on, reason TARGETING_MATCH, rule acme)",
        'new_pricing_page  "new_pricing"  (variant on, reason SPLIT, rule rollout)',
        "search_limit      100000  (variant unlimited, reason TARGETING_MATCH, rule staff)",
    ]
    # Outside Benelux checkout_layout (20% rollout) serves its default for u1: the chain of prerequisites fails.
    assert main(["eval", path, "--all", "--context", context % "DE"]) == 0
    assert capsys.readouterr().out.splitlines()[2:] == [
        "dark_mode_v3      false  (variant off, reason PREREQUISITE_FAILED, prerequisite search_limit)",
        'new_pricing_page  "legacy_pricing"  (variant fallback, reason PREREQUISITE_FAILED, '
        "prerequisite checkout_layout)",
        "search_limit      10  (variant low, reason PREREQUISITE_FAILED, prerequisite new_pricing_page)",
    ]


def test_cli_typed_getter_on_the_seeds_string_flag(capsys: pytest.CaptureFixture[str]) -> None:
    # The seed's new_pricing_page is a string flag: `on` serves the string "on", the fallback its string.
    on = '{"user_id": "u1", "environment": "production", "beta_opt_in": true, "feedback_provided": 3}'
    assert main(["eval", str(SEED), "new_pricing_page", "--context", on, "--type", "string", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["value"], doc["variant"], doc["error_code"]) == ("on", "on", None)
    off = '{"user_id": "u1", "environment": "staging"}'
    assert main(["eval", str(SEED), "new_pricing_page", "--context", off, "--type", "string", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["value"], doc["variant"], doc["error_code"]) == ("legacy_pricing", "fallback", None)
    args = ["eval", str(SEED), "new_pricing_page", "--context", on, "--type", "boolean", "--default", "false"]
    assert main([*args, "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["value"], doc["reason"], doc["error_code"]) == (False, "ERROR", "TYPE_MISMATCH")
