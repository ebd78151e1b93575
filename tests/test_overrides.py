"""Runtime overrides on a real Redis: CLI writes reach running clients and `tusk serve` fast, survive
outages, serialise under concurrent writers, and invalid ones are refused."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tusklang.cli import main
from tusklang.evaluate import Client
from tusklang.overrides import OverrideStore, RedisOverrides
from tusklang.overrides.overlay import merge
from tusklang.serve import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "fixtures" / "seed" / "snapshot.json"
# A unit that new_checkout_flow's targeting admits (its 25% rollout admits it too).
CHECKOUT_UNIT = {
    "user_id": "u1",
    "environment": "production",
    "region": "us-east",
    "account_age": 3,
    "feature_usage": 9,
    "feedback_score": 4.5,
}

pytestmark = pytest.mark.redis


@pytest.fixture
def store(redis_url: str, prefix: str) -> Iterator[OverrideStore]:
    s = OverrideStore.from_url(redis_url, prefix)
    yield s
    s.close()


def flags(redis_url: str, prefix: str, *args: str) -> int:
    return main(["flags", *args, "--redis", redis_url, "--prefix", prefix])


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``predicate`` holds (fails after ``timeout``)."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.002)
    return time.monotonic() - started


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(source: RedisOverrides) -> None:
    """Until the watcher thread is subscribed and has done its first read (the one at start() is the
    first sync, the thread's is the second): a change made earlier would be caught by that read, not by
    the path under test, and a stall during it would be noticed by it, not by the heartbeat."""
    _wait_for(lambda: source.status()["syncs"] >= 2, 2.0, "watcher listening")


# --- an override reaches running evaluators --------------------------------------------------------


def test_cli_override_reaches_a_running_client_within_a_second(redis_url: str, prefix: str) -> None:
    # Polling is set far beyond the test so only pub/sub can deliver the change in time.
    source = RedisOverrides(redis_url, prefix=prefix, poll_interval=600)
    client = Client.from_file(SEED, overrides=source)
    try:
        _wait_listening(source)
        assert client.evaluate("new_checkout_flow", CHECKOUT_UNIT).value is True
        assert flags(redis_url, prefix, "disable", "new_checkout_flow", "--snapshot", str(SEED)) == 0
        took = _wait_for(
            lambda: client.evaluate("new_checkout_flow", CHECKOUT_UNIT).reason == "DISABLED", 1.0, "disable"
        )
        assert took < 1.0
        assert flags(redis_url, prefix, "enable", "new_checkout_flow", "--snapshot", str(SEED)) == 0
        _wait_for(lambda: client.evaluate("new_checkout_flow", CHECKOUT_UNIT).value is True, 1.0, "enable")
        assert flags(redis_url, prefix, "set-rollout", "new_checkout_flow", "0", "--snapshot", str(SEED)) == 0
        _wait_for(lambda: client.evaluate("new_checkout_flow", CHECKOUT_UNIT).value is False, 1.0, "rollout 0")
        # The swap comes first, the bookkeeping right after: wait for it rather than race it.
        assert client.overrides is source
        _wait_for(lambda: source.status()["version"] == 3, 1.0, "status catches up")
        status = source.status()
        assert status["status"] == "ok"
        assert status["flags"] == ["new_checkout_flow"]
        assert flags(redis_url, prefix, "clear", "new_checkout_flow") == 0
        _wait_for(lambda: client.evaluate("new_checkout_flow", CHECKOUT_UNIT).value is True, 1.0, "clear")
        # The snapshot underneath is untouched: a clear restores the compiled rule exactly.
        assert client.snapshot == Client.from_file(SEED).snapshot
    finally:
        client.close()


@pytest.fixture
def serve(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[str]:
    """`tusk serve SNAPSHOT --redis URL` as a subprocess on loopback."""
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "tusklang.cli", "serve", str(SEED), "--port", str(port), "--quiet"),
            *("--redis", redis_url, "--prefix", prefix, "--poll-interval", "600"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "tusk serve did not start"
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_cli_override_reaches_tusk_serve_within_a_second(serve: str, redis_url: str, prefix: str) -> None:
    flag_url = f"{serve}/ofrep/v1/evaluate/flags/new_checkout_flow"
    with httpx.Client(timeout=2) as http:
        _wait_for(lambda: http.get(f"{serve}/health").json()["overrides"]["syncs"] >= 2, 2.0, "serve listening")
        assert http.post(flag_url, json={"context": CHECKOUT_UNIT}).json()["value"] is True
        health = http.get(f"{serve}/health").json()
        assert health["status"] == "ok"
        assert health["overrides"]["prefix"] == prefix
        assert "redis://" not in json.dumps(health)

        assert flags(redis_url, prefix, "disable", "new_checkout_flow", "--snapshot", str(SEED)) == 0
        took = _wait_for(
            lambda: http.post(flag_url, json={"context": CHECKOUT_UNIT}).json()["reason"] == "DISABLED",
            1.0,
            "tusk serve sees the disable",
        )
        assert took < 1.0
        _wait_for(lambda: http.get(f"{serve}/health").json()["overrides"]["version"] == 1, 1.0, "health")
        assert http.get(f"{serve}/health").json()["overrides"]["flags"] == ["new_checkout_flow"]


# --- bucketing survives an overlay -----------------------------------------------------------------

ROLLOUT_SNAPSHOT = {
    "format": "tusklang.snapshot/1",
    "flags": {
        "gate": {
            "key": "gate",
            "type": "boolean",
            "variants": {"on": True, "off": False},
            "off_variant": "off",
            "default_variant": "off",
            "rules": [{"id": "rollout", "rollout": {"salt": "gate/rollout", "percentage": 20000}, "serve": "on"}],
        },
        "plain": {
            "key": "plain",
            "type": "boolean",
            "variants": {"on": True, "off": False},
            "off_variant": "off",
            "default_variant": "off",
            "rules": [{"id": "rollout", "serve": "on"}],
        },
    },
}


def _admitted(client: Client, flag: str, n: int = 4000) -> set[int]:
    return {i for i in range(n) if client.evaluate(flag, {"user_id": f"user-{i}"}).value is True}


def test_raising_a_rollout_keeps_every_unit_that_was_in() -> None:
    compiled = _admitted(Client(ROLLOUT_SNAPSHOT), "gate")
    same = _admitted(Client(ROLLOUT_SNAPSHOT, overrides={"gate": {"rollout": {"rollout": 20}}}), "gate")
    assert same == compiled  # an override equal to the compiled percentage changes nobody
    raised = _admitted(Client(ROLLOUT_SNAPSHOT, overrides={"gate": {"rollout": {"rollout": 50}}}), "gate")
    assert compiled < raised
    assert 0.45 < len(raised) / 4000 < 0.55
    lowered = _admitted(Client(ROLLOUT_SNAPSHOT, overrides={"gate": {"rollout": {"rollout": 5}}}), "gate")
    assert lowered < compiled


def test_rollout_on_a_rule_without_one_uses_the_compiler_salt() -> None:
    # `plain` compiled at 100% has no rollout; pinning it to 20% must gate like a compiled 20% would.
    gated = _admitted(Client(ROLLOUT_SNAPSHOT, overrides={"plain": {"rollout": {"rollout": 20}}}), "plain")
    snapshot = json.loads(json.dumps(ROLLOUT_SNAPSHOT))
    snapshot["flags"]["plain"]["rules"][0]["rollout"] = {"salt": "plain/rollout", "percentage": 20000}
    assert gated == _admitted(Client(snapshot), "plain")


def test_a_reloaded_snapshot_keeps_its_overrides(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(ROLLOUT_SNAPSHOT))
    client = Client.from_file(path, overrides={"gate": {"enabled": False}})
    assert client.evaluate("gate", {"user_id": "u"}).reason == "DISABLED"
    changed = json.loads(json.dumps(ROLLOUT_SNAPSHOT))
    changed["flags"]["gate"]["rules"][0]["rollout"]["percentage"] = 100000
    path.write_text(json.dumps(changed))
    assert client.reload()
    assert client.evaluate("gate", {"user_id": "u"}).reason == "DISABLED"
    assert client.snapshot.flags["gate"].rules[0].rollout.percentage == 100000  # type: ignore[union-attr]


def test_variant_weights_override_moves_the_split(redis_url: str, prefix: str) -> None:
    args = ["set-variant-weights", "checkout_optimization", "control=0", "variant_a=100", "--snapshot", str(SEED)]
    assert flags(redis_url, prefix, *args) == 0
    client = Client.from_file(SEED, overrides=RedisOverrides(redis_url, prefix=prefix))
    try:
        served = {
            client.evaluate("checkout_optimization", {"user_id": f"u{i}"}, now="2024-02-10T00:00:00Z").variant
            for i in range(300)
        }
        # Units outside the 50% traffic gate get the default (control); every admitted one gets variant_a.
        assert served == {"variant_a", "control"}
        weights = client.snapshot.experiments["checkout_optimization"].rules[0].split.weights  # type: ignore[union-attr]
        assert [tuple(w) for w in weights] == [
            ("control", 0),
            ("variant_a", 100000),
            ("variant_b", 0),
            ("variant_c", 0),
        ]
    finally:
        client.close()


# --- Redis outages ---------------------------------------------------------------------------------


class _Proxy:
    """A TCP forwarder to Redis that can be taken down and brought back on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = _free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        # Frozen: connections stay open but nothing gets through (a partition, a stalled server).
        self.frozen = False

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                downstream, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                downstream.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [downstream, upstream]
            threading.Thread(target=self._pump, args=(downstream, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, downstream), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self.frozen:
                    time.sleep(0.005)
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def proxy(redis_url: str) -> Iterator[tuple[_Proxy, str]]:
    parsed = redis.connection.parse_url(redis_url)
    forwarder = _Proxy((parsed.get("host", "127.0.0.1"), int(parsed.get("port", 6379))))
    forwarder.start()
    db = parsed.get("db", 0)
    try:
        yield forwarder, f"redis://127.0.0.1:{forwarder.port}/{db}"
    finally:
        forwarder.stop()


def test_redis_outage_keeps_serving_the_last_state_then_resyncs(
    proxy: tuple[_Proxy, str], redis_url: str, prefix: str
) -> None:
    forwarder, via_proxy = proxy
    source = RedisOverrides(via_proxy, prefix=prefix, poll_interval=600, retry_interval=0.1, timeout=0.5)
    client = Client.from_file(SEED, overrides=source)
    app = create_app(client)
    try:
        with TestClient(app) as http:
            _wait_listening(source)
            assert flags(redis_url, prefix, "set-rollout", "new_checkout_flow", "0", "--snapshot", str(SEED)) == 0
            _wait_for(lambda: client.evaluate("new_checkout_flow", CHECKOUT_UNIT).value is False, 1.0, "rollout 0")

            forwarder.stop()
            _wait_for(lambda: source.degraded, 2.0, "watcher notices the outage")
            health = http.get("/health")
            assert health.status_code == 200
            assert health.json()["status"] == "degraded"
            assert health.json()["overrides"]["status"] == "degraded"
            assert health.json()["overrides"]["error"]
            # Written while this client cannot see Redis: must not be lost.
            assert flags(redis_url, prefix, "disable", "new_checkout_flow", "--snapshot", str(SEED)) == 0
            time.sleep(0.3)
            # Still evaluating, from the last overrides seen (rollout 0), through the API and over HTTP.
            assert client.evaluate("new_checkout_flow", CHECKOUT_UNIT).value is False
            body = http.post("/ofrep/v1/evaluate/flags/new_checkout_flow", json={"context": CHECKOUT_UNIT}).json()
            assert (body["value"], body["reason"]) == (False, "DEFAULT")
            assert source.degraded

            forwarder.start()
            _wait_for(lambda: client.evaluate("new_checkout_flow", CHECKOUT_UNIT).reason == "DISABLED", 3.0, "resync")
            _wait_for(lambda: not source.degraded, 1.0, "healthy again")
            health = http.get("/health").json()
            assert health["status"] == "ok"
            assert health["overrides"]["version"] == 2
            # And pub/sub works again after the reconnect.
            assert flags(redis_url, prefix, "clear", "new_checkout_flow") == 0
            _wait_for(lambda: client.evaluate("new_checkout_flow", CHECKOUT_UNIT).value is True, 1.0, "clear")
    finally:
        client.close()


def test_a_silent_outage_is_caught_by_the_heartbeat(proxy: tuple[_Proxy, str], redis_url: str, prefix: str) -> None:
    forwarder, via_proxy = proxy
    source = RedisOverrides(
        via_proxy, prefix=prefix, poll_interval=600, heartbeat_interval=0.1, timeout=0.3, retry_interval=0.1
    )
    client = Client.from_file(SEED, overrides=source)
    try:
        _wait_listening(source)
        forwarder.frozen = True
        _wait_for(lambda: source.degraded, 2.0, "heartbeat notices the stall")
        assert flags(redis_url, prefix, "disable", "new_checkout_flow", "--snapshot", str(SEED)) == 0
        time.sleep(0.2)
        assert client.evaluate("new_checkout_flow", CHECKOUT_UNIT).value is True  # last state, still serving
        forwarder.frozen = False
        _wait_for(
            lambda: client.evaluate("new_checkout_flow", CHECKOUT_UNIT).reason == "DISABLED", 3.0, "resync after stall"
        )
        _wait_for(lambda: not source.degraded, 1.0, "healthy again")
    finally:
        client.close()


def test_a_redis_that_lost_its_data_is_followed(redis_url: str, prefix: str, store: OverrideStore) -> None:
    assert flags(redis_url, prefix, "disable", "new_checkout_flow", "--snapshot", str(SEED)) == 0
    source = RedisOverrides(redis_url, prefix=prefix, poll_interval=600, heartbeat_interval=0.1)
    client = Client.from_file(SEED, overrides=source)
    try:
        assert client.evaluate("new_checkout_flow", CHECKOUT_UNIT).reason == "DISABLED"
        _wait_listening(source)
        # As after a restart without persistence: no records and the counter back at 0, no message sent.
        store.client.delete(store.hash_key, store.version_key)
        _wait_for(lambda: client.evaluate("new_checkout_flow", CHECKOUT_UNIT).value is True, 1.0, "heartbeat")
        _wait_for(lambda: source.status()["version"] == 0, 1.0, "status catches up")
    finally:
        client.close()


def test_killed_connection_is_noticed_and_resynced(redis_url: str, prefix: str) -> None:
    source = RedisOverrides(redis_url, prefix=prefix, poll_interval=600, retry_interval=0.05)
    client = Client.from_file(SEED, overrides=source)
    admin = redis.Redis.from_url(redis_url)
    channel = f"{prefix}overrides:changes"
    try:
        _wait_for(lambda: admin.pubsub_numsub(channel)[0][1] == 1, 2.0, "watcher subscribed")
        ours = [c for c in admin.client_list() if c.get("name") == source.client_name]
        assert ours
        for info in ours:
            admin.client_kill_filter(_id=info["id"])
        # Written while the watcher's subscription is gone: the resync after reconnecting must pick it up.
        assert flags(redis_url, prefix, "disable", "new_checkout_flow", "--snapshot", str(SEED)) == 0
        _wait_for(lambda: client.evaluate("new_checkout_flow", CHECKOUT_UNIT).reason == "DISABLED", 1.0, "resync")
        _wait_for(lambda: not source.degraded, 1.0, "healthy")
        _wait_for(lambda: admin.pubsub_numsub(channel)[0][1] == 1, 2.0, "resubscribed")
        assert flags(redis_url, prefix, "enable", "new_checkout_flow", "--snapshot", str(SEED)) == 0
        _wait_for(lambda: client.evaluate("new_checkout_flow", CHECKOUT_UNIT).value is True, 1.0, "pub/sub again")
    finally:
        client.close()
        admin.close()


def test_degraded_status_never_shows_the_connection_password(prefix: str) -> None:
    url = f"redis://:hunter2-secret@127.0.0.1:{_free_port()}/0"
    source = RedisOverrides(url, prefix=prefix, retry_interval=5, timeout=0.2)
    client = Client(json.dumps(ROLLOUT_SNAPSHOT), overrides=source)
    try:
        status = source.status()
        assert status["status"] == "degraded"
        assert status["error"]
        assert "hunter2" not in json.dumps(status)
        assert client.evaluate("gate", {"user_id": "u"}).error_code is None
    finally:
        client.close()


# --- concurrent writers ----------------------------------------------------------------------------


def test_concurrent_writers_serialise_into_one_consistent_history(redis_url: str, prefix: str) -> None:
    writes = 150
    results: dict[str, list[int]] = {"enabled": [], "rollout": []}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    retried: list[int] = []

    def writer(kind: str) -> None:
        own = OverrideStore.from_url(redis_url, prefix)

        def change(current: dict[str, Any] | None, patch: dict[str, Any]) -> dict[str, Any]:
            # A slow writer (a big snapshot to check) widens the read-to-write window: real races.
            time.sleep(0.001)
            return merge(current, patch)

        try:
            start.wait()
            for i in range(writes):
                patch: dict[str, Any] = {"enabled": i % 2 == 0} if kind == "enabled" else {"rollout": {"rollout": i}}
                result = own.write(
                    "new_checkout_flow",
                    lambda current, p=patch: change(current, p),  # type: ignore[misc]
                    op=kind,
                    actor=f"writer-{kind}",
                    reason=str(i),
                )
                results[kind].append(result.version)
                if result.attempts > 1:
                    retried.append(result.attempts)
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in ("enabled", "rollout")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert retried, "the writers never raced: the test did not exercise the compare-and-set"

    store = OverrideStore.from_url(redis_url, prefix)
    try:
        state = store.read()
        audit = store.audit("new_checkout_flow")
    finally:
        store.close()
    versions = sorted(results["enabled"] + results["rollout"])
    assert versions == list(range(1, 2 * writes + 1))  # every write got its own version, none lost
    assert state.version == 2 * writes
    final = state.records["new_checkout_flow"]
    # The stored record is the newest write, whole: its version, and both writers' last values (no
    # write overwrote a field it did not change: no lost update).
    assert final["version"] == 2 * writes
    assert final["enabled"] is False  # writer "enabled" ended on i = 149 -> False
    assert final["rollout"] == {"rollout": writes - 1}
    # The audit log holds every write, in version order, each one's `old` being the previous `new`.
    assert [e.version for e in audit] == list(range(1, 2 * writes + 1))
    previous = None
    for entry in audit:
        assert entry.old == previous
        assert entry.new is not None and entry.new["version"] == entry.version
        assert entry.new["updated_by"] == entry.actor
        previous = entry.new
    assert previous == final


# --- refused overrides -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["set-rollout", "new_checkout_flow", "130"], "TSK701", "between 0 and 100"),
        (["set-rollout", "new_checkout_flow", "ten"], "TSK701", "between 0 and 100"),
        # finer than the scale, as compile's TSK311 (the evaluator would round it unsaid)
        (["set-rollout", "new_checkout_flow", "33.3333"], "TSK701", "round it to 33.333"),
        (
            ["set-variant-weights", "checkout_optimization", "control=33.3333", "variant_a=66.6667"],
            "TSK706",
            "finer than the snapshot's resolution (0.001%)",
        ),
        (["set-rollout", "new_chekout_flow", "10"], "TSK700", "did you mean `new_checkout_flow`"),
        (["enable", "nope"], "TSK700", "no flag or experiment `nope`"),
        (["set-rollout", "new_checkout_flow", "10", "--rule", "nope"], "TSK703", "no rule `nope`"),
        (["set-variant-weights", "checkout_optimization", "control=50", "varient_a=50"], "TSK705", "variant_a"),
        (["set-variant-weights", "checkout_optimization", "control=50", "variant_a=40"], "TSK706", "sum to 90"),
        (["set-variant-weights", "checkout_optimization", "control"], "TSK707", "VARIANT=PERCENT"),
        (["set-variant-weights", "new_checkout_flow", "on=50", "off=50"], "TSK704", "no rule with a variant split"),
    ],
)
def test_invalid_overrides_are_refused_with_exit_1(
    redis_url: str,
    prefix: str,
    store: OverrideStore,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: str,
    words: str,
) -> None:
    assert flags(redis_url, prefix, *args, "--snapshot", str(SEED)) == 1
    err = capsys.readouterr().err
    assert f"error[{code}]" in err
    assert words in err
    assert "<command line>:1:" in err  # points at the argument, like the compiler points at source
    assert store.version() == 0 and store.audit() == []


