"""Issue 17, "Must show": the canary controller moves real traffic.

Real PostgreSQL (the delivery store: decisions, metric samples, the lease), real Redis (the override
layer), a `tusk serve --redis` subprocess, `tusk rollout run` subprocesses, and the official OFREP
provider (`openfeature-provider-ofrep`) as the client:

1. a rollout bound to flag `checkout_v2` starts at 10%;
2. good metrics (canary and stable) are recorded and the controller advances: the share of OFREP
   evaluations that return the canary variant follows 10 -> 20 -> 30, each within sampling error over
   2,000 distinct users, and a probe user between two steps flips within one second of the decision;
3. a controller stopped (test hook) between its decision to go to 30% and the override write is
   SIGKILLed: traffic stays at 20%; a second controller, started with --wait, takes the lease when the
   dead one's expires, writes the pending decision exactly once and traffic converges to 30%;
4. a bad window (canary error rate far above stable's) rolls back: 0% within one second, and the
   override layer's audit log shows the rollback, by the controller, with its reason.
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

from tusklang.cli import main
from tusklang.delivery.db import Database
from tusklang.delivery.metrics import Sample, SqlMetricSource
from tusklang.delivery.state import RolloutStore
from tusklang.evaluate.bucketing import bucket
from tusklang.overrides import OverrideStore

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

FLAG = "checkout_v2"
SALT = f"{FLAG}/rollout"
SCALE = 100_000
PERIOD = 12  # seconds: long enough to sample 2,000 users through OFREP between two decisions
USERS_PER_STEP = 2_000
LEASE_TTL = 2.0

SNAPSHOT = {
    "format": "tusklang.snapshot/1",
    "flags": {
        FLAG: {
            "key": FLAG,
            "type": "string",
            "variants": {"stable": "v1", "canary": "v2"},
            "off_variant": "stable",
            "default_variant": "stable",
            "rules": [
                # An exception list first (staff always see the canary): the binding must move the
                # rollout rule, the only one with a rollout gate, not this one.
                {
                    "id": "staff",
                    "conditions": [{"op": "ends_with", "attribute": "email", "value": "@example.com"}],
                    "serve": "canary",
                },
                {"id": "canary", "rollout": {"salt": SALT, "percentage": 0}, "serve": "canary"},
            ],
        }
    },
}

POLICY = {
    "progressive_delivery": {
        "canary_deployments": {
            "flag": FLAG,
            "traffic_split": {"canary": 10, "stable": 90},
            "step_size": 10,
            "health_checks": {
                "metrics": ["error_rate", "latency_p95"],
                "thresholds": {"error_rate": 0.05, "latency_p95": 800},
                "compare": {"error_rate": {"max_ratio": 2, "max_difference": 0.01}},
                "evaluation_period": f"{PERIOD} seconds",
                "min_samples": 5,
            },
            "rollback": {"automatic": True, "failure_limit": 1, "cooldown_period": "1 minute"},
        }
    }
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _units(percent: float) -> int:
    return round(percent * SCALE / 100)


def _probe(low: float, high: float, taken: set[str]) -> str:
    """A user admitted at ``high`` percent but not at ``low``: the one that flips at that step."""
    for i in range(1_000_000):
        user = f"probe-{i}"
        if user not in taken and _units(low) <= bucket(SALT, user, SCALE) < _units(high):
            taken.add(user)
            return user
    raise AssertionError("no probe user")


@dataclass
class Lines:
    """A subprocess's output lines, each with the wall-clock time it arrived."""

    items: queue.Queue[tuple[float, str]] = field(default_factory=queue.Queue)
    seen: list[tuple[float, str]] = field(default_factory=list)

    def follow(self, stream: Any) -> None:
        def pump() -> None:
            for raw in iter(stream.readline, b""):
                self.items.put((time.time(), raw.decode("utf-8", "replace").rstrip("\n")))

        threading.Thread(target=pump, daemon=True).start()

    def wait_for(self, predicate: Any, timeout: float, what: str) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {what} within {timeout} s; got: {[line for _, line in self.seen][-8:]}"
            try:
                item = self.items.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            self.seen.append(item)
            if predicate(item[1]):
                return item


class Probes:
    """Polls a few users through the OFREP provider all the time and records when each one's variant
    changes: the first answer with the new variant bounds how long a decision took to reach clients."""

    def __init__(self, client: Any, users: list[str]) -> None:
        self.client = client
        self.users = users
        self.changes: dict[str, list[tuple[float, str]]] = {u: [] for u in users}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for user in self.users:
                answer = self.client.get_string_details(FLAG, "none", EvaluationContext(user)).variant
                history = self.changes[user]
                if not history or history[-1][1] != answer:
                    history.append((time.time(), answer))
            time.sleep(0.005)

    def flipped_to(self, user: str, variant: str, after: float) -> float | None:
        """When ``user`` was first seen on ``variant`` at or after ``after``."""
        for when, answer in self.changes[user]:
            if answer == variant and when >= after:
                return when
        return None

    def current(self, user: str) -> str | None:
        history = self.changes[user]
        return history[-1][1] if history else None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Recorder:
    """Writes one canary and one stable sample of each metric every 0.1 s, good or bad on demand."""

    def __init__(self, url: str, prefix: str) -> None:
        self.db = Database(url, prefix)
        self.source = SqlMetricSource(self.db)
        self.source.ensure_schema()
        self.bad = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            now = datetime.now(UTC)
            wobble = 0.001 * (i % 3)
            canary_errors = 0.12 if self.bad.is_set() else 0.010 + wobble
            for target, errors in (("canary", canary_errors), ("stable", 0.010 + wobble)):
                self.source.record(Sample(now, target, "error_rate", errors))
                self.source.record(Sample(now, target, "latency_p95", 300.0 + 10 * (i % 5)))
            i += 1
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.db.close()


