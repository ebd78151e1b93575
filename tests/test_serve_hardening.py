"""`tusk serve` and snapshot loading against hostile input: bodies, snapshot files, slow clients.

Every malformed request is a 4xx OFREP error (never a 500), every malformed snapshot is a TuskError
(and, while serving, a refusal shown by /health that a later good file clears), and a client that
sends its request slowly is cut off at the configured deadline.
"""

from __future__ import annotations

import copy
import json
import random
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tusklang.diagnostics import TuskError
from tusklang.evaluate import Client
from tusklang.serve import create_app
from tusklang.snapshot import load_snapshot

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "fixtures" / "seed" / "snapshot.json"
FLAG = "/ofrep/v1/evaluate/flags/new_checkout_flow"
BULK = "/ofrep/v1/evaluate/flags"


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


# --- request bodies ----------------------------------------------------------------------------------

JSON = "application/json"
BAD_BODIES = [
    # (what, body, content type, status, errorCode)
    ("deep arrays", b'{"context":' + b"[" * 2000 + b"]" * 2000 + b"}", JSON, 400, "PARSE_ERROR"),
    ("deep objects", b'{"context":' + b'{"a":' * 200 + b"1" + b"}" * 201, JSON, 400, "PARSE_ERROR"),
    ("deep, unterminated", b"[" * 60_000, JSON, 400, "PARSE_ERROR"),
    ("5,000-digit integer", b'{"context":{"n":' + b"9" * 5000 + b"}}", JSON, 400, "PARSE_ERROR"),
    ("NaN", b'{"context":{"n":NaN}}', JSON, 400, "PARSE_ERROR"),
    ("-Infinity", b'{"context":{"n":-Infinity}}', JSON, 400, "PARSE_ERROR"),
    ("a number beyond float range", b'{"context":{"n":1e999}}', JSON, 400, "PARSE_ERROR"),
    ("invalid UTF-8", b'{"context":{"s":"\xff\xfe"}}', JSON, 400, "PARSE_ERROR"),
    ("UTF-16", '{"context":{}}'.encode("utf-16"), JSON, 400, "PARSE_ERROR"),
    ("a lone surrogate in a value", b'{"context":{"s":"\\ud800"}}', JSON, 400, "PARSE_ERROR"),
    ("a lone surrogate in a key", b'{"context":{"\\udfff":1}}', JSON, 400, "PARSE_ERROR"),
    ("truncated", b'{"context":{"user_id":"u', JSON, 400, "PARSE_ERROR"),
    ("not JSON", b"user_id=u1", JSON, 400, "PARSE_ERROR"),
    ("an array", b"[1, 2]", JSON, 400, "PARSE_ERROR"),
    ("a string", b'"context"', JSON, 400, "PARSE_ERROR"),
    ("a number", b"42", JSON, 400, "PARSE_ERROR"),
    ("null", b"null", JSON, 400, "PARSE_ERROR"),
    ("context not an object", b'{"context":[1]}', JSON, 400, "INVALID_CONTEXT"),
    ("targetingKey a number", b'{"context":{"targetingKey":5}}', JSON, 400, "INVALID_CONTEXT"),
    ("targetingKey a list", b'{"context":{"targetingKey":["u1"]}}', JSON, 400, "INVALID_CONTEXT"),
    ("targetingKey an object", b'{"context":{"targetingKey":{"id":"u1"}}}', JSON, 400, "INVALID_CONTEXT"),
    ("targetingKey a boolean", b'{"context":{"targetingKey":true}}', JSON, 400, "INVALID_CONTEXT"),
    # text/plain needs no CORS preflight: accepting it would let any web page query the server.
    ("text/plain", b'{"context":{}}', "text/plain", 415, "PARSE_ERROR"),
    ("form encoded", b"context=1", "application/x-www-form-urlencoded", 415, "PARSE_ERROR"),
    ("multipart", b"--x--", "multipart/form-data; boundary=x", 415, "PARSE_ERROR"),
]