def test_refusal_as_json_and_a_write_needs_a_snapshot(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["set-rollout", "new_checkout_flow", "130", "--snapshot", str(SEED), "--format", "json"]
    assert flags(redis_url, prefix, *args) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["errors"] == 1
    assert out["diagnostics"][0]["code"] == "TSK701"
    assert out["diagnostics"][0]["span"]["column"] == 42
    with pytest.raises(SystemExit) as exc:
        flags(redis_url, prefix, "set-rollout", "new_checkout_flow", "10")
    assert exc.value.code == 2


# --- the CLI itself ----------------------------------------------------------------------------------


def test_cli_subprocess_writes_audits_and_shows(redis_url: str, prefix: str, tmp_path: Path) -> None:
    # The snapshot's storage key_prefix is the default prefix; REDIS_URL the default Redis.
    snapshot = json.loads(SEED.read_text())
    snapshot["runtime"]["storage"] = {"type": "redis", "key_prefix": prefix, "ttl": 300}
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(snapshot))
    env = {**os.environ, "REDIS_URL": redis_url}

    def tusk(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tusklang.cli", "flags", *args], env=env, capture_output=True, text=True, timeout=30
        )

    done = tusk("set-rollout", "new_checkout_flow", "40", "--snapshot", str(path), "--actor", "alice", "--reason", "ok")
    assert done.returncode == 0, done.stderr
    assert "rollout[rollout]=40%" in done.stdout and "version 1" in done.stdout
    shown = tusk("show", "--snapshot", str(path), "--format", "json")
    assert shown.returncode == 0, shown.stderr
    body = json.loads(shown.stdout)
    assert body["prefix"] == prefix and body["version"] == 1
    record = body["overrides"]["new_checkout_flow"]
    assert (record["rollout"], record["updated_by"], record["reason"], record["version"]) == (
        {"rollout": 40},
        "alice",
        "ok",
        1,
    )
    history = tusk("history", "new_checkout_flow", "--snapshot", str(path), "--format", "json")
    (entry,) = json.loads(history.stdout)["entries"]
    assert (entry["actor"], entry["op"], entry["old"], entry["new"]["rollout"]) == (
        "alice",
        "set-rollout",
        None,
        {"rollout": 40},
    )
    assert redis_url not in shown.stdout + history.stdout


