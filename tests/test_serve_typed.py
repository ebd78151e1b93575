"""`tusk serve` on typed flags (issue 16): objects, lists, numbers and strings served as such, the deciding
rule and a failed prerequisite in the flag metadata, single and bulk, through the official OFREP provider."""

from __future__ import annotations

import contextlib
import copy
import json
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

from tusklang.evaluate import Client
from tusklang.evaluate import reasons as r
from tusklang.serve import create_app

from .test_serve import typed_getters

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette nudges towards httpx2; httpx is what we have
    from starlette.testclient import TestClient

TYPED = Path(__file__).resolve().parent.parent / "fixtures" / "typed" / "snapshot.json"
BULK = "/ofrep/v1/evaluate/flags"


def typed_contexts(count: int) -> list[dict[str, Any]]:
    """Contexts that reach every rule of fixtures/typed: each attribute matching, missing or near-missing."""
    rng = random.Random(16)
    out = []
    for i in range(count):
        context: dict[str, Any] = {"user_id": f"typed-{i}"}
        choices: dict[str, list[Any]] = {
            "environment": ["production", "staging"],
            "country": ["NL", "BE", "DE", "KP"],
            "app_version": ["2.1.0", "2.0.0", "1.8.3", "3.0.0-beta.1", "4.1.0", "not a version"],
            "email": ["admin@corp.com", "jo@acme.com", "x@example.com", "ann.lee@acme.io", "a@b.c"],
            "signup": ["2023-06-01", "2024-06-01T10:00:00Z"],
            "beta_tester": [True, False],
            "seats": [5, 50, 9999, 10000],
            "plan": ["pro", "free", "team"],
            "preferences": [["dark"], ["dark", "oled"], ["light"], []],
            "created_at": ["2019-05-01T00:00:00Z", "2022-01-01T00:00:00Z"],
            "cohort": ["a"],
            "score": [0.05, 0.3, 0.5, 99.9],
        }
        for name, values in choices.items():
            if rng.random() < 0.8:  # a missing attribute is a case too
                context[name] = rng.choice(values)
        out.append(context)
    return out


@pytest.fixture
def typed_server(tmp_path: Path) -> Iterator[tuple[str, Client]]:
    path = tmp_path / "snapshot.json"
    path.write_bytes(TYPED.read_bytes())
    client = Client.from_file(path)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(client), host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", client
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _expected_metadata(local: Client, key: str, rule: str | None, prerequisite: str | None) -> dict[str, Any]:
    flag = local.snapshot.flags[key]
    out = {k: v for k, v in flag.metadata.items() if isinstance(v, bool | int | float | str)}
    if rule is not None:
        out.setdefault("rule", rule)
    if prerequisite is not None:
        out.setdefault("prerequisite", prerequisite)
    return out


def test_official_ofrep_provider_gets_typed_values_and_the_deciding_rule(typed_server: tuple[str, Client]) -> None:
    url, local = typed_server
    api.set_provider(OFREPProvider(url), domain="tusk-serve-typed")
    remote = api.get_client(domain="tusk-serve-typed")
    getters = typed_getters(remote)
    rules: dict[str, set[str | None]] = {key: set() for key in local.snapshot.flags}
    failed: set[str] = set()
    types: set[type] = set()
    for context in typed_contexts(150):
        for key in local.snapshot.flags:
            expected = local.evaluate(key, context)
            assert expected.error_code is None, expected
            getter, default = getters[type(expected.value)]
            if expected.reason == r.PREREQUISITE_FAILED:
                # openfeature-provider-ofrep (<= 0.3) looks the reason up in the SDK's enum and errors on any
                # other string, which OFREP allows: test_prerequisite_failure_is_served_with_its_key covers
                # these on the wire.
                failed.add(key)
                continue
            got = getter(key, default, EvaluationContext(attributes=context))
            assert got.error_code is None, (key, context, got.error_message)
            assert type(got.value) is type(expected.value)
            assert (got.value, got.variant, got.reason) == (expected.value, expected.variant, expected.reason)
            assert dict(got.flag_metadata) == _expected_metadata(local, key, expected.rule, None), (key, context)
            rules[key].add(expected.rule)
            types.add(type(expected.value))
    # An object, a list, a number, a string and a boolean all crossed the wire as themselves.
    assert types == {dict, list, int, str, bool}
    # Every rule-bearing flag was decided by several rules and by a failed prerequisite where it has one.
    for key in ("checkout_layout", "search_limit", "dark_mode_v3"):
        assert len(rules[key] - {None}) >= 3, rules[key]
    assert failed == {"new_pricing_page", "search_limit", "dark_mode_v3"}