@pytest.fixture
def http() -> Iterator[TestClient]:
    with TestClient(create_app(SEED, max_body_bytes=64 * 1024), raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(("what", "body", "content_type", "status", "code"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_malformed_bodies_are_4xx_on_every_evaluation_route(
    http: TestClient, what: str, body: bytes, content_type: str, status: int, code: str
) -> None:
    for path in (FLAG, BULK):
        response = http.post(path, content=body, headers={"content-type": content_type})
        assert response.status_code == status, (path, response.text[:200])
        answer = response.json()
        assert answer["errorCode"] == code
        assert answer["errorDetails"] and "Traceback" not in answer["errorDetails"]
        assert len(answer["errorDetails"]) < 300  # says why without echoing the body
    assert http.get("/health").status_code == 200  # and the server is unharmed


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "application/json; charset=utf-8", "application/vnd.api+json"]
)
def test_json_content_types_and_a_bom_are_accepted(http: TestClient, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    body = b'\xef\xbb\xbf{"context":{"targetingKey":"u1","user_id":"u1"}}'
    assert http.post(FLAG, content=body, headers=headers).status_code == 200
    assert http.post(FLAG, content=b"", headers=headers).json()["reason"] in ("DEFAULT", "SPLIT", "TARGETING_MATCH")


def test_oversized_and_odd_requests_on_every_route(http: TestClient) -> None:
    huge = b'{"context":{"pad":"' + b"x" * (65 * 1024) + b'"}}'
    assert http.post(FLAG, content=huge, headers={"content-type": JSON}).status_code == 413
    assert http.post(BULK, content=huge, headers={"content-type": JSON}).status_code == 413
    for path in (
        "/ofrep/v1/evaluate/flags/%ff",
        "/ofrep/v1/evaluate/flags/%00",
        "/ofrep/v1/evaluate/flags/" + "a" * 5000,
    ):
        assert http.post(path, json={"context": {}}).status_code == 404
    assert http.get(BULK).status_code == 405
    assert http.post("/health").status_code == 405
    assert http.get("/ofrep/v1/configuration?x=%ff&y=" + "z" * 2000).status_code == 200
    assert http.get("/health", headers={"x-pad": "y" * 8000}).status_code == 200


def test_request_headers_beyond_the_limit_get_431() -> None:
    with TestClient(create_app(SEED, max_header_bytes=4096)) as client:
        assert client.get("/health", headers={"x-pad": "y" * 3000}).status_code == 200
        response = client.get("/health", headers={"x-pad": "y" * 5000})
        assert response.status_code == 431
        assert "4096" in response.json()["errorDetails"]


# --- snapshot files ----------------------------------------------------------------------------------

_seed = json.loads(SEED.read_text(encoding="utf-8"))


def _variant(mutate: Callable[[dict[str, Any]], None]) -> str:
    data = copy.deepcopy(_seed)
    mutate(data)
    return json.dumps(data)


def _segment_chain(data: dict[str, Any], n: int = 3000) -> None:
    data["segments"].update(
        {f"chain{i}": {"conditions": [{"op": "segment", "segments": [f"chain{(i + 1) % n}"]}]} for i in range(n)}
    )


def _nested_regex(data: dict[str, Any]) -> None:
    data["flags"]["dark_mode"]["rules"][0]["conditions"][0] = {
        "op": "matches",
        "attribute": "a",
        "value": "(" * 1200 + ")" * 1200,
    }


def _nan_variant(data: dict[str, Any]) -> None:
    data["flags"]["api_rate_limit_v3"]["variants"] = {
        k: float("nan") for k in data["flags"]["api_rate_limit_v3"]["variants"]
    }


BAD_SNAPSHOTS: list[tuple[str, str | bytes]] = [
    ("2,000 brackets", "[" * 2000),
    ("100,000 brackets", "[" * 100_000),
    ("deep metadata", _variant(lambda d: d["flags"]["dark_mode"].update(metadata=json.loads("[" * 300 + "]" * 300)))),
    ("a 5,000-digit number", '{"format": "tusklang.snapshot/1", "scale": ' + "7" * 5000 + "}"),
    ("NaN values", _variant(_nan_variant)),
    ("Infinity in metadata", _variant(lambda d: d["flags"]["dark_mode"]["metadata"].update(x=float("inf")))),
    ("a cycle through 3,000 segments", _variant(_segment_chain)),
    ("a regex nested 1,200 deep", _variant(_nested_regex)),
    ("not UTF-8", b'{"format": "\xff\xfe"}'),
    ("empty", ""),
    ("truncated", SEED.read_text(encoding="utf-8")[:500]),
    ("an array", "[]"),
]


@pytest.mark.parametrize(("what", "text"), BAD_SNAPSHOTS, ids=[b[0] for b in BAD_SNAPSHOTS])
def test_every_malformed_snapshot_is_a_tusk_error(what: str, text: str | bytes, tmp_path: Path) -> None:
    with pytest.raises(TuskError) as exc:
        load_snapshot(text)
    assert exc.value.first.message
    with pytest.raises(TuskError):
        Client(text)
    path = tmp_path / "flags.json"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    with pytest.raises(TuskError):
        Client.from_file(path)


def test_a_long_acyclic_segment_chain_loads() -> None:
    def chain(data: dict[str, Any]) -> None:
        _segment_chain(data)
        data["segments"]["chain2999"] = {"conditions": []}

    assert "chain0" in load_snapshot(_variant(chain)).segments


def test_deep_python_values_are_refused_too() -> None:
    deep: Any = 1
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(TuskError, match="deeper than"):
        load_snapshot({"format": "tusklang.snapshot/1", "metadata": {"x": deep}})


def _mutations(rng: random.Random, text: str) -> Iterator[str]:
    """Truncations, byte flips, spliced brackets and duplicated slices of a valid snapshot."""
    for _ in range(150):
        cut = rng.randrange(len(text))
        yield text[:cut]
    for _ in range(150):
        chars = list(text)
        for _ in range(rng.randrange(1, 6)):
            chars[rng.randrange(len(chars))] = rng.choice('{}[]",:0-9eE.\\ntfx\x00\ud800')
        yield "".join(chars)
    values = [i + 1 for i, c in enumerate(text) if c == ":"]  # where a JSON value starts
    for _ in range(100):
        at = rng.choice(values)
        yield text[:at] + rng.choice(["[", "{", '{"a":', "[1,", "1e999", "NaN"]) * rng.choice([1, 50, 5000]) + text[at:]
    for _ in range(100):
        a, b = sorted(rng.randrange(len(text)) for _ in range(2))
        yield text[:b] + text[a:]


def test_fuzzed_snapshots_load_or_raise_tusk_error_only() -> None:
    rng = random.Random(13)
    text = SEED.read_text(encoding="utf-8")
    loaded = refused = 0
    for candidate in _mutations(rng, text):
        try:
            Client(candidate.encode("utf-8", "surrogatepass"))
            loaded += 1
        except TuskError:
            refused += 1
    assert refused > 400 and loaded + refused == 500


def test_the_watcher_survives_every_bad_file_and_loads_a_good_one_again(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    good = SEED.read_bytes()
    path.write_bytes(good)
    with TestClient(create_app(path, watch_interval=0.02)) as http:
        first = http.get("/health").json()
        assert first["status"] == "ok" and first["snapshot"]["rejected"] is None
        for what, text in BAD_SNAPSHOTS:
            path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
            _wait_for(lambda: (http.get("/health").json()["snapshot"]["rejected"] or {}).get("at", "") > "", 5.0)
            health = http.get("/health").json()
            assert health["status"] == "degraded", what
            assert health["snapshot"]["rejected"]["reason"], what
            assert health["snapshot_sha256"] == first["snapshot_sha256"], what  # the last good one serves
            assert http.post(FLAG, json={"context": {"user_id": "u1"}}).status_code == 200
            path.write_bytes(good)
            _wait_for(lambda: http.get("/health").json()["status"] == "ok", 5.0)
        path.unlink()  # a vanished file is refused too, and its return loads
        _wait_for(lambda: http.get("/health").json()["status"] == "degraded", 5.0)
        path.write_bytes(good)
        _wait_for(lambda: http.get("/health").json()["status"] == "ok", 5.0)
        assert http.get("/health").json()["snapshot"]["reloads"] == len(BAD_SNAPSHOTS) + 1


def test_tusk_serve_refuses_a_bad_snapshot_at_start_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text("[" * 2000)
    done = subprocess.run(
        [sys.executable, "-m", "tusklang.cli", "serve", str(path), "--events-db", f"sqlite:///{tmp_path / 'e.db'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "invalid snapshot" in done.stderr and "Traceback" not in done.stderr


# --- slow clients (raw sockets against `tusk serve`) ------------------------------------------------

TIMEOUT = 1.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port = _free_port()
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("w")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "tusklang.cli", "serve", str(SEED), "--port", str(port), "--quiet"),
            *("--header-timeout", str(TIMEOUT), "--body-timeout", str(TIMEOUT), "--keep-alive-timeout", str(TIMEOUT)),
            *("--max-connections", "20", "--max-header-bytes", "4096"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 20
    while True:
        assert proc.poll() is None, "tusk serve exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "tusk serve did not start"
        time.sleep(0.05)
    try:
        yield port, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()


def _hold(port: int, first: bytes, trickle: bytes, limit: float = 8.0) -> tuple[float, bytes]:
    """Send ``first``, then ``trickle`` every 0.1 s, until the server closes: (seconds, bytes received)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.monotonic()
        sock.settimeout(0.1)
        if first:
            sock.sendall(first)
        received = b""
        while time.monotonic() - started < limit:
            try:
                data = sock.recv(4096)
            except TimeoutError:
                if trickle:
                    try:
                        sock.sendall(trickle)
                    except OSError:
                        break
                continue
            except OSError:
                break
            if not data:
                break
            received += data
        return time.monotonic() - started, received


def _closed_at_the_deadline(took: float) -> None:
    # Not before the deadline (it is the deadline that fired), and soon after it on a busy machine.
    assert TIMEOUT - 0.05 <= took <= TIMEOUT + 2.0, took


def test_slowloris_headers_a_byte_at_a_time_get_408_at_the_header_deadline(slow_server: tuple[int, Any]) -> None:
    port, _ = slow_server
    took, received = _hold(port, b"POST /ofrep/v1/evaluate/flags/dark_mode HTTP/1.1\r\n", b"X")
    _closed_at_the_deadline(took)  # trickling bytes every 0.1 s did not extend it
    assert received.startswith(b"HTTP/1.1 408 ")


def test_a_connection_that_sends_nothing_is_closed_at_the_header_deadline(slow_server: tuple[int, Any]) -> None:
    port, _ = slow_server
    took, received = _hold(port, b"", b"")
    _closed_at_the_deadline(took)
    assert received == b""


def test_a_partial_body_is_closed_at_the_body_deadline(slow_server: tuple[int, Any]) -> None:
    port, _ = slow_server
    head = (
        b"POST /ofrep/v1/evaluate/flags/dark_mode HTTP/1.1\r\nhost: x\r\n"
        b"content-type: application/json\r\ncontent-length: 2000\r\n\r\n"
    )
    took, received = _hold(port, head + b'{"context": {', b" ")
    _closed_at_the_deadline(took)
    assert b"200 OK" not in received
    chunked = b"POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
    took, _ = _hold(port, chunked + b"1\r\n{\r\n", b"1\r\n \r\n")
    _closed_at_the_deadline(took)


def test_an_idle_kept_alive_connection_is_closed_and_normal_clients_are_unaffected(
    slow_server: tuple[int, Any],
) -> None:
    port, _ = slow_server
    took, received = _hold(port, b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n", b"")
    _closed_at_the_deadline(took)  # --keep-alive-timeout
    assert received.startswith(b"HTTP/1.1 200 ")
    with httpx.Client(timeout=5) as client:  # a keep-alive client making requests in a row
        for i in range(20):
            answer = client.post(
                f"http://127.0.0.1:{port}{FLAG}", json={"context": {"targetingKey": f"u{i}", "user_id": f"u{i}"}}
            )
            assert answer.status_code == 200
    # Headers sent slowly but within the deadline are fine.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for part in (b"GET /health HTTP/1.1\r\n", b"host: x\r\n", b"connection: close\r\n", b"\r\n"):
            sock.sendall(part)
            time.sleep(TIMEOUT / 8)
        assert sock.recv(100).startswith(b"HTTP/1.1 200 ")


def test_connection_limit_answers_503_until_slow_connections_are_cut(slow_server: tuple[int, Any]) -> None:
    port, _ = slow_server
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    try:
        time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 503
        time.sleep(TIMEOUT + 0.5)  # the header deadline frees every slot
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert health.status_code == 200
        assert health.json()["http"]["header_timeouts"] >= 20
    finally:
        for sock in idle:
            sock.close()


def test_oversized_headers_are_refused(slow_server: tuple[int, Any]) -> None:
    port, _ = slow_server
    for pad in (b"y" * 5000, b"y" * 300_000):  # in one read (431) and beyond one read (h11: 400)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            try:
                sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nx-pad: " + pad + b"\r\n\r\n")
            except OSError:
                pass  # the server may close before it has read everything
            status = sock.recv(100)[:12]
        assert status in (b"HTTP/1.1 431", b"HTTP/1.1 400"), status