def test_writes_under_the_prefix_and_publish_a_change(redis_url: str, prefix: str) -> None:
    conn = redis.Redis.from_url(redis_url)
    pubsub = conn.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"{prefix}overrides:changes")
    try:
        assert flags(redis_url, prefix, "disable", "search_v2", "--snapshot", str(SEED)) == 0
        message = None
        deadline = time.monotonic() + 2
        while message is None and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.1)
        assert message is not None
        assert json.loads(message["data"]) == {"flag": "search_v2", "version": 1}
        keys = sorted(k.decode() for k in conn.scan_iter(f"{prefix}*"))
        assert keys == [f"{prefix}overrides", f"{prefix}overrides:audit", f"{prefix}overrides:version"]
    finally:
        pubsub.close()
        conn.close()


# --- polling fallback and the shorthand ------------------------------------------------------------


def test_polling_picks_up_a_change_whose_message_was_lost(redis_url: str, prefix: str, store: OverrideStore) -> None:
    source = RedisOverrides(redis_url, prefix=prefix, poll_interval=0.2)
    client = Client(json.dumps(ROLLOUT_SNAPSHOT), overrides=source)
    try:
        assert client.evaluate("gate", {"user_id": "u"}).reason != "DISABLED"
        _wait_listening(source)
        # A write that never announces itself (as if the pub/sub message were dropped).
        version = store.client.incr(store.version_key)
        store.client.hset(store.hash_key, "gate", json.dumps({"version": version, "enabled": False}))
        _wait_for(lambda: client.evaluate("gate", {"user_id": "u"}).reason == "DISABLED", 1.0, "poll")
        _wait_for(lambda: source.status()["version"] == version, 1.0, "status catches up")
    finally:
        client.close()


