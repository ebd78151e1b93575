"""`tusk serve`: the OFREP server answers exactly what the reference evaluator answers."""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import ErrorCode, Reason

from tusklang.evaluate import Client
from tusklang.serve import ACCESS_LOGGER, create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette nudges towards httpx2; httpx is what we have
    from starlette.testclient import TestClient

SUITE = Path(__file__).resolve().parent.parent / "fixtures" / "conformance"
TOPICS = ["comparisons", "rollout", "segments", "split"]
CONTEXTS_PER_TOPIC = 200


def _suite(topic: str) -> dict[str, Any]:
    return json.loads((SUITE / f"{topic}.json").read_text(encoding="utf-8"))


GOLDEN = Path(__file__).resolve().parent.parent / "fixtures" / "seed" / "snapshot.json"


def _write_snapshot(path: Path, topic: str) -> Path:
    if topic == "seed":
        path.write_bytes(GOLDEN.read_bytes())
        return path
    path.write_text(json.dumps(_suite(topic)["snapshots"]["s"]), encoding="utf-8")
    return path


def typed_getters(remote: Any) -> dict[type, tuple[Any, Any]]:
    """The OpenFeature client's typed getter (and a default of that type) for each Python value type."""
    return {
        bool: (remote.get_boolean_details, False),
        str: (remote.get_string_details, ""),
        int: (remote.get_integer_details, 0),
        float: (remote.get_float_details, 0.0),
        dict: (remote.get_object_details, {}),
        list: (remote.get_object_details, []),
    }


def _seed_contexts(count: int) -> list[dict[str, Any]]:
    """Contexts that reach the golden seed snapshot's rules: matching, near-missing and missing values."""
    rng = random.Random(7)
    out = []
    for i in range(count):
        context: dict[str, Any] = {
            "user_id": f"seed-user-{i}",
            "environment": rng.choice(["production", "staging", "development"]),
            "region": rng.choice(["us-east", "eu-west", "us-west-2", "us-east-1", "eu-west-1"]),
            "device_type": rng.choice(["mobile", "desktop", "tablet"]),
            "platform": rng.choice(["web", "android", "ios"]),
            "plan": rng.choice(["enterprise", "free"]),
            "sessions": rng.randrange(25),
            "purchases": rng.randrange(5),
            "session_frequency": rng.randrange(8),
            "feature_usage": rng.randrange(15),
            "account_age": rng.randrange(60),
            "feedback_score": float(rng.randrange(6)),
            "beta_opt_in": rng.random() < 0.5,
            "feedback_provided": rng.randrange(5),
            "beta_tester": rng.random() < 0.5,
            "user_preferences": rng.choice([["dark_mode_enabled"], []]),
            "timezone": rng.choice(["Europe/Berlin", "America/New_York", "Asia/Tokyo"]),
        }
        tier = rng.choice(["free", "premium", "enterprise", None])
        if tier is not None:
            context["account_tier"] = tier
        if i % 3 == 0:  # a production power user, so the narrowest rules are reached too
            context.update(
                environment="production",
                account_tier="premium",
                session_frequency=rng.randrange(5, 8),
                feature_usage=rng.randrange(10, 15),
                platform=rng.choice(["web", "ios"]),
                region=rng.choice(["us-west-2", "us-east-1", "eu-west-1"]),
            )
        out.append(context)
    return out


def _contexts(topic: str, count: int) -> list[dict[str, Any]]:
    """The suite's own contexts, then the same shapes for other units, until there are ``count``."""
    seeds = [case["context"] for case in _suite(topic)["cases"] if isinstance(case["context"], dict)]
    out = []
    for i in range(count):
        context = dict(seeds[i % len(seeds)])
        if i >= len(seeds):
            context["user_id"] = f"unit-{i}"
        out.append(context)
    return out


def _bump_mtime(path: Path, step: int) -> None:
    # Two writes within the file system's timestamp granularity must still look like a change.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + step * 1_000_000_000))


@pytest.fixture
def serve_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Client]]:
    client = Client.from_file(_write_snapshot(tmp_path / "snapshot.json", request.param))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # uvicorn binds the port itself: handing it a pre-bound socket loses TCP_NODELAY (40 ms per request).
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


