"""`tusk serve --events-db`: evaluations served over OFREP land in the event store, masked as configured."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

SNAPSHOT = {
    "format": "tusklang.snapshot/1",
    "experiments": {
        "checkout": {
            "key": "checkout",
            "type": "string",
            "variants": {"control": "control", "treatment": "treatment"},
            "off_variant": "control",
            "default_variant": "control",
            "rules": [
                {"id": "experiment", "split": {"salt": "checkout/split", "weights": [["control", 1], ["treatment", 1]]}}
            ],
        }
    },
    "runtime": {
        "tracking": {"evaluations": True, "exposures": True, "sampling_rate": 1.0},
        "data_protection": {"pii_masking": True, "retention_seconds": 86400},
    },
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_served_evaluations_are_recorded_with_masked_units(tmp_path: Path) -> None:
    snapshot = tmp_path / "flags.json"
    snapshot.write_text(json.dumps(SNAPSHOT), encoding="utf-8")
    db = tmp_path / "events.db"
    port = _free_port()
    env = {"TUSK_PII_KEY": "a-test-key-of-32-bytes-for-hmac!", "PATH": "/usr/bin:/bin"}
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "tusklang.cli", "serve", str(snapshot), "--port", str(port), "--quiet"),
                *("--events-db", f"sqlite:///{db}"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "tusk serve did not start"
                time.sleep(0.05)
            with httpx.Client(timeout=5) as http:

                def evaluate(units: range) -> None:
                    for i in units:
                        body = {"context": {"targetingKey": f"user-{i}", "user_id": f"user-{i}"}}
                        answer = http.post(f"{url}/ofrep/v1/evaluate/flags/checkout", json=body).json()
                        assert answer["reason"] == "SPLIT"

                evaluate(range(20))
                # /health shows the store's counters: 20 evaluations and 20 exposures, written once the
                # writer's next flush (every 0.2 s) has run, none lost.
                events = http.get(f"{url}/health").json()["events"]
                assert set(events) == {"queued", "written", "dropped", "failed"}
                while events["written"] < 40 and time.monotonic() < deadline + 10:
                    time.sleep(0.05)
                    events = http.get(f"{url}/health").json()["events"]
                assert events == {"queued": 0, "written": 40, "dropped": 0, "failed": 0}
                # Then more, stopped right after the last answer, while they are still queued.
                evaluate(range(20, 40))
                http.post(f"{url}/ofrep/v1/evaluate/flags", json={"context": {"user_id": "user-0"}})
        finally:
            # Right after the last answer, with events still queued: SIGTERM (what systemd and Kubernetes
            # send) is a graceful stop that writes them, and the normal way to stop a service: exit 0.
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
    assert proc.returncode == 0, log.read_text()
    rows = sqlite3.connect(db).execute("SELECT kind, flag, variant, unit_id FROM tusk_events").fetchall()
    exposures = [r for r in rows if r[0] == "exposure"]
    assert len({r[3] for r in exposures}) == 40  # one exposure per unit, the repeat is deduplicated
    assert len([r for r in rows if r[0] == "evaluation"]) == 41  # every evaluation at sampling rate 1.0
    assert all(not r[3].startswith("user-") and len(r[3]) == 64 for r in rows)  # keyed hashes, not ids
    assert "recording events" in log.read_text()