def test_redis_defaults_take_prefix_and_ttl_from_the_snapshot(
    redis_url: str, prefix: str, store: OverrideStore
) -> None:
    store.write("gate", lambda _: {"enabled": False}, op="disable", actor="test")
    snapshot = {**ROLLOUT_SNAPSHOT, "runtime": {"storage": {"type": "redis", "key_prefix": prefix, "ttl": 42}}}
    # The Client takes a source, not a URL (it does not import tusklang.overrides; docs/architecture.md)
    with pytest.raises(TypeError, match=r"RedisOverrides\(url\)"):
        Client(snapshot, overrides=redis_url)  # type: ignore[arg-type]
    client = Client(snapshot, overrides=RedisOverrides(redis_url))
    try:
        assert client.evaluate("gate", {"user_id": "u"}).reason == "DISABLED"  # applied before the first use
        assert client.overrides is not None
        status = client.overrides.status()
        assert (status["prefix"], status["poll_interval"], status["version"]) == (prefix, 42, 1)
    finally:
        client.close()


def test_unreachable_or_malformed_redis_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    down = f"redis://:hunter2@127.0.0.1:{_free_port()}/0"
    assert main(["flags", "show", "--redis", down]) == 2
    assert main(["flags", "disable", "search_v2", "--snapshot", str(SEED), "--redis", down]) == 2
    assert main(["serve", str(SEED), "--redis", "http://127.0.0.1:6379"]) == 2
    err = capsys.readouterr().err
    assert "tusk flags show: Redis: ConnectionError" in err
    assert "tusk serve: --redis: not a Redis URL" in err
    assert "hunter2" not in err


