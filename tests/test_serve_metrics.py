"""`GET /metrics`: Prometheus text that prometheus_client's own parser reads, with counters that move as
requests are served, in one process and summed across `tusk serve --workers`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tusklang.serve import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "fixtures" / "seed" / "snapshot.json"
FLAG = "/ofrep/v1/evaluate/flags/new_checkout_flow"
BULK = "/ofrep/v1/evaluate/flags"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of the exposition, by (sample name, sorted labels); parsing fails on bad text."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_metrics_parse_and_count_requests_evaluations_and_latency(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    shutil.copy(SEED, path)
    with TestClient(create_app(path, watch_interval=0.02)) as http:
        first = http.get("/metrics")
        assert first.status_code == 200
        assert first.headers["content-type"].startswith("text/plain; version=0.0.4")
        before = samples(first.text)
        flags = len(json.loads(SEED.read_text())["flags"]) + len(json.loads(SEED.read_text())["experiments"])

        answers = [
            http.post(
                FLAG, json={"context": {"targetingKey": f"u{i}", "user_id": f"u{i}", "environment": "production"}}
            )
            for i in range(7)
        ]
        assert {a.status_code for a in answers} == {200}
        bulk = http.post(BULK, json={"context": {"targetingKey": "u1"}})
        assert bulk.status_code == 200
        assert http.post("/ofrep/v1/evaluate/flags/no_such_flag", json={}).status_code == 404
        assert http.post(FLAG, content=b"{", headers={"content-type": "application/json"}).status_code == 400
        after = samples(http.get("/metrics").text)

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert moved("tusk_http_requests_total", route="flag", status="200") == 7
        assert moved("tusk_http_requests_total", route="bulk", status="200") == 1
        assert moved("tusk_http_requests_total", route="flag", status="404") == 1
        assert moved("tusk_http_requests_total", route="flag", status="400") == 1
        assert moved("tusk_http_requests_total", route="metrics", status="200") == 1  # the first scrape
        assert moved("tusk_http_request_duration_seconds_count", route="flag") == 9
        assert moved("tusk_http_request_duration_seconds_bucket", route="flag", le="+Inf") == 9
        assert moved("tusk_http_request_duration_seconds_sum", route="flag") > 0

        # Evaluations by flag, variant and reason: each single answer once, the bulk answer once per flag.
        served = [a.json() for a in answers] + [
            {"key": f["key"], "variant": f.get("variant") or "", "reason": f.get("reason", "ERROR")}
            for f in bulk.json()["flags"]
        ]
        expected: dict[tuple[str, str, str], int] = {}
        for answer in served:
            key = (answer["key"], answer["variant"] or "", answer["reason"])
            expected[key] = expected.get(key, 0) + 1
        for (flag, variant, reason), n in expected.items():
            assert moved("tusk_evaluations_total", flag=flag, variant=variant, reason=reason) == n
        evaluations = sum(v for (name, _), v in after.items() if name == "tusk_evaluations_total")
        assert evaluations == 7 + flags + 1  # the unknown flag is an evaluation too (FLAG_NOT_FOUND)

        # The snapshot: its digest is the one /health shows; a refused file is counted and shown.
        health = http.get("/health").json()
        assert value(after, "tusk_snapshot_info", worker="0", sha256=health["snapshot_sha256"], format=health["format"])
        assert value(after, "tusk_snapshot_flags", worker="0") == health["flags"]
        assert value(after, "tusk_snapshot_degraded", worker="0") == 0
        path.write_text("[" * 2000)
        _wait_for(lambda: http.get("/health").json()["snapshot"]["status"] == "degraded")
        refused = samples(http.get("/metrics").text)
        assert value(refused, "tusk_snapshot_reload_failures_total") >= 1
        assert value(refused, "tusk_snapshot_degraded", worker="0") == 1
        shutil.copy(SEED, path)
        _wait_for(lambda: http.get("/health").json()["snapshot"]["status"] == "ok")
        back = samples(http.get("/metrics").text)
        assert value(back, "tusk_snapshot_degraded", worker="0") == 0
        assert value(back, "tusk_snapshot_reloads", worker="0") >= 1


# --- tusk serve: workers, the override watcher and the event store -------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_workers_sum_counters_and_label_gauges(tmp_path: Path, redis_url: str) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    prefix = f"tusk-metrics-{uuid.uuid4().hex[:8]}:"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "tusklang.cli", "serve", str(SEED), "--port", str(port), "--workers", "2"),
                *("--redis", redis_url, "--prefix", prefix, "--events-db", f"sqlite:///{tmp_path / 'events.db'}"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TUSK_PII_KEY": "a-test-key-of-32-bytes-for-hmac!"},
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return httpx.get(f"{base}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        _wait_for(up, 30)
        sent = 60
        for i in range(sent):  # a new connection each time, so both workers answer some
            answer = httpx.post(f"{base}{FLAG}", json={"context": {"targetingKey": f"w{i}"}}, timeout=5)
            assert answer.status_code == 200

        def scrape() -> Samples:
            return samples(httpx.get(f"{base}/metrics", timeout=5).text)

        # During traffic, scrapes answered by either worker never go backwards (Prometheus would read a
        # drop as a counter reset).
        previous = 0.0
        for i in range(12):
            for _ in range(5):
                answer = httpx.post(f"{base}{FLAG}", json={"context": {"targetingKey": f"m{i}"}}, timeout=5)
                assert answer.status_code == 200
            now = value(scrape(), "tusk_http_requests_total", route="flag", status="200")
            assert previous <= now <= sent + 5 * (i + 1)
            previous = now
        sent += 60
        # Whichever worker answers, the counters are the whole server's once the others have published.
        _wait_for(lambda: value(scrape(), "tusk_http_requests_total", route="flag", status="200") == sent, 10)
        seen_workers: set[str] = set()
        for _ in range(6):
            found = scrape()
            assert value(found, "tusk_http_requests_total", route="flag", status="200") == sent
            assert sum(v for (n, _), v in found.items() if n == "tusk_evaluations_total") == sent
            workers = {dict(labels)["worker"] for (n, labels) in found if n == "tusk_snapshot_flags"}
            assert workers == {"0", "1"}
            seen_workers |= workers
            for worker in workers:
                assert value(found, "tusk_overrides_up", worker=worker) == 1
                assert ("tusk_events_queued", (("worker", worker),)) in found
            for name in ("tusk_events_written_total", "tusk_events_dropped_total", "tusk_events_failed_total"):
                assert (name, ()) in found
            assert value(found, "tusk_http_header_timeouts_total") == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("workers", [1, 2])
def test_access_log_holds_every_request_after_sigterm(tmp_path: Path, workers: int) -> None:
    """The access log is written off the request path, and whatever is queued is written at the stop."""
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tusklang.cli", "serve", str(SEED), "--port", str(port), "--workers", str(workers)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return httpx.post(f"{base}{FLAG}", json={}, timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        _wait_for(up, 30)
        with httpx.Client(base_url=base, timeout=5) as http:
            for i in range(50):
                assert (
                    http.post(BULK if i % 5 == 0 else FLAG, json={"context": {"user_id": f"a{i}"}}).status_code == 200
                )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    posts = [line for line in lines if line["method"] == "POST" and line["status"] == 200]
    assert len(posts) >= 51  # the 50, and the readiness probe(s)
    assert all("context_keys" in line and "latency_ms" in line for line in posts)


def test_workers_stop_when_the_parent_is_killed(tmp_path: Path) -> None:
    """A worker left without its parent (SIGKILL, OOM killer) stops instead of holding the port."""
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tusklang.cli", "serve", str(SEED), "--port", str(port), "--workers", "2"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def up() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        _wait_for(up, 30)
        children_file = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        workers = [int(pid) for pid in children_file.read_text().split()]
        assert len(workers) == 2
        proc.kill()
        proc.wait(timeout=10)

        def gone(pid: int) -> bool:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                return True
            return state == "Z"  # exited, not yet reaped by init

        _wait_for(lambda: all(gone(pid) for pid in workers), 20)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