def test_typed_getter_of_another_type_is_type_mismatch(typed_server: tuple[str, Client]) -> None:
    url, _ = typed_server
    api.set_provider(OFREPProvider(url), domain="tusk-serve-typed-mismatch")
    remote = api.get_client(domain="tusk-serve-typed-mismatch")
    context = EvaluationContext(attributes={"user_id": "u1", "country": "NL"})
    got = remote.get_string_details("checkout_layout", "dflt", context)
    assert got.value == "dflt"
    assert got.error_code is not None and got.error_code.value == "TYPE_MISMATCH"
    obj = remote.get_object_details("checkout_layout", {}, context)
    assert obj.value == {"rows": 50, "dense": True}
    assert obj.flag_metadata["rule"] == "benelux"


def test_prerequisite_failure_is_served_with_its_key(typed_server: tuple[str, Client]) -> None:
    url, local = typed_server
    # A unit for which new_pricing_page (required by search_limit) does not serve `on`.
    context = next(c for c in typed_contexts(200) if local.evaluate("search_limit", c).reason == r.PREREQUISITE_FAILED)
    expected = local.evaluate("search_limit", context)
    response = requests.post(f"{url}/ofrep/v1/evaluate/flags/search_limit", json={"context": context}, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["value"] == 10 and body["variant"] == "low"
    assert body["reason"] == "PREREQUISITE_FAILED"
    assert body["metadata"]["prerequisite"] == expected.prerequisite == "new_pricing_page"
    assert "rule" not in body["metadata"]
    # The official Python client: 0.3 refuses a reason outside the SDK's enum (the caller's default, GENERAL,
    # as docs/serve.md says); a client that accepts it must get the served value.
    api.set_provider(OFREPProvider(url), domain="tusk-serve-typed-prerequisite")
    got = api.get_client(domain="tusk-serve-typed-prerequisite").get_integer_details(
        "search_limit", -1, EvaluationContext(attributes=context)
    )
    if got.error_code is None:
        assert (got.value, got.reason, got.flag_metadata["prerequisite"]) == (
            10,
            "PREREQUISITE_FAILED",
            "new_pricing_page",
        )
    else:
        assert (got.value, got.error_code.value) == (-1, "GENERAL")


def test_bulk_agrees_with_single_on_every_typed_flag(typed_server: tuple[str, Client]) -> None:
    url, local = typed_server
    reasons: set[str] = set()
    for context in typed_contexts(60):
        bulk = requests.post(f"{url}{BULK}", json={"context": context}, timeout=10)
        assert bulk.status_code == 200
        flags = {flag["key"]: flag for flag in bulk.json()["flags"]}
        assert set(flags) == set(local.snapshot.flags)
        for key, flag in flags.items():
            single = requests.post(f"{url}{BULK}/{key}", json={"context": context}, timeout=10).json()
            assert flag == single, (key, context)
            expected = local.evaluate(key, context)
            assert (flag["value"], flag["variant"], flag["reason"]) == (
                expected.value,
                expected.variant,
                expected.reason,
            )
            assert flag["metadata"] == _expected_metadata(local, key, expected.rule, expected.prerequisite)
            reasons.add(flag["reason"])
    assert {r.PREREQUISITE_FAILED, r.TARGETING_MATCH, r.STATIC} <= reasons


def _two_bucketings(tmp_path: Path) -> Path:
    """fixtures/typed with checkout_layout (required by new_pricing_page) bucketing by `account_id`."""
    data = json.loads(TYPED.read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    data["flags"]["checkout_layout"]["bucket_by"] = "account_id"
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_targeting_key_stands_in_for_each_prerequisites_bucketing_attribute(tmp_path: Path) -> None:
    path = _two_bucketings(tmp_path)
    local = Client.from_file(path)
    with TestClient(create_app(path)) as http:
        checked = 0
        for i in range(300):
            unit = f"unit-{i}"
            context = {"targetingKey": unit, "environment": "production", "country": "DE"}
            # What each flag serves on its own for this unit: a prerequisite must see the same unit id.
            layout = local.evaluate("checkout_layout", {**context, "account_id": unit})
            pricing = local.evaluate("new_pricing_page", {**context, "account_id": unit, "user_id": unit})
            single = http.post(f"{BULK}/new_pricing_page", json={"context": context}).json()
            assert (single["value"], single["variant"], single["reason"]) == (
                pricing.value,
                pricing.variant,
                pricing.reason,
            )
            if layout.variant not in ("compact", "roomy"):
                assert single["reason"] == "PREREQUISITE_FAILED"
                checked += 1
            # Bulk: flags bucket by different attributes, so each gets its own context; same answers.
            bulk = {f["key"]: f for f in http.post(BULK, json={"context": context}).json()["flags"]}
            assert bulk["new_pricing_page"] == single
            assert bulk["checkout_layout"]["variant"] == layout.variant
        assert 0 < checked < 300


@contextlib.contextmanager
def _tusk_serve(path: Path) -> Iterator[str]:
    """`tusk serve` itself (its own HTTP protocol and fast path) on ``path``; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    log_path = path.with_suffix(".log")
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tusklang.cli", "serve", str(path), "--port", str(port), "--quiet"],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        try:
            while True:
                assert proc.poll() is None, log_path.read_text()
                try:
                    if requests.get(f"{url}/health", timeout=0.5).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                assert time.monotonic() < deadline, "tusk serve did not start"
                time.sleep(0.05)
            yield url
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


@pytest.fixture
def tusk_serve(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "snapshot.json"
    path.write_bytes(TYPED.read_bytes())
    with _tusk_serve(path) as url:
        yield url


def test_tusk_serve_process_serves_typed_values_rules_and_prerequisites(tusk_serve: str) -> None:
    local = Client.from_file(TYPED)
    api.set_provider(OFREPProvider(tusk_serve), domain="tusk-serve-process-typed")
    getters = typed_getters(api.get_client(domain="tusk-serve-process-typed"))
    types: set[type] = set()
    failed = 0
    session = requests.Session()
    for context in typed_contexts(40):
        bulk = {f["key"]: f for f in session.post(f"{tusk_serve}{BULK}", json={"context": context}).json()["flags"]}
        for key in local.snapshot.flags:
            expected = local.evaluate(key, context)
            metadata = _expected_metadata(local, key, expected.rule, expected.prerequisite)
            single = session.post(f"{tusk_serve}{BULK}/{key}", json={"context": context}).json()
            for body in (single, bulk[key]):
                assert (body["value"], body["variant"], body["reason"], body["metadata"]) == (
                    expected.value,
                    expected.variant,
                    expected.reason,
                    metadata,
                ), (key, context)
                assert type(body["value"]) is type(expected.value)
            if expected.reason == r.PREREQUISITE_FAILED:
                failed += 1
                continue  # the Python client refuses that reason (see the test above)
            getter, default = getters[type(expected.value)]
            got = getter(key, default, EvaluationContext(attributes=context))
            assert (got.value, got.variant, got.reason) == (expected.value, expected.variant, expected.reason)
            assert dict(got.flag_metadata) == metadata
            types.add(type(expected.value))
    assert types == {dict, list, int, str, bool} and failed > 0


def test_tusk_serve_process_fills_each_prerequisites_bucketing_attribute(tmp_path: Path) -> None:
    path = _two_bucketings(tmp_path)
    local = Client.from_file(path)
    session = requests.Session()
    with _tusk_serve(path) as url:
        failed = 0
        for i in range(200):
            unit = f"unit-{i}"
            context = {"targetingKey": unit, "environment": "production", "country": "DE"}
            pricing = local.evaluate("new_pricing_page", {**context, "account_id": unit, "user_id": unit})
            layout = local.evaluate("checkout_layout", {**context, "account_id": unit})
            single = session.post(f"{url}{BULK}/new_pricing_page", json={"context": context}).json()
            assert (single["value"], single["variant"], single["reason"]) == (
                pricing.value,
                pricing.variant,
                pricing.reason,
            )
            bulk = {f["key"]: f for f in session.post(f"{url}{BULK}", json={"context": context}).json()["flags"]}
            assert bulk["new_pricing_page"] == single
            assert bulk["checkout_layout"]["variant"] == layout.variant
            failed += pricing.reason == r.PREREQUISITE_FAILED
        assert 0 < failed < 200