# --- malformed records affect only their own flag ---------------------------------------------------

BAD_RECORDS: list[tuple[str, bytes, str]] = [
    # (what, stored bytes, words of the reason)
    ("not JSON", b"{not json", "not valid JSON"),
    ("not UTF-8", b'{"version": 1, "enabled": "\xff"}', "not UTF-8"),
    ("nested 2,000 deep", b'{"version": 1, "enabled": ' + b"[" * 2000 + b"]" * 2000 + b"}", "deeper than"),
    ("a 5,000-digit number", b'{"version": ' + b"9" * 5000 + b"}", "not valid JSON"),
    ("not an object", b"[1, 2]", "not a JSON object"),
    ("a string version", b'{"version": "12", "enabled": false}', "`version` must be a non-negative integer"),
    ("a float version", b'{"version": 1.5, "enabled": false}', "`version` must be a non-negative integer"),
    ("enabled a string", b'{"version": 1, "enabled": "false"}', "`enabled` must be true or false"),
    ("a NaN rollout", b'{"version": 1, "rollout": {"experiment": NaN}}', "from 0 to 100"),
    ("a 1e308 rollout", b'{"version": 1, "rollout": {"experiment": 1e308}}', "from 0 to 100"),
    ("an infinite rollout", b'{"version": 1, "rollout": {"experiment": 1e999}}', "from 0 to 100"),
    ("a negative rollout", b'{"version": 1, "rollout": {"experiment": -5}}', "from 0 to 100"),
    ("rollout not a map", b'{"version": 1, "rollout": 40}', "`rollout` must be an object"),
    ("weights not pairs", b'{"version": 1, "weights": {"experiment": [["control"]]}}', "not a [variant, percent] pair"),
    ("weights a string", b'{"version": 1, "weights": {"experiment": "control=100"}}', "non-empty list"),
    ("weights not summing to 100", b'{"version": 1, "weights": {"experiment": [["control", 60]]}}', "sum to 60"),
    ("a NaN weight", b'{"version": 1, "weights": {"experiment": [["control", NaN], ["variant_a", 100]]}}', "weight of"),
    (
        "a negative weight",
        b'{"version": 1, "weights": {"experiment": [["control", -1], ["variant_a", 101]]}}',
        "weight of",
    ),
    ("an unknown variant", b'{"version": 1, "weights": {"experiment": [["nope", 100]]}}', "unknown variant"),
]


