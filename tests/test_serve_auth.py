"""`tusk serve --auth-token-file`: 401 without a valid bearer token on the OFREP routes and /metrics,
several tokens at once, rotation by editing the file; /health stays open."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tusklang.serve import create_app
from tusklang.serve.auth import TokenAuth, TokenFileError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "fixtures" / "seed" / "snapshot.json"
FLAG = "/ofrep/v1/evaluate/flags/new_checkout_flow"
BULK = "/ofrep/v1/evaluate/flags"
OLD, NEW, THIRD = "old-token-5f1c2a", "new-token-9b7e44", "third-token-0d3a91"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    # A rotation within one mtime tick must still be seen: the size differs, but make the time differ too.
    later = time.time() + 1
    os.utime(path, (later, later))


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    _write(path, f"# deploy tokens\n{OLD}\n\n  {NEW}  \n")
    return path


@pytest.fixture
def http(tokens: Path) -> Iterator[TestClient]:
    with TestClient(create_app(SEED, auth=TokenAuth(tokens, check_every=0))) as client:
        yield client


def test_every_ofrep_route_and_metrics_need_a_valid_token(http: TestClient) -> None:
    requests: list[tuple[str, str]] = [
        ("POST", FLAG),
        ("POST", BULK),
        ("GET", "/ofrep/v1/configuration"),
        ("GET", "/metrics"),
    ]
    for method, path in requests:
        for headers in ({}, bearer("wrong"), bearer(""), {"authorization": OLD}, {"authorization": f"Basic {OLD}"}):
            answer = http.request(method, path, json={} if method == "POST" else None, headers=headers)
            assert answer.status_code == 401, (method, path, headers)
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert answer.json()["errorDetails"] == "missing or invalid bearer token"
        for token in (OLD, NEW):  # both lines of the file, comments and blank lines ignored
            answer = http.request(method, path, json={} if method == "POST" else None, headers=bearer(token))
            assert answer.status_code == 200, (method, path, token)
    assert http.post(FLAG, json={}, headers={"authorization": f"bearer   {NEW}"}).status_code == 200
    # A load balancer's probe carries no token: /health stays open (it shows no flag value).
    assert http.get("/health").status_code == 200


def test_the_file_is_reread_when_it_changes(http: TestClient, tokens: Path) -> None:
    assert http.post(FLAG, json={}, headers=bearer(OLD)).status_code == 200
    _write(tokens, f"{NEW}\n{THIRD}\n")  # rotation: the old token goes, a third one comes
    assert http.post(FLAG, json={}, headers=bearer(OLD)).status_code == 401
    assert http.post(FLAG, json={}, headers=bearer(THIRD)).status_code == 200
    assert http.post(FLAG, json={}, headers=bearer(NEW)).status_code == 200
    tokens.unlink()  # vanished (an atomic replace in progress): the last tokens stay
    assert http.post(FLAG, json={}, headers=bearer(THIRD)).status_code == 200
    _write(tokens, "# nobody\n")  # a file with no token left refuses everyone
    assert http.post(FLAG, json={}, headers=bearer(THIRD)).status_code == 401
    assert http.get("/health").status_code == 200


def test_an_unusable_token_file_is_refused_at_start(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("# no token yet\n\n")
    with pytest.raises(TokenFileError, match="no token"):
        TokenAuth(empty)
    with pytest.raises(TokenFileError, match="cannot read"):
        TokenAuth(tmp_path / "missing")
    for path in (empty, tmp_path / "missing"):
        done = subprocess.run(
            [sys.executable, "-m", "tusklang.cli", "serve", str(SEED), "--port", "1", "--auth-token-file", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert "--auth-token-file" in done.stderr and "Traceback" not in done.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_tusk_serve_answers_401_and_follows_a_rotation(tokens: Path, tmp_path: Path) -> None:
    """The same through `tusk serve`'s own HTTP protocol (its fast path for the evaluation routes)."""
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "tusklang.cli", "serve", str(SEED), "--port", str(port)),
                *("--auth-token-file", str(tokens)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
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
        with httpx.Client(base_url=base, timeout=5) as http:
            assert http.post(FLAG, json={}).status_code == 401
            assert http.post(BULK, json={}, headers=bearer("nope")).status_code == 401
            assert http.post(FLAG, json={}, headers=bearer(OLD)).status_code == 200
            assert http.post(BULK, json={}, headers=bearer(NEW)).status_code == 200
            assert http.get("/metrics").status_code == 401
            assert http.get("/metrics", headers=bearer(NEW)).status_code == 200
            _write(tokens, f"{THIRD}\n")
            _wait_for(lambda: http.post(FLAG, json={}, headers=bearer(THIRD)).status_code == 200, 5)
            assert http.post(FLAG, json={}, headers=bearer(OLD)).status_code == 401
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert OLD not in log.read_text() and THIRD not in log.read_text()  # tokens are never logged
