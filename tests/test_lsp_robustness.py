"""`tusk lsp` under hostile input: bad frames, bad JSON, bad params. Every request is answered, the server lives.

The framing is tested directly on `FrameDecoder` (fast, exhaustive) and end to end over a real pipe with raw
bytes, since a JSON-RPC client library cannot send a broken frame.
"""

from __future__ import annotations

import json
import os
import queue
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tusklang.lsp.transport import MAX_CONTENT_LENGTH, MAX_HEADER_BYTES, Frame, FrameDecoder, Problem

ROOT = Path(__file__).resolve().parent.parent
PROBE_URI = "file:///tmp/tusk-lsp-robustness-probe.tsk"
PROBE_TEXT = "[flags]\nsearch = { enabled = true }\n"
FUZZ_URI = "file:///tmp/tusk-lsp-robustness-fuzz.tsk"
ANSWER_WITHIN = 2.0


def frame(body: bytes | str | dict[str, Any] | list[Any]) -> bytes:
    if isinstance(body, dict | list):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def request(msg_id: int | str, method: str, params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}


def hover(msg_id: int | str, uri: str = PROBE_URI, line: Any = 1, character: Any = 2) -> dict[str, Any]:
    return request(
        msg_id, "textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
    )


# --- the frame decoder -------------------------------------------------------------------------------


def decode(*chunks: bytes) -> list[Frame | Problem]:
    decoder = FrameDecoder()
    return [event for chunk in chunks for event in decoder.feed(chunk)]


def bodies(events: list[Frame | Problem]) -> list[bytes]:
    return [e.body for e in events if isinstance(e, Frame)]


GOOD = frame({"jsonrpc": "2.0", "id": 7, "method": "shutdown"})
GOOD_BODY = GOOD.split(b"\r\n\r\n", 1)[1]


def test_well_formed_frames_decode_whatever_the_chunking() -> None:
    stream = GOOD + frame(b'{"a": "Content-Length: 5"}') + b"Content-Length: 2\r\nContent-Type: x\r\n\r\n{}" + GOOD
    expected = [GOOD_BODY, b'{"a": "Content-Length: 5"}', b"{}", GOOD_BODY]
    assert bodies(decode(stream)) == expected
    for size in (1, 2, 3, 7, 64):
        assert bodies(decode(*(stream[i : i + size] for i in range(0, len(stream), size)))) == expected
    assert not [e for e in decode(stream) if isinstance(e, Problem)]


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (b"Content-Length: -5\r\n\r\n{}", "not a non-negative integer"),
        (b"Content-Length: abc\r\n\r\n{}", "not a non-negative integer"),
        (b"Content-Length: 1e3\r\n\r\n{}", "not a non-negative integer"),
        (b"Content-Length: \r\n\r\n{}", "not a non-negative integer"),
        (b"Content-Type: application/json\r\n\r\n{}", "without a Content-Length"),
        (b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "two different Content-Length"),
        (b"this is not a header\r\n\r\n{}", "not a header line"),
        (b"Content-Length: 1000000000000\r\n\r\n{}", "above the limit"),
        (b"Content-Length: " + b"9" * 100_000 + b"\r\n\r\n{}", "headers longer than"),
        (b"X-Junk: " + b"a" * (MAX_HEADER_BYTES + 10) + b"\r\n\r\n{}", "headers longer than"),
    ],
)
def test_a_bad_header_is_reported_and_the_next_frame_still_decodes(bad: bytes, problem: str) -> None:
    for chunks in ([bad + GOOD], [bad, GOOD], [bytes([b]) for b in bad + GOOD]):
        events = decode(*chunks)
        assert bodies(events) == [GOOD_BODY]
        assert any(problem in e.message for e in events if isinstance(e, Problem)), events


def test_a_length_larger_than_the_body_does_not_swallow_the_next_frames() -> None:
    events = decode(b"Content-Length: 1000\r\n\r\n{}" + GOOD + GOOD)
    assert bodies(events) == [GOOD_BODY, GOOD_BODY]
    cut = [e for e in events if isinstance(e, Problem)]
    assert len(cut) == 1 and cut[0].code == -32700 and "cut short" in cut[0].message


def test_a_length_shorter_than_the_body_gives_a_bad_body_then_the_next_frame() -> None:
    events = decode(b'Content-Length: 3\r\n\r\n{"jsonrpc": "2.0"}' + GOOD)
    assert bodies(events) == [b'{"j', GOOD_BODY]  # the short body fails as JSON later; the tail is skipped