def _store_raw(store: OverrideStore, flag: str, raw: bytes) -> None:
    """Write a record by hand, as anyone with access to Redis can, and announce it like a real write."""
    version = store.client.incr(store.version_key)
    store.client.hset(store.hash_key, flag, raw)
    store.client.publish(store.channel, json.dumps({"flag": flag, "version": version}))


@pytest.mark.parametrize(("what", "raw", "words"), BAD_RECORDS, ids=[b[0] for b in BAD_RECORDS])
def test_a_malformed_record_affects_only_its_own_flag(
    redis_url: str,
    prefix: str,
    store: OverrideStore,
    caplog: pytest.LogCaptureFixture,
    what: str,
    raw: bytes,
    words: str,
) -> None:
    # Another flag's override is in force before the bad record arrives, and one is written after it.
    assert flags(redis_url, prefix, "disable", "new_checkout_flow", "--snapshot", str(SEED)) == 0
    source = RedisOverrides(redis_url, prefix=prefix, poll_interval=600)
    client = Client.from_file(SEED, overrides=source)
    try:
        with TestClient(create_app(client)) as http:
            _wait_listening(source)
            with caplog.at_level(logging.WARNING, logger="tusklang.overrides"):
                _store_raw(store, "checkout_optimization", raw)
                _wait_for(
                    lambda: "checkout_optimization" in http.get("/health").json()["overrides"]["rejected"],
                    2.0,
                    "refusal",
                )
                assert flags(redis_url, prefix, "disable", "search_v2", "--snapshot", str(SEED)) == 0
                _wait_for(
                    lambda: client.evaluate("search_v2", {"user_id": "u"}).reason == "DISABLED", 2.0, "later write"
                )
            assert client.evaluate("new_checkout_flow", CHECKOUT_UNIT).reason == "DISABLED"  # still in force
            at = "2024-02-10T00:00:00Z"  # inside the experiment's window: the snapshot's own split serves
            assert client.evaluate("checkout_optimization", {"user_id": "u7"}, now=at).error_code is None
            # The swap comes first, the watcher's bookkeeping right after: wait for it rather than race it.
            _wait_for(lambda: "search_v2" in http.get("/health").json()["overrides"]["flags"], 2.0, "bookkeeping")
            health = http.get("/health").json()
            assert health["status"] == "degraded"
            entry = health["overrides"]["rejected"]["checkout_optimization"]
            assert words in entry["reason"]
            assert entry["serving"] == "the snapshot's definition"
            assert health["overrides"]["flags"] == ["new_checkout_flow", "search_v2"]
            assert "error" not in health["overrides"]  # Redis itself is fine
            lines = [r.getMessage() for r in caplog.records]
            assert any("`checkout_optimization`" in line and words in line for line in lines), lines
            assert not any("unavailable" in line for line in lines), lines

            # Fixed by a real write (which replaces the bad record): applied, refusal gone, ok again.
            args = ["set-variant-weights", "checkout_optimization", "control=0", "variant_a=100"]
            assert flags(redis_url, prefix, *args, "--snapshot", str(SEED)) == 0
            _wait_for(lambda: http.get("/health").json()["status"] == "ok", 2.0, "ok again")
            assert http.get("/health").json()["overrides"]["rejected"] == {}
            assert client.evaluate("checkout_optimization", {"user_id": "u7"}, now=at).variant in (
                "variant_a",
                "control",
            )
    finally:
        client.close()


