"""The queued access log (`tusk serve`): every line written once, in order, as the unqueued log writes it."""

from __future__ import annotations

import json
import logging
import threading

from tusklang.serve.accesslog import AccessLog, encode_line


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


def _logger(name: str) -> tuple[logging.Logger, _Lines]:
    logger = logging.getLogger(f"tusklang.test.{name}")
    logger.handlers[:] = []
    handler = _Lines()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, handler


def test_no_line_is_lost_while_the_thread_writes_batches() -> None:
    logger, handler = _logger("race")
    log = AccessLog(logger, queued=True, interval=0.0005)  # flushes all the time, while lines arrive
    writers = []
    for w in range(2):

        def write(w: int = w) -> None:
            for i in range(10_000):
                log.record("POST", f"/ofrep/v1/evaluate/flags/f{w}", 200, 0.001, {"n": i})

        writers.append(threading.Thread(target=write))
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    log.close()
    lines = [json.loads(line) for batch in handler.records for line in batch.split("\n")]
    assert len(lines) == 20_000
    for w in range(2):  # each writer's lines, once each and in its order
        assert [line["n"] for line in lines if line["path"].endswith(f"f{w}")] == list(range(10_000))
    assert len(handler.records) > 1  # written in batches, not at close only


def test_a_queued_line_is_the_unqueued_line() -> None:
    cases = [
        ("POST", "/ofrep/v1/evaluate/flags/a", 200, 0.0012345, {"flag": "a", "reason": "SPLIT", "context_keys": ["x"]}),
        ("POST", "/ofrep/v1/evaluate/flags/\udcff", 404, 0.5, {}),  # a lone surrogate: the json module's line
        ("GET", "/metrics", 200, 0.0, {"big": 2**70}),  # beyond orjson's integers
    ]
    logger, handler = _logger("same")
    queued = AccessLog(logger, queued=True, interval=60)
    for case in cases:
        queued.record(*case)
    queued.close()
    assert handler.records == ["\n".join(encode_line(*case).decode() for case in cases)]
    plain_logger, plain = _logger("plain")
    unqueued = AccessLog(plain_logger)
    for case in cases:
        unqueued.record(*case)
    assert plain.records == [encode_line(*case).decode() for case in cases]
    assert json.loads(plain.records[1])["path"] == "/ofrep/v1/evaluate/flags/\udcff"  # escaped: still JSON
    assert json.loads(plain.records[2])["big"] == 2**70
    assert [json.loads(line)["latency_ms"] for line in plain.records] == [1.235, 500.0, 0.0]


def test_nothing_is_formatted_when_the_access_log_is_off() -> None:
    logger, handler = _logger("quiet")
    logger.setLevel(logging.WARNING)  # tusk serve --quiet
    log = AccessLog(logger, queued=True, interval=60)
    log.record("POST", "/x", 200, 0.1, {"flag": "a"})
    log.close()
    assert handler.records == []