def test_an_oversized_frame_is_refused_without_buffering_its_body() -> None:
    decoder = FrameDecoder()
    events = decoder.feed(b"Content-Length: %d\r\n\r\n" % (MAX_CONTENT_LENGTH + 1))
    assert [e.code for e in events if isinstance(e, Problem)] == [-32600]
    chunk = b"x" * 1_000_000
    for _ in range(20):  # 20 MB of body: skipped, not kept
        assert decoder.feed(chunk) == []
        assert decoder.buffered < 1_000
    assert bodies(decoder.feed(GOOD)) == [GOOD_BODY]


def test_a_frame_up_to_the_cap_is_accepted() -> None:
    body = b'"' + b"x" * (MAX_CONTENT_LENGTH - 2) + b'"'
    assert bodies(decode(frame(body))) == [body]


def test_identical_duplicate_lengths_bare_newlines_and_blank_lines_between_frames_are_accepted() -> None:
    stream = b"\r\n\r\nContent-Length: 2\r\ncontent-length:2\r\n\r\n{}" + b"\n" + b"Content-Length: 2\n\n[]"
    events = decode(stream)
    assert bodies(events) == [b"{}", b"[]"]
    assert not [e for e in events if isinstance(e, Problem)]


@settings(max_examples=300, deadline=None)
@given(
    garbage=st.lists(st.binary(max_size=200), max_size=5),
    cuts=st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=20),
)
def test_after_any_garbage_a_well_formed_frame_is_decoded(garbage: list[bytes], cuts: list[int]) -> None:
    # Garbage that itself announces a frame (contains "content-length") may legitimately eat the next one.
    junk = b"".join(garbage)
    while b"content-length" in junk.lower():
        junk = junk.lower().replace(b"content-length", b"")
    stream = junk + GOOD
    chunks, at = [], 0
    for size in cuts * (len(stream) // sum(cuts) + 1):
        chunks.append(stream[at : at + size])
        at += size
    assert bodies(decode(*chunks))[-1:] == [GOOD_BODY]


# --- a real server over a pipe -----------------------------------------------------------------------


class RawClient:
    """Bytes to `tusk lsp`'s stdin, parsed messages from its stdout (stderr goes to a file: never blocks)."""

    def __init__(self, args: tuple[str, ...] = ("lsp",), cwd: Path | None = None) -> None:
        self.stderr = tempfile.TemporaryFile()
        command = [sys.executable, "-c", f"import sys; from tusklang.cli import main; sys.exit(main({list(args)!r}))"]
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                if line in (b"\r\n", b"\n"):
                    break
            assert length is not None
            self.inbox.put(json.loads(stream.read(length)))

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def answer(self, msg_id: int | str | None, timeout: float = ANSWER_WITHIN) -> dict[str, Any]:
        """The response to `msg_id` (None: the next error response with a null id)."""
        deadline = time.monotonic() + timeout
        for i, message in enumerate(self.seen):
            if "method" not in message and message.get("id") == msg_id:
                return self.seen.pop(i)
        while True:
            remaining = deadline - time.monotonic()
            try:
                message = self.inbox.get(timeout=max(remaining, 0))
            except queue.Empty:
                raise AssertionError(
                    f"no answer to {msg_id!r} within {timeout} s; stderr:\n{self.log()[-3000:]}"
                ) from None
            if "method" not in message and message.get("id") == msg_id:
                return message
            self.seen.append(message)

    def call(self, message: dict[str, Any], timeout: float = ANSWER_WITHIN) -> dict[str, Any]:
        self.send(frame(message))
        return self.answer(message["id"], timeout)

    def initialize(self, root: Path | None = None) -> None:
        params = {
            "capabilities": {},
            "rootUri": root.as_uri() if root else None,
            "initializationOptions": {"tusk": {"debounceMs": 0}},
        }
        # Starting Python and importing pygls can take seconds on a loaded machine; only later answers are timed.
        assert "result" in self.call(request(0, "initialize", params), timeout=60)
        self.send(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
        self.open(PROBE_URI, PROBE_TEXT)

    def open(self, uri: str, text: str) -> None:
        item = {"uri": uri, "languageId": "tusk", "version": 1, "text": text}
        self.send(frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": item}}))

    def log(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.stderr.close()


@pytest.fixture(scope="module")
def lsp() -> Iterator[RawClient]:
    client = RawClient()
    client.initialize()
    yield client
    client.close()


def assert_alive(client: RawClient, msg_id: int | str) -> None:
    """A valid hover on the probe document is answered, with the document's content."""
    result = client.call(hover(msg_id))["result"]
    assert result is not None and "search" in json.dumps(result)


_ids = iter(range(1_000_000, 10_000_000))


def next_id() -> int:
    return next(_ids)


@pytest.mark.parametrize(
    ("position", "why"),
    [
        ({"line": -1, "character": 0}, "should be in range"),
        ({"line": 0, "character": -5}, "should be in range"),
        ({"line": 2**31, "character": 0}, "should be in range"),
        ({"line": 10**30, "character": 0}, "should be in range"),
        ({"line": 0}, "required field missing"),
        ({"line": "one", "character": 0}, "invalid"),
        ({"line": [], "character": {}}, "invalid"),
        (None, "invalid value"),
    ],
)
def test_a_bad_position_is_answered_with_invalid_params(lsp: RawClient, position: Any, why: str) -> None:
    msg_id = next_id()
    message = request(msg_id, "textDocument/hover", {"textDocument": {"uri": PROBE_URI}, "position": position})
    error = lsp.call(message)["error"]
    assert error["code"] == -32602 and why in error["message"]
    assert_alive(lsp, next_id())


@pytest.mark.parametrize(
    "method", ["textDocument/definition", "textDocument/references", "textDocument/completion", "textDocument/rename"]
)
def test_every_request_method_validates_its_params_the_same_way(lsp: RawClient, method: str) -> None:
    msg_id = next_id()
    params = {"textDocument": {"uri": PROBE_URI}, "position": {"line": -3, "character": 0}, "newName": "x"}
    params["context"] = {"includeDeclaration": True}
    assert lsp.call(request(msg_id, method, params))["error"]["code"] == -32602


@pytest.mark.parametrize(
    "position",
    [{"line": 500, "character": 0}, {"line": 0, "character": 10_000}, {"line": 2**31 - 1, "character": 2**31 - 1}],
)
def test_a_position_past_the_end_is_clamped_not_an_error(lsp: RawClient, position: dict[str, int]) -> None:
    for method in (
        "textDocument/hover",
        "textDocument/definition",
        "textDocument/completion",
        "textDocument/prepareRename",
    ):
        msg_id = next_id()
        answer = lsp.call(request(msg_id, method, {"textDocument": {"uri": PROBE_URI}, "position": position}))
        assert "result" in answer, answer


@pytest.mark.parametrize("uri", ["file:///tmp/never-opened.tsk", "file:///dev/zero", "untitled:x", "%%%", ""])
def test_a_document_that_is_not_open_gets_null_and_is_never_read_from_disk(lsp: RawClient, uri: str) -> None:
    started = time.monotonic()
    for method in ("textDocument/hover", "textDocument/documentSymbol", "textDocument/formatting"):
        params: dict[str, Any] = {"textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}}
        params["options"] = {"tabSize": 4, "insertSpaces": True}
        assert lsp.call(request(next_id(), method, params))["result"] is None
    assert time.monotonic() - started < ANSWER_WITHIN


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", -32700),
        (b"", -32700),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"a": "\xff\xfe"}}', -32700),
        (b"[" * 10_000 + b"]" * 10_000, -32700),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "x", "params": ' + b"9" * 5000 + b"}", -32700),
        (b"[]", -32600),
        (b'[{"jsonrpc": "2.0", "id": 1, "method": "shutdown"}]', -32600),
        (b"42", -32600),
        (b"{}", -32600),
        (b'{"jsonrpc": "2.0", "id": [1], "method": "textDocument/hover"}', -32600),
        (b'{"jsonrpc": "2.0", "id": true, "method": "textDocument/hover"}', -32600),
        (b'{"jsonrpc": "2.0", "id": 1.5, "method": "textDocument/hover"}', -32600),
        (b'{"jsonrpc": "2.0", "method": 5}', -32600),
    ],
    ids=lambda value: repr(value[:40]) if isinstance(value, bytes) else str(value),
)
def test_a_body_that_is_not_a_message_gets_an_error_with_a_null_id(lsp: RawClient, body: bytes, code: int) -> None:
    lsp.send(frame(body))
    assert lsp.answer(None)["error"]["code"] == code
    assert_alive(lsp, next_id())


def test_an_envelope_error_with_a_usable_id_is_answered_with_that_id(lsp: RawClient) -> None:
    assert lsp.call({"jsonrpc": "1.0", "id": "old", "method": "textDocument/hover"})["error"]["code"] == -32600
    assert lsp.call({"id": "no-version", "method": "textDocument/hover"})["error"]["code"] == -32600
    assert lsp.call(request("nope", "tusk/noSuchMethod", {}))["error"]["code"] == -32601
    assert lsp.call(request(10**30, "textDocument/hover", []))["error"]["code"] == -32602


def test_bad_notifications_are_dropped_and_the_server_goes_on(lsp: RawClient) -> None:
    notes: list[Any] = [
        {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri": PROBE_URI}}},
        {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": None},
        {"jsonrpc": "2.0", "method": "textDocument/didClose", "params": {"textDocument": {"uri": 5}}},
        {"jsonrpc": "2.0", "method": "textDocument/didSave", "params": {"textDocument": {"uri": "file:///dev/zero"}}},
        {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": [1]}},
        {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 123456789}},
        {"jsonrpc": "2.0", "method": "tusk/unknownNotification", "params": {}},
        {
            "jsonrpc": "2.0",
            "method": "workspace/didChangeConfiguration",
            "params": {"settings": {"tusk": {"debounceMs": -7}}},
        },
    ]
    for note in notes:
        lsp.send(frame(note))
    assert_alive(lsp, next_id())


def test_bad_frames_then_a_good_request_over_the_pipe(lsp: RawClient) -> None:
    lsp.send(b"Content-Length: -5\r\n\r\n{}")
    assert_alive(lsp, next_id())
    lsp.send(b"Content-Length: 100000\r\n\r\n{}")  # larger than the body: the next frame must not be eaten
    assert_alive(lsp, next_id())
    assert "cut short" in lsp.answer(None)["error"]["message"]
    lsp.send(b"Content-Length: %d\r\n\r\n" % 10**12)
    assert lsp.answer(None)["error"]["code"] == -32600
    lsp.send(b"x" * 3_000_000)  # the refused body, never buffered
    assert_alive(lsp, next_id())
    lsp.send(b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n{}")
    assert_alive(lsp, next_id())
    lsp.send(b"\x00\xff garbage \r\n\r\n")
    assert_alive(lsp, next_id())


def test_requests_before_initialize_and_after_shutdown() -> None:
    client = RawClient()
    try:
        assert client.call(hover(1), timeout=60)["error"]["code"] == -32002
        client.initialize()
        assert_alive(client, 2)
        assert client.call(request(3, "shutdown", None))["result"] is None
        assert client.call(hover(4))["error"]["code"] == -32600
        client.send(frame({"jsonrpc": "2.0", "method": "exit", "params": {"junk": [1]}}))
        assert client.proc.wait(5) == 0
    finally:
        client.close()


def test_a_fifo_in_the_workspace_does_not_stall_requests(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "stuck.tsk")
    (tmp_path / "other.tsk").write_text("[segments]\nbeta = { rules = [] }\n", encoding="utf-8")
    client = RawClient()
    try:
        client.initialize(root=tmp_path)
        assert_alive(client, 1)  # hover looks at every workspace file; reading the FIFO would block forever
    finally:
        client.close()


# --- the fuzz run ------------------------------------------------------------------------------------

_TEMPLATES: list[tuple[str, dict[str, Any]]] = [
    ("textDocument/hover", {"textDocument": {"uri": FUZZ_URI}, "position": {"line": 0, "character": 1}}),
    ("textDocument/definition", {"textDocument": {"uri": FUZZ_URI}, "position": {"line": 1, "character": 3}}),
    (
        "textDocument/references",
        {
            "textDocument": {"uri": FUZZ_URI},
            "position": {"line": 1, "character": 3},
            "context": {"includeDeclaration": True},
        },
    ),
    ("textDocument/completion", {"textDocument": {"uri": FUZZ_URI}, "position": {"line": 2, "character": 0}}),
    ("textDocument/documentSymbol", {"textDocument": {"uri": FUZZ_URI}}),
    (
        "textDocument/codeAction",
        {
            "textDocument": {"uri": FUZZ_URI},
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 3, "character": 0}},
            "context": {"diagnostics": []},
        },
    ),
    ("textDocument/formatting", {"textDocument": {"uri": FUZZ_URI}, "options": {"tabSize": 4, "insertSpaces": True}}),
    (
        "textDocument/rename",
        {"textDocument": {"uri": FUZZ_URI}, "position": {"line": 1, "character": 3}, "newName": "y"},
    ),
    ("textDocument/prepareRename", {"textDocument": {"uri": FUZZ_URI}, "position": {"line": 1, "character": 3}}),
]
_NOTIFICATIONS: list[tuple[str, dict[str, Any]]] = [
    (
        "textDocument/didChange",
        {
            "textDocument": {"uri": FUZZ_URI, "version": 2},
            "contentChanges": [
                {"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}}, "text": "z"}
            ],
        },
    ),
    (
        "textDocument/didChange",
        {"textDocument": {"uri": FUZZ_URI, "version": 3}, "contentChanges": [{"text": "$v = 1\nk = $v\n"}]},
    ),
    ("textDocument/didSave", {"textDocument": {"uri": FUZZ_URI}}),
    ("$/cancelRequest", {"id": 1}),
    ("workspace/didChangeConfiguration", {"settings": {"tusk": {"debounceMs": 0}}}),
]
_ODD_VALUES: list[Any] = [
    -1,
    -(2**31),
    2**31,
    2**63,
    10**30,
    0.5,
    True,
    None,
    "",
    "x" * 5000,
    "\ud800",
    [],
    {},
    [[[]]],
    "file:///dev/zero",
]


def _mutate(value: Any, rng: random.Random) -> Any:
    """The value with one leaf replaced by an odd value, or one key dropped."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        if rng.random() < 0.2:
            return {k: v for k, v in value.items() if k != key}
        return {**value, key: _mutate(value[key], rng)}
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = rng.randrange(len(value))
        return [*value[:i], _mutate(value[i], rng), *value[i + 1 :]]
    return rng.choice(_ODD_VALUES)


def _fuzz_item(rng: random.Random, n: int) -> tuple[bytes, str | None]:
    """Bytes to send, and the request id that must be answered (None: nothing can be expected)."""
    msg_id = f"fuzz-{n}"
    kind = rng.randrange(12)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))), None
    if kind == 1:
        return frame(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))), None
    if kind in (2, 3, 4):
        method, params = rng.choice(_TEMPLATES)
        for _ in range(rng.randrange(1, 4)):
            params = _mutate(params, rng)
        return frame(request(msg_id, method, params)), msg_id
    if kind == 5:
        method, params = rng.choice(_NOTIFICATIONS)
        return frame({"jsonrpc": "2.0", "method": method, "params": _mutate(params, rng)}), None
    if kind == 6:
        envelope = _mutate(request(msg_id, rng.choice(_TEMPLATES)[0], {}), rng)
        answered = isinstance(envelope, dict) and envelope.get("id") == msg_id and "method" in envelope
        return frame(json.dumps(envelope)), msg_id if answered else None
    body = json.dumps(request(msg_id, "textDocument/hover", _TEMPLATES[0][1])).encode()
    headers = [
        b"Content-Length: -%d\r\n\r\n" % len(body),
        b"Content-Length: %d\r\n\r\n" % (len(body) + rng.randrange(1, 5000)),
        b"Content-Length: %d\r\n\r\n" % max(0, len(body) - rng.randrange(1, 20)),
        b"Content-Length: %d\r\n\r\n" % rng.choice([10**12, 2**63, MAX_CONTENT_LENGTH + 1]),
        b"Content-Length: 0x%x\r\n\r\n" % len(body),
        b"Content-Type: application/vscode-jsonrpc\r\n\r\n",
        b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (len(body), len(body) + 1),
        b"Content-Length %d\r\n\r\n" % len(body),
    ]
    if kind == 7:  # well-formed, but written the way lenient clients do: still answered
        header = rng.choice([b"Content-Length:%d\n\n", b"content-length: %d\r\nContent-Length: %d\r\n\r\n"])
        return header.replace(b"%d", b"%d" % len(body)) + body, msg_id
    if kind == 8:
        raw = body.replace(b"fuzz", b"\xff\xfe", 1)
        return frame(raw), None
    return rng.choice(headers) + body, None


def test_fuzz_garbage_interleaved_with_valid_requests() -> None:
    seed = int(os.environ.get("TUSK_LSP_FUZZ_SEED", "1313"))
    rng = random.Random(seed)
    client = RawClient()
    started = time.monotonic()
    try:
        client.initialize()
        client.open(FUZZ_URI, "a = 1\n$v = 2\nb = $v\n")
        slowest = 0.0
        for n in range(400):
            data, expect = _fuzz_item(rng, n)
            client.send(data)
            probe_id = f"probe-{n}"
            sent = time.monotonic()
            probe = (
                hover(probe_id)
                if n % 2
                else request(probe_id, "textDocument/documentSymbol", {"textDocument": {"uri": PROBE_URI}})
            )
            client.send(frame(probe))
            answer = client.answer(probe_id)
            slowest = max(slowest, time.monotonic() - sent)
            assert answer.get("result"), f"seed {seed}, item {n}: {data[:200]!r} -> {answer}"
            if expect is not None:  # responses go out in order: the fuzz request's came first
                assert client.answer(expect, timeout=0.1), f"seed {seed}, item {n}: {data[:200]!r} got no answer"
        assert client.proc.poll() is None
    finally:
        client.close()
    assert time.monotonic() - started < 30
    assert slowest < ANSWER_WITHIN


# --- TCP and the command line --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_tcp_transport_survives_bad_frames_too() -> None:
    port = _free_port()
    server = RawClient(args=("lsp", "--tcp", f"127.0.0.1:{port}"))
    try:
        deadline = time.monotonic() + 60  # the server process is still starting
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline and server.proc.poll() is None, server.log()
                time.sleep(0.05)
        with sock:
            stream = sock.makefile("rwb")
            init = request(1, "initialize", {"capabilities": {}})
            stream.write(b"X" * 100_000 + b"\r\nContent-Length: -1\r\n\r\n" + frame(init))
            stream.flush()
            messages: list[dict[str, Any]] = []
            while not any(m.get("id") == 1 for m in messages):
                header = stream.readline()
                length = int(header.split(b":")[1])
                while stream.readline() not in (b"\r\n", b""):
                    pass
                messages.append(json.loads(stream.read(length)))
            assert "result" in next(m for m in messages if m.get("id") == 1)
    finally:
        server.close()


def tusk(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "import sys; from tusklang.cli import main; sys.exit(main(sys.argv[1:]))", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:0", "127.0.0.1:70000", "host:port"])
def test_a_bad_tcp_address_is_a_usage_error(address: str) -> None:
    done = tusk("lsp", "--tcp", address)
    assert done.returncode == 2
    assert "HOST:PORT" in done.stderr and "Traceback" not in done.stderr


def test_a_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = tusk("lsp", "--tcp", f"127.0.0.1:{port}")
    assert done.returncode == 2
    assert "cannot listen" in done.stderr and "Traceback" not in done.stderr


# --- notifications take effect in the order they were sent -------------------------------------------


def _diagnostics_for(client: RawClient, uri: str, condition: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The first diagnostics published for ``uri`` that satisfy ``condition``."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        try:
            message = client.inbox.get(timeout=max(remaining, 0))
        except queue.Empty:
            raise AssertionError(f"no diagnostics for {uri} as expected; stderr:\n{client.log()[-3000:]}") from None
        params = message.get("params") or {}
        if message.get("method") == "textDocument/publishDiagnostics" and params.get("uri") == uri:
            if condition(params["diagnostics"]):
                return params["diagnostics"]


def test_a_setting_sent_just_before_a_save_applies_to_that_save() -> None:
    """Editors send didChangeConfiguration then didSave back to back; they can reach the server in one read,
    and the save must see the new setting (it once ran with the old one: no directive ran, nothing said)."""
    uri = "file:///tmp/tusk-lsp-robustness-order.tsk"
    client = RawClient()
    try:
        client.initialize()
        client.open(uri, "owner = @env(TUSK_LSP_ORDER_NEVER_SET)\n")
        assert _diagnostics_for(client, uri, lambda found: True) == []  # nothing runs while typing
        settings = {"tusk": {"resolveOnSave": True, "envFile": ""}}
        change = {"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {"settings": settings}}
        save = {"jsonrpc": "2.0", "method": "textDocument/didSave", "params": {"textDocument": {"uri": uri}}}
        client.send(frame(change) + frame(save))  # one write: one read on the server's side
        found = _diagnostics_for(client, uri, bool)
        assert [d["code"] for d in found] == ["TSK223"] and "TUSK_LSP_ORDER_NEVER_SET" in found[0]["message"]
    finally:
        client.close()
