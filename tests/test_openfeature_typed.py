"""TuskProvider's typed getters on typed flags (issue 16): objects, lists, numbers and strings as their
getters expect, a getter of another type is TYPE_MISMATCH (never a crash), a failed prerequisite is
reported with its key."""

from __future__ import annotations

from typing import Any

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from tusklang.evaluate import Client
from tusklang.evaluate import reasons as r
from tusklang.openfeature import TuskProvider

from .test_explain import SEED
from .test_serve import typed_getters
from .test_serve_typed import TYPED, typed_contexts


def _client(domain: str, path: Any) -> Any:
    api.set_provider(TuskProvider.from_file(path), domain=domain)
    return api.get_client(domain=domain)


def test_typed_getters_answer_what_the_evaluator_answers() -> None:
    local = Client.from_file(TYPED)
    remote = _client("tusk-typed-getters", TYPED)
    getters = typed_getters(remote)
    types: set[type] = set()
    reasons: set[str] = set()
    for context in typed_contexts(150):
        for key in local.snapshot.flags:
            expected = local.evaluate(key, context)
            getter, default = getters[type(expected.value)]
            got = getter(key, default, EvaluationContext(attributes=context))
            assert got.error_code is None, (key, got.error_message)
            assert type(got.value) is type(expected.value)
            assert (got.value, got.variant, got.reason) == (expected.value, expected.variant, expected.reason)
            if expected.rule is not None:
                assert got.flag_metadata["rule"] == expected.rule
            if expected.prerequisite is not None:
                assert got.flag_metadata["prerequisite"] == expected.prerequisite
                assert "rule" not in got.flag_metadata
            types.add(type(expected.value))
            reasons.add(expected.reason)
    assert types == {dict, list, int, str, bool}
    assert {r.PREREQUISITE_FAILED, r.TARGETING_MATCH, r.SPLIT, r.DEFAULT, r.STATIC} <= reasons


# Each typed flag asked with every getter but its own: the caller's default, TYPE_MISMATCH.
MISMATCHES = [
    ("checkout_layout", "boolean"),
    ("checkout_layout", "string"),
    ("checkout_layout", "integer"),
    ("checkout_layout", "float"),
    ("banner_slots", "string"),
    ("banner_slots", "boolean"),
    ("search_limit", "string"),
    ("search_limit", "boolean"),
    ("search_limit", "object"),
    ("new_pricing_page", "boolean"),
    ("new_pricing_page", "integer"),
    ("new_pricing_page", "object"),
    ("dark_mode_v3", "string"),
    ("dark_mode_v3", "integer"),
    ("dark_mode_v3", "object"),
]
DEFAULTS: dict[str, Any] = {"boolean": True, "string": "dflt", "integer": -1, "float": -1.5, "object": {"d": 1}}


@pytest.mark.parametrize(("key", "getter"), MISMATCHES)
def test_a_getter_of_another_type_is_type_mismatch(key: str, getter: str) -> None:
    remote = _client(f"tusk-typed-mismatch-{key}-{getter}", TYPED)
    # A context that passes every prerequisite and reaches a rule, so the flag serves a real value.
    context = EvaluationContext(
        "u1", {"country": "NL", "environment": "production", "email": "jo@acme.com", "plan": "pro"}
    )
    got = getattr(remote, f"get_{getter}_details")(key, DEFAULTS[getter], context)
    assert got.value == DEFAULTS[getter]
    assert got.reason == Reason.ERROR
    assert got.error_code == ErrorCode.TYPE_MISMATCH, got.error_message


def test_object_list_and_number_getters_get_the_values_themselves() -> None:
    remote = _client("tusk-typed-values", TYPED)
    context = EvaluationContext("u1", {"country": "NL", "environment": "production", "email": "jo@acme.com"})
    layout = remote.get_object_details("checkout_layout", {}, context)
    assert (layout.value, layout.variant, layout.flag_metadata["rule"]) == (
        {"rows": 50, "dense": True},
        "compact",
        "benelux",
    )
    assert remote.get_object_value("banner_slots", ["x"], context) == []
    assert remote.get_integer_value("search_limit", 0, context) == 100000
    assert remote.get_float_value("search_limit", 0.0, context) == 100000.0
    assert remote.get_string_value("new_pricing_page", "", context) == "new_pricing"
    assert remote.get_boolean_value("dark_mode_v3", False, context) is True


def test_failed_prerequisite_serves_the_off_variant_with_its_key() -> None:
    remote = _client("tusk-typed-prerequisite", TYPED)
    context = EvaluationContext("u1", {"country": "DE", "environment": "production"})
    got = remote.get_integer_details("search_limit", 0, context)
    assert (got.value, got.variant, got.reason, got.error_code) == (10, "low", "PREREQUISITE_FAILED", None)
    assert got.flag_metadata["prerequisite"] == "new_pricing_page"


def test_the_seeds_string_flag_meets_the_string_getter() -> None:
    """new_pricing_page used to serve `true` when on and a string when off: now a string either way."""
    remote = _client("tusk-typed-seed-pricing", SEED)
    on = EvaluationContext("u1", {"environment": "production", "beta_opt_in": True, "feedback_provided": 3})
    off = EvaluationContext("u1", {"environment": "staging"})
    assert remote.get_string_details("new_pricing_page", "x", on).value == "on"
    assert remote.get_string_details("new_pricing_page", "x", off).value == "legacy_pricing"
    wrong = remote.get_boolean_details("new_pricing_page", False, on)
    assert (wrong.value, wrong.error_code) == (False, ErrorCode.TYPE_MISMATCH)