@pytest.mark.parametrize("serve_url", TOPICS, indirect=True)
def test_openfeature_ofrep_provider_gets_the_reference_answers(
    serve_url: tuple[str, Client], request: pytest.FixtureRequest
) -> None:
    url, local = serve_url
    domain = f"tusk-serve-{request.node.name}"
    api.set_provider(OFREPProvider(url), domain=domain)
    remote = api.get_client(domain=domain)
    snapshot = local.snapshot
    keys = [*snapshot.flags, *snapshot.experiments]
    getters = typed_getters(remote)
    reasons: set[str] = set()
    for context in _contexts(request.node.callspec.params["serve_url"], CONTEXTS_PER_TOPIC):
        for key in keys:
            expected = local.evaluate(key, context)
            assert expected.error_code is None, expected
            getter, default = getters[type(expected.value)]
            got = getter(key, default, EvaluationContext(attributes=context))
            assert got.error_code is None, (key, context, got.error_message)
            assert (got.value, got.variant, got.reason) == (expected.value, expected.variant, expected.reason), (
                key,
                context,
            )
            reasons.add(expected.reason)
    # The comparison covered real decisions, not one reason repeated.
    assert len(reasons) >= 2


@pytest.mark.parametrize("serve_url", ["seed"], indirect=True)
def test_openfeature_ofrep_provider_agrees_on_every_flag_of_the_golden_seed_snapshot(
    serve_url: tuple[str, Client],
) -> None:
    url, local = serve_url
    api.set_provider(OFREPProvider(url), domain="tusk-serve-seed")
    remote = api.get_client(domain="tusk-serve-seed")
    keys = [*local.snapshot.flags, *local.snapshot.experiments]
    assert len(keys) == 13
    getters = typed_getters(remote)
    seen: dict[str, set[str]] = {key: set() for key in keys}
    for context in _seed_contexts(300):
        for key in keys:
            expected = local.evaluate(key, context)
            getter, default = getters[type(expected.value)]
            got = getter(key, default, EvaluationContext(attributes=context))
            assert got.error_code is None, (key, context, got.error_message)
            assert (got.value, got.variant, got.reason) == (expected.value, expected.variant, expected.reason), (
                key,
                context,
            )
            seen[key].add(f"{expected.reason}:{expected.variant}")
    # Not one answer repeated: every flag whose answer can vary served more than one outcome. Fixed ones:
    # dark_mode_v2 is disabled, the experiment's window closed in 2024, onboarding_tour serves everyone.
    fixed = {"dark_mode_v2", "checkout_optimization", "onboarding_tour"}
    assert all(len(outcomes) > 1 for key, outcomes in seen.items() if key not in fixed and key != "dark_mode"), seen


@pytest.mark.parametrize("serve_url", ["split"], indirect=True)
def test_openfeature_provider_sees_flag_not_found(serve_url: tuple[str, Client]) -> None:
    url, _ = serve_url
    api.set_provider(OFREPProvider(url), domain="tusk-serve-missing")
    got = api.get_client(domain="tusk-serve-missing").get_boolean_details("no_such_flag", True)
    assert got.value is True
    assert got.reason == Reason.ERROR
    assert got.error_code == ErrorCode.FLAG_NOT_FOUND


# --- protocol edge cases through the ASGI app -------------------------------------------------------


@pytest.fixture
def snapshot_path(tmp_path: Path) -> Path:
    return _write_snapshot(tmp_path / "snapshot.json", "split")


@pytest.fixture
def http(snapshot_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(snapshot_path, watch_interval=0.02, max_body_bytes=1024)) as client:
        yield client


FLAG = "/ofrep/v1/evaluate/flags/ai_recommendations"
BULK = "/ofrep/v1/evaluate/flags"
PREMIUM = {"user_id": "user-3", "account_tier": "premium", "sessions": 12}