def _share(client: Any, batch: int) -> float:
    """The share of ``USERS_PER_STEP`` never-seen users served the canary variant over OFREP."""
    users = [f"user-{batch}-{i}" for i in range(USERS_PER_STEP)]
    with ThreadPoolExecutor(4) as pool:
        variants = list(pool.map(lambda u: client.get_string_details(FLAG, "none", EvaluationContext(u)), users))
    assert all(v.error_code is None for v in variants), variants[0]
    return sum(v.variant == "canary" for v in variants) / len(users)


def _within_sampling_error(share: float, percent: float) -> bool:
    p = percent / 100
    if p in (0.0, 1.0):
        return share == p
    return abs(share - p) <= 4 * math.sqrt(p * (1 - p) / USERS_PER_STEP)


def _decision_time(line: str) -> float:
    return datetime.fromisoformat(json.loads(line)["time"]).timestamp()


@pytest.fixture
def environment(tmp_path: Path, pg_events_url: str, redis_url: str) -> Iterator[dict[str, Any]]:
    prefix = f"tusk-e2e-{uuid.uuid4().hex[:10]}:"
    snapshot = tmp_path / "flags.json"
    snapshot.write_text(json.dumps(SNAPSHOT), encoding="utf-8")
    policy = tmp_path / "delivery.json"
    policy.write_text(json.dumps(POLICY), encoding="utf-8")
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen(
        [
            *(sys.executable, "-m", "tusklang.cli", "serve", str(snapshot), "--port", str(port), "--quiet"),
            *("--redis", redis_url, "--prefix", prefix),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    processes: list[subprocess.Popen[bytes]] = [serve]
    try:
        deadline = time.monotonic() + 20
        while True:
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=0.5).json().get("overrides", {}).get("status") == "ok":
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "tusk serve did not start"
            time.sleep(0.05)
        yield {
            "url": url,
            "prefix": prefix,
            "snapshot": snapshot,
            "policy": policy,
            "db": pg_events_url,
            "redis": redis_url,
            "processes": processes,
            "tmp": tmp_path,
        }
    finally:
        for proc in processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()
        store = OverrideStore.from_url(redis_url, prefix)
        store.client.delete(store.hash_key, store.version_key, store.audit_key)
        store.close()


def _controller(env: dict[str, Any], name: str, *extra: str, halt: str | None = None) -> subprocess.Popen[bytes]:
    child_env = {k: v for k, v in os.environ.items() if k != "TUSK_ROLLOUT_TEST_HALT"}
    if halt is not None:
        child_env["TUSK_ROLLOUT_TEST_HALT"] = halt
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "tusklang.cli", "rollout", "run", name, "--rollout-db", env["db"]),
            *("--redis", env["redis"], "--tick", "0.1", "--lease-ttl", str(LEASE_TTL), "--format", "json", *extra),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env,
    )
    env["processes"].append(proc)
    return proc


