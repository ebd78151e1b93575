"""`tusk serve` answers the evaluation routes from its HTTP protocol (tusklang.serve.protocol), not through
ASGI: the same answers as the ASGI app for every malformed body, pipelined requests in order, bodies over
the limit, `Expect: 100-continue`, HTTP/1.0, and contexts orjson alone would misread."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tusklang.evaluate import Client
from tusklang.serve import create_app

from .test_serve_hardening import BAD_BODIES

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "fixtures" / "seed" / "snapshot.json"
FLAG = "/ofrep/v1/evaluate/flags/new_checkout_flow"
BULK = "/ofrep/v1/evaluate/flags"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = _free_port()
    log = (tmp_path_factory.mktemp("fast") / "serve.log").open("w")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "tusklang.cli", "serve", str(SEED), "--port", str(port)),
            *("--max-body-bytes", "1024", "--keep-alive-timeout", "1"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
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
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def _exchange(port: int, raw: bytes, responses: int = 1) -> list[tuple[int, dict[str, str], bytes]]:
    """Send raw bytes, read ``responses`` HTTP/1.1 responses (Content-Length bodies)."""
    out: list[tuple[int, dict[str, str], bytes]] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        buffer = b""
        while len(out) < responses:
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                assert chunk, f"connection closed after {len(out)} responses"
                buffer += chunk
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            if status == 100:
                continue
            length = int(headers.get("content-length", "0"))
            while len(buffer) < length:
                chunk = sock.recv(65536)
                assert chunk
                buffer += chunk
            out.append((status, headers, buffer[:length]))
            buffer = buffer[length:]
    return out


def _post(path: str, body: bytes, content_type: str | None = "application/json", extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    return (head + extra + "\r\n").encode("latin-1") + body


@pytest.mark.parametrize(("what", "body", "content_type", "status", "code"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_malformed_bodies_get_the_asgi_apps_answer(
    server: int, what: str, body: bytes, content_type: str, status: int, code: str
) -> None:
    with TestClient(create_app(SEED, max_body_bytes=1024 * 1024)) as asgi:
        for path in (FLAG, BULK):
            if len(body) > 1024:  # over this server's --max-body-bytes: 413 (after the media type check)
                expected_status = 415 if status == 415 else 413
            else:
                expected_status = status
                reference = asgi.post(path, content=body, headers={"content-type": content_type}).json()
            [(got_status, headers, got)] = _exchange(server, _post(path, body, content_type))
            assert got_status == expected_status, (path, got)
            assert headers["content-type"] == "application/json"
            answer = json.loads(got)
            if expected_status == status:
                assert answer == reference  # the same code and the same words
            else:
                assert answer["errorCode"] == "GENERAL" and "1024" in answer["errorDetails"]


def test_contexts_orjson_would_misread_are_read_as_the_json_module_does(server: int) -> None:
    local = Client.from_file(SEED)
    contexts: list[dict[str, Any]] = [
        {"user_id": "u1", "environment": "production", "n": 123456789012345678901234567890},
        {"user_id": "u2", "environment": "production", "score": 1e300, "nested": {"a": [1, {"b": 2.5}]}},
        {"user_id": "ü-3", "environment": "staging", "segments": ["beta_testers"], "plan": "premium"},
    ]
    for context in contexts:
        for key in ("new_checkout_flow", "dark_mode", "api_rate_limit_v3"):
            raw = json.dumps({"context": context}).encode("utf-8")
            [(status, _, body)] = _exchange(server, _post(f"/ofrep/v1/evaluate/flags/{key}", raw))
            expected = local.evaluate(key, context)
            got = json.loads(body)
            assert status == 200 and (got["value"], got["variant"], got["reason"]) == (
                expected.value,
                expected.variant,
                expected.reason,
            )


def test_pipelined_requests_are_answered_in_order(server: int) -> None:
    raw = (
        _post(FLAG, b'{"context":{"user_id":"p1"}}')
        + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        + _post(BULK, b"{}")
        + _post("/ofrep/v1/evaluate/flags/dark_mode", b"")
        + b"GET /ofrep/v1/configuration HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    answers = _exchange(server, raw, responses=5)
    assert [status for status, _, _ in answers] == [200] * 5
    assert json.loads(answers[0][2])["key"] == "new_checkout_flow"
    assert "snapshot_sha256" in json.loads(answers[1][2])
    assert "flags" in json.loads(answers[2][2]) and "etag" in answers[2][1]
    assert json.loads(answers[3][2])["key"] == "dark_mode"
    assert json.loads(answers[4][2])["name"] == "tusklang"


def test_oversized_chunked_expect_and_http_1_0(server: int) -> None:
    big = b'{"context":{"pad":"' + b"x" * 2000 + b'"}}'
    [(status, _, body)] = _exchange(server, _post(FLAG, big))
    assert status == 413 and json.loads(body)["key"] == "new_checkout_flow"
    chunked = b"POST " + BULK.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in [b"{" * 1] + [b" " * 500] * 3) + b"0\r\n\r\n"
    [(status, _, body)] = _exchange(server, chunked)
    assert status == 413 and "errorCode" in json.loads(body)
    # The connection stays usable after a refused body: the next request on it is answered.
    answers = _exchange(server, _post(FLAG, big) + _post(FLAG, b"{}"), responses=2)
    assert [a[0] for a in answers] == [413, 200]
    [(status, _, body)] = _exchange(server, _post(FLAG, b'{"context":{}}', extra="Expect: 100-continue\r\n"))
    assert status == 200
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        sock.sendall(b"POST " + FLAG.encode() + b" HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}")
        received = b""
        while chunk := sock.recv(65536):  # HTTP/1.0: the server closes after the answer
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 ") and b"connection: close" in received.lower()


def test_a_kept_alive_connection_idle_after_a_fast_answer_is_closed(server: int) -> None:
    """The fast path keeps one idle timer per connection instead of uvicorn's timer per response."""
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        for _ in range(3):  # answers in a row keep the connection open
            sock.sendall(_post(FLAG, b"{}"))
            head = sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 200 ")
            time.sleep(0.6)  # less than --keep-alive-timeout each time, more than it in total
        started = time.monotonic()
        sock.settimeout(5)
        assert sock.recv(65536) == b""  # closed by the server
        assert 0.3 <= time.monotonic() - started <= 3.0


def test_request_targets_are_parsed_once_each_and_the_memo_stays_bounded(server: int) -> None:
    """The same flag asked for with a percent-encoded key, a query string, and past the memo's bounds
    (entries, and the length of a target kept) is answered as the first time."""
    from tusklang.serve import protocol

    for _ in range(2):  # parsed, then remembered
        for target in (FLAG, "/ofrep/v1/evaluate/flags/new%5Fcheckout%5Fflow", f"{FLAG}?x=1"):
            ((status, _, body),) = _exchange(server, _post(target, b'{"context":{"user_id":"u1"}}'))
            assert status == 200 and json.loads(body)["key"] == "new_checkout_flow", target
    assert protocol._target(b"/a?" + b"q" * 300) == ("/a", None, b"/a", b"q" * 300)
    assert b"/a?" + b"q" * 300 not in protocol._TARGETS  # a long target is parsed each time
    for i in range(protocol._TARGETS_LIMIT + 10):
        protocol._target(b"/f%d" % i)
    assert len(protocol._TARGETS) <= protocol._TARGETS_LIMIT