def test_a_bad_record_keeps_the_flags_last_good_override(redis_url: str, prefix: str, store: OverrideStore) -> None:
    # A kill switch must not be lost to a corrupt write: the flag keeps its last good override.
    assert flags(redis_url, prefix, "disable", "new_checkout_flow", "--snapshot", str(SEED)) == 0
    source = RedisOverrides(redis_url, prefix=prefix, poll_interval=600)
    client = Client.from_file(SEED, overrides=source)
    try:
        _wait_listening(source)
        _store_raw(store, "new_checkout_flow", b'{"version": 2, "enabled": NaN}')
        _wait_for(lambda: "new_checkout_flow" in source.status()["rejected"], 2.0, "refusal")
        entry = source.status()["rejected"]["new_checkout_flow"]
        assert entry["serving"] == "its last good override (version 1)"
        assert entry["at"].endswith("Z")
        assert client.evaluate("new_checkout_flow", CHECKOUT_UNIT).reason == "DISABLED"
        assert flags(redis_url, prefix, "clear", "new_checkout_flow") == 0  # clear removes a corrupt record
        _wait_for(lambda: client.evaluate("new_checkout_flow", CHECKOUT_UNIT).value is True, 2.0, "cleared")
        _wait_for(lambda: source.status()["status"] == "ok", 1.0, "refusal gone")  # bookkeeping follows the swap
    finally:
        client.close()