def test_single_flag_response_shape(http: TestClient, snapshot_path: Path) -> None:
    response = http.post(FLAG, json={"context": PREMIUM})
    assert response.status_code == 200
    body = response.json()
    expected = Client.from_file(snapshot_path).evaluate("ai_recommendations", PREMIUM)
    assert body["key"] == "ai_recommendations"
    assert (body["value"], body["variant"], body["reason"]) == (expected.value, expected.variant, expected.reason)
    assert body["metadata"]["rule"] == expected.rule


def test_targeting_key_stands_in_for_the_bucketing_attribute(http: TestClient, snapshot_path: Path) -> None:
    local = Client.from_file(snapshot_path)
    for i in range(30):
        context = {"account_tier": "premium", "sessions": 12}
        body = http.post(FLAG, json={"context": {**context, "targetingKey": f"user-{i}"}}).json()
        expected = local.evaluate("ai_recommendations", {**context, "user_id": f"user-{i}"})
        assert (body["value"], body["reason"]) == (expected.value, expected.reason)


def test_tusk_eval_gives_what_the_server_gives_for_a_targeting_key(
    http: TestClient, snapshot_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A context copied from an OFREP request into `tusk eval` (one flag, and --all) gets the server's answer.
    from tusklang.cli import main

    for i in range(20):
        context = {"account_tier": "premium", "sessions": 12, "targetingKey": f"user-{i}"}
        served = http.post(FLAG, json={"context": context}).json()
        assert (
            main(
                ["eval", str(snapshot_path), "ai_recommendations", "--context", json.dumps(context), "--format", "json"]
            )
            == 0
        )
        local = json.loads(capsys.readouterr().out)
        assert (local["value"], local["variant"], local["reason"]) == (
            served["value"],
            served["variant"],
            served["reason"],
        )
        bulk = {f["key"]: f for f in http.post(BULK, json={"context": context}).json()["flags"]}
        main(["eval", str(snapshot_path), "--all", "--context", json.dumps(context), "--format", "json"])
        every = json.loads(capsys.readouterr().out)
        assert set(every) == set(bulk)
        for key, answer in every.items():
            if "errorCode" not in bulk[key]:
                assert (answer["value"], answer["reason"]) == (bulk[key]["value"], bulk[key]["reason"]), key


def test_unknown_flag_is_404_flag_not_found(http: TestClient) -> None:
    response = http.post("/ofrep/v1/evaluate/flags/nope", json={"context": {}})
    assert response.status_code == 404
    body = response.json()
    assert body["key"] == "nope"
    assert body["errorCode"] == "FLAG_NOT_FOUND"
    assert "nope" in body["errorDetails"]


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"{not json", "PARSE_ERROR"),
        (b"[1, 2]", "PARSE_ERROR"),
        (b'{"context": [1]}', "INVALID_CONTEXT"),
        (b'{"context": "user-1"}', "INVALID_CONTEXT"),
    ],
)
def test_bad_bodies_are_400(http: TestClient, content: bytes, code: str) -> None:
    for path in (FLAG, BULK):
        response = http.post(path, content=content, headers={"content-type": "application/json"})
        assert response.status_code == 400, path
        assert response.json()["errorCode"] == code
        assert response.json()["errorDetails"]


def test_missing_body_means_empty_context(http: TestClient) -> None:
    response = http.post(FLAG)
    assert response.status_code == 200
    assert response.json()["reason"] == "DEFAULT"


