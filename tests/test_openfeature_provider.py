"""TuskProvider behind the real OpenFeature Python SDK answers what Client.evaluate answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.track import TrackingEventDetails

from tusklang.evaluate import Client
from tusklang.openfeature import TuskProvider

from .test_serve import _seed_contexts, typed_getters

GOLDEN = Path(__file__).resolve().parent.parent / "fixtures" / "seed" / "snapshot.json"

NUMBERS = {
    "format": "tusklang.snapshot/1",
    "flags": {
        "limit": {
            "key": "limit",
            "type": "number",
            "variants": {"low": 10, "high": 2.5},
            "off_variant": "low",
            "default_variant": "low",
            "rules": [
                {"id": "vip", "conditions": [{"attribute": "tier", "op": "==", "value": "vip"}], "serve": "high"}
            ],
        },
        "ratio": {
            "key": "ratio",
            "type": "number",
            "variants": {"one": 1},
            "off_variant": "one",
            "default_variant": "one",
            "rules": [],
        },
    },
}


class Recorder:
    def __init__(self) -> None:
        self.conversions: list[tuple[str, dict[str, Any], float | None]] = []

    def evaluation(self, context: Any, result: Any) -> None:
        pass

    def conversion(self, event: str, context: Any, value: float | None) -> None:
        self.conversions.append((event, dict(context), value))


def _client(domain: str, provider: TuskProvider) -> Any:
    api.set_provider(provider, domain=domain)
    return api.get_client(domain=domain)


def test_every_seed_flag_through_the_openfeature_sdk_matches_the_evaluator() -> None:
    local = Client.from_file(GOLDEN)
    remote = _client("tusk-in-process-seed", TuskProvider.from_file(GOLDEN))
    getters = typed_getters(remote)
    keys = [*local.snapshot.flags, *local.snapshot.experiments]
    reasons: set[str] = set()
    for context in _seed_contexts(200):
        for key in keys:
            expected = local.evaluate(key, context)
            getter, default = getters[type(expected.value)]
            got = getter(key, default, EvaluationContext(attributes=context))
            assert got.error_code is None, (key, got.error_message)
            assert (got.value, got.variant, got.reason) == (expected.value, expected.variant, expected.reason)
            assert got.flag_metadata.get("rule") == expected.rule or expected.rule is None
            reasons.add(got.reason)
    assert {"DEFAULT", "SPLIT", "TARGETING_MATCH", "DISABLED"} <= reasons


def test_the_targeting_key_buckets_like_the_flags_unit_attribute() -> None:
    local = Client.from_file(GOLDEN)
    remote = _client("tusk-in-process-key", TuskProvider(local))
    context = {"environment": "staging", "platform": "web"}
    for i in range(200):
        by_key = remote.get_boolean_details("checkout_express", False, EvaluationContext(f"u{i}", context))
        assert by_key.variant == local.evaluate("checkout_express", {**context, "user_id": f"u{i}"}).variant


def test_errors_return_the_callers_default_with_the_openfeature_code() -> None:
    remote = _client("tusk-in-process-errors", TuskProvider(Client(NUMBERS)))
    missing = remote.get_boolean_details("no_such_flag", True)
    assert (missing.value, missing.reason, missing.error_code) == (True, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND)
    wrong = remote.get_string_details("limit", "fallback")
    assert (wrong.value, wrong.error_code) == ("fallback", ErrorCode.TYPE_MISMATCH)


def test_numbers_meet_integer_and_float_getters_exactly() -> None:
    remote = _client("tusk-in-process-numbers", TuskProvider(Client(NUMBERS)))
    assert remote.get_integer_details("limit", 0).value == 10
    assert remote.get_float_details("limit", 0.0, EvaluationContext("u", {"tier": "vip"})).value == 2.5
    not_whole = remote.get_integer_details("limit", 7, EvaluationContext("u", {"tier": "vip"}))
    assert (not_whole.value, not_whole.error_code) == (7, ErrorCode.TYPE_MISMATCH)
    whole = remote.get_float_details("ratio", 0.0)
    assert whole.value == 1.0 and isinstance(whole.value, float) and whole.error_code is None


def test_track_records_a_conversion_with_the_clients_tracker() -> None:
    recorder = Recorder()
    remote = _client("tusk-in-process-track", TuskProvider(Client(json.loads(GOLDEN.read_text()), tracker=recorder)))
    remote.track("purchase", EvaluationContext("u42", {"user_id": "u42"}), TrackingEventDetails(value=12.5))
    assert recorder.conversions == [("purchase", {"user_id": "u42", "targetingKey": "u42"}, 12.5)]