def test_a_garbage_version_counter_still_applies_every_record(
    redis_url: str, prefix: str, store: OverrideStore
) -> None:
    assert flags(redis_url, prefix, "disable", "new_checkout_flow", "--snapshot", str(SEED)) == 0
    store.client.set(store.version_key, "not-a-number")
    source = RedisOverrides(redis_url, prefix=prefix, poll_interval=0.2, heartbeat_interval=0.1)
    client = Client.from_file(SEED, overrides=source)
    try:
        assert client.evaluate("new_checkout_flow", CHECKOUT_UNIT).reason == "DISABLED"
        status = source.status()
        assert status["status"] == "degraded" and "not an integer" in status["error"]
        assert status["version"] is None
        # Written without the counter (the CLI cannot write now): the poll still notices the change.
        store.client.hset(store.hash_key, "search_v2", json.dumps({"enabled": False}))
        _wait_for(lambda: client.evaluate("search_v2", {"user_id": "u"}).reason == "DISABLED", 2.0, "poll")
        store.client.set(store.version_key, "7")
        _wait_for(lambda: source.status()["status"] == "ok", 2.0, "counter fixed")
    finally:
        client.close()


def test_malformed_static_records_are_refused_per_flag() -> None:
    client = Client(
        json.dumps(ROLLOUT_SNAPSHOT),
        overrides={"gate": {"rollout": {"rollout": float("nan")}}, "plain": {"enabled": False}},
    )
    assert client.evaluate("plain", {"user_id": "u"}).reason == "DISABLED"
    assert client.evaluate("gate", {"user_id": "u"}).error_code is None
    assert "from 0 to 100" in client.override_rejections()["gate"]


def test_cli_show_and_write_cope_with_a_corrupt_record(
    redis_url: str, prefix: str, store: OverrideStore, capsys: pytest.CaptureFixture[str]
) -> None:
    _store_raw(store, "new_checkout_flow", b"[" * 3000)
    _store_raw(store, "search_v2", b'{"version": 2, "rollout": {"rollout": "40"}}')
    assert flags(redis_url, prefix, "show") == 0
    out = capsys.readouterr().out
    assert "new_checkout_flow: (malformed: JSON nested deeper than" in out
    assert "search_v2: (malformed: rollout of rule `rollout`" in out
    assert flags(redis_url, prefix, "show", "--format", "json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert "new_checkout_flow" in shown["malformed"]
    # A write replaces a corrupt record whole (and says so); clear removes one.
    assert flags(redis_url, prefix, "disable", "search_v2", "--snapshot", str(SEED)) == 0
    assert "malformed" in capsys.readouterr().err
    assert store.get("search_v2") is not None and store.get("search_v2")["enabled"] is False  # type: ignore[index]
    assert flags(redis_url, prefix, "clear", "new_checkout_flow") == 0
    assert not store.exists("new_checkout_flow")