def test_oversized_body_is_413(http: TestClient) -> None:
    big = {"context": {"user_id": "u", "padding": "x" * 2000}}
    assert http.post(FLAG, json=big).status_code == 413
    assert http.post(BULK, json=big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
        yield b'{"context": {"pad": "'
        for _ in range(10):
            yield b"x" * 200
        yield b'"}}'

    assert http.post(FLAG, content=chunks()).status_code == 413
    assert http.post(FLAG, json={"context": {"user_id": "u"}}).status_code == 200


def test_bulk_evaluates_every_flag_with_an_etag(http: TestClient, snapshot_path: Path) -> None:
    local = Client.from_file(snapshot_path)
    response = http.post(BULK, json={"context": PREMIUM})
    assert response.status_code == 200
    flags = {f["key"]: f for f in response.json()["flags"]}
    assert set(flags) == set(local.snapshot.flags)
    for key, flag in flags.items():
        expected = local.evaluate(key, PREMIUM)
        assert (flag["value"], flag["variant"], flag["reason"]) == (expected.value, expected.variant, expected.reason)
    etag = response.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')

    again = http.post(BULK, json={"context": PREMIUM}, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert (
        http.post(BULK, json={"context": PREMIUM}, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    )
    assert http.post(BULK, json={"context": PREMIUM}, headers={"If-None-Match": '"stale"'}).status_code == 200

    other = http.post(BULK, json={"context": {"user_id": "user-3"}})
    assert other.json() != response.json()
    assert other.headers["etag"] != etag


def test_health_reports_the_live_snapshot(http: TestClient) -> None:
    response = http.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["format"] == "tusklang.snapshot/1"
    assert body["flags"] == 3
    assert len(body["snapshot_sha256"]) == 64


def _wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_reloads_on_change_and_keeps_the_last_good_snapshot(http: TestClient, snapshot_path: Path) -> None:
    before = http.get("/health").json()
    first = http.post(BULK, json={"context": PREMIUM})

    data = json.loads(snapshot_path.read_text(encoding="utf-8"))
    flag = data["flags"]["ai_recommendations"]
    flag["enabled"] = False
    snapshot_path.write_text(json.dumps(data), encoding="utf-8")
    _bump_mtime(snapshot_path, 1)
    _wait_for(lambda: http.get("/health").json()["snapshot_sha256"] != before["snapshot_sha256"])
    body = http.post(FLAG, json={"context": PREMIUM}).json()
    assert (body["reason"], body["variant"]) == ("DISABLED", flag["off_variant"])
    # The bulk answer changed, so its ETag did: a cached copy is not revalidated.
    assert (
        http.post(BULK, json={"context": PREMIUM}, headers={"If-None-Match": first.headers["etag"]}).status_code == 200
    )

    reloaded = http.get("/health").json()
    assert reloaded["snapshot"]["reloads"] == 1 and reloaded["snapshot"]["rejected"] is None
    good = snapshot_path.read_text(encoding="utf-8")
    snapshot_path.write_text("{ this is not a snapshot", encoding="utf-8")
    _bump_mtime(snapshot_path, 2)
    _wait_for(lambda: http.get("/health").json()["status"] == "degraded")
    refused = http.get("/health").json()
    # Still the last good snapshot, and the refusal says why and when.
    assert refused["snapshot_sha256"] == reloaded["snapshot_sha256"]
    assert refused["snapshot"]["status"] == "degraded"
    assert "not valid JSON" in refused["snapshot"]["rejected"]["reason"]
    assert refused["snapshot"]["rejected"]["at"].endswith("Z")
    assert http.post(FLAG, json={"context": PREMIUM}).json()["reason"] == "DISABLED"

    snapshot_path.write_text(good, encoding="utf-8")  # a good file loads again: ok
    _bump_mtime(snapshot_path, 3)
    _wait_for(lambda: http.get("/health").json()["status"] == "ok")
    assert http.get("/health").json()["snapshot"]["reloads"] == 2


def test_access_log_is_json_without_context_values(snapshot_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cret-email@example.com"
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER), TestClient(create_app(snapshot_path)) as http:
        http.post(FLAG, json={"context": {**PREMIUM, "email": secret}})
        http.post(BULK, json={"context": {"email": secret}})
        http.post("/ofrep/v1/evaluate/flags/nope", json={"context": {"email": secret}})
    lines = [json.loads(rec.getMessage()) for rec in caplog.records if rec.name == ACCESS_LOGGER]
    assert len(lines) == 3
    assert all(secret not in json.dumps(line) for line in lines)
    assert lines[0]["flag"] == "ai_recommendations"
    assert lines[0]["status"] == 200
    assert lines[0]["context_keys"] == sorted([*PREMIUM, "email"])
    assert lines[0]["reason"] in ("SPLIT", "TARGETING_MATCH", "DEFAULT")
    assert lines[0]["latency_ms"] >= 0
    assert lines[1]["flags"] == 3
    assert (lines[2]["status"], lines[2]["error_code"]) == (404, "FLAG_NOT_FOUND")