def test_the_controller_moves_ofrep_traffic_and_rolls_back(
    environment: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment
    began = time.monotonic()
    name = "checkout-v2"
    domain = f"tusk-e2e-{env['prefix']}"
    api.set_provider(OFREPProvider(env["url"]), domain=domain)
    client = api.get_client(domain=domain)
    taken: set[str] = set()
    probe = {20: _probe(10, 20, taken), 30: _probe(20, 30, taken), "in": _probe(0, 10, taken)}
    probes = Probes(client, list(probe.values()))
    recorder = Recorder(env["db"], "")
    try:
        # 1. Start at 10%, bound to the flag (by the policy); the start is written through the overrides.
        code = main(
            [
                *("rollout", "start", name, "--config", str(env["policy"]), "--snapshot", str(env["snapshot"])),
                *("--redis", env["redis"], "--prefix", env["prefix"], "--rollout-db", env["db"]),
                *("--format", "json"),
            ]
        )
        started = json.loads(capsys.readouterr().out)
        assert code == 0 and started["action"] == "start" and started["canary_percent"] == 10
        assert started["override"]["outcome"] == "written"
        t_start = datetime.fromisoformat(started["time"]).timestamp()

        first = _controller(env, name, halt="before-write:advance:30")
        out, err = Lines(), Lines()
        out.follow(first.stdout)
        err.follow(first.stderr)

        time.sleep(max(0.0, t_start + 1 - time.time()))
        assert probes.flipped_to(probe["in"], "canary", 0) is not None
        share = shares_10 = _share(client, 10)
        assert _within_sampling_error(share, 10), share

        # 2. Good metrics: the controller advances to 20%; clients follow within a second.
        _, line = out.wait_for(lambda s: '"advance"' in s, PERIOD + 10, "advance to 20%")
        decided = json.loads(line)
        assert decided["canary_percent"] == 20 and decided["override"]["outcome"] == "written", decided
        assert "error_rate canary" in decided["reason"] and "vs stable" in decided["reason"]
        t20 = _decision_time(line)
        time.sleep(0.3)
        flipped = probes.flipped_to(probe[20], "canary", t20 - 0.5)
        assert flipped is not None and flipped - t20 < 1.0, (flipped, t20)
        measured = {"advance_s": round(flipped - t20, 3), "share_10": shares_10}
        time.sleep(max(0.0, t20 + 1 - time.time()))
        share = _share(client, 20)
        assert _within_sampling_error(share, 20), share
        measured["share_20"] = share

        # 3. The next decision (30%) is logged, and the controller is stopped before its override write.
        err.wait_for(lambda s: "halted before write" in s, PERIOD + 10, "the test hook's halt")
        time.sleep(1.2)  # more than a second: a write would have reached the clients by now
        assert probes.current(probe[30]) == "stable"  # traffic still at 20%
        with Database(env["db"]) as db:
            pending = RolloutStore(db).latest_write(name)
        assert pending is not None and pending.status == "pending" and pending.canary_percent == 30
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)

        restarted_at = time.time()
        second = _controller(env, name, "--wait")
        out2, err2 = Lines(), Lines()
        out2.follow(second.stdout)
        err2.follow(second.stderr)
        err2.wait_for(lambda s: "written (version" in s, LEASE_TTL + 10, "the pending write")
        flipped = None
        deadline = time.monotonic() + 3
        while flipped is None and time.monotonic() < deadline:
            flipped = probes.flipped_to(probe[30], "canary", restarted_at)
            time.sleep(0.02)
        assert flipped is not None and flipped - restarted_at < LEASE_TTL + 2.0, (flipped, restarted_at)
        converged = flipped - restarted_at
        share = _share(client, 30)
        assert _within_sampling_error(share, 30), share
        measured["share_30"] = share

        # 4. A bad window: the canary's error rate far above stable's and above the threshold.
        recorder.bad.set()
        _, line = out2.wait_for(lambda s: '"rollback"' in s, PERIOD + 10, "the rollback")
        rollback = json.loads(line)
        t0 = _decision_time(line)
        assert rollback["canary_percent"] == 0 and rollback["override"]["outcome"] == "written"
        deadline = time.monotonic() + 2
        while probes.current(probe["in"]) != "stable" and time.monotonic() < deadline:
            time.sleep(0.02)
        flipped = probes.flipped_to(probe["in"], "stable", t0 - 0.5)
        assert flipped is not None and flipped - t0 < 1.0, (flipped, t0)
        measured["rollback_s"] = round(flipped - t0, 3)
        time.sleep(max(0.0, t0 + 1 - time.time()))
        assert _share(client, 0) == 0.0
        second.wait(timeout=10)  # a rolled-back release ends the controller
        assert second.returncode == 0, err2.seen
    finally:
        probes.stop()
        recorder.stop()

    # The override layer's audit log: one entry per decision (the killed one written exactly once), by
    # the controller for automatic decisions, each with its decision's reason.
    capsys.readouterr()
    assert main(["flags", "history", FLAG, "--redis", env["redis"], "--prefix", env["prefix"], "--format", "json"]) == 0
    history = json.loads(capsys.readouterr().out)
    entries = history if isinstance(history, list) else history["entries"]
    assert [e["op"] for e in entries] == ["rollout-start", "rollout-advance", "rollout-advance", "rollout-rollback"]
    assert [e["new"]["rollout"]["canary"] for e in entries] == [10, 20, 30, 0]
    assert [e["actor"] for e in entries[1:]] == [f"tusk-rollout:{name}"] * 3
    assert entries[-1]["reason"].startswith("rollback: 1 consecutive failing intervals (")
    assert re.search(r"error_rate canary [\d.]+ vs stable [\d.]+ \([\d.]+x worse, want <= 2x", entries[-1]["reason"])
    assert len({e["reason"] for e in entries}) == 4

    # The delivery store says the same, and every write is marked applied with its override version.
    assert main(["rollout", "status", name, "--rollout-db", env["db"], "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["state"]["status"] == "rolled_back"
    assert [d["action"] for d in status["decisions"]] == ["start", "advance", "advance", "rollback"]
    assert [d["override"]["version"] for d in status["decisions"]] == [e["version"] for e in entries]
    assert all(d["override"]["status"] == "applied" for d in status["decisions"])
    elapsed = time.monotonic() - began
    print(f"measured {measured}; restart converged in {converged:.2f} s; whole test {elapsed:.1f} s")
    assert elapsed < 90
