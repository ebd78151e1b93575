"""The lint worker (tusklang/lsp/worker.py): jobs run in a child process, a stale job is cancelled as soon
as a newer one for the same document arrives, and a worker that dies is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable

import pytest

from tusklang.lsp.diagnose import LintJob, LintResult
from tusklang.lsp.worker import Linter

pytestmark = pytest.mark.asyncio

SMALL = "feature_flags = {\n    flags = {\n        f = {\n            enabld = true\n        }\n    }\n}\n"
FLAG = """        flag_{i} = {{
            enabled = true
            rollout_strategy = "percentage"
            rollout_percentage = {pct}
            fallback = false
            metadata = {{
                description = "Flag {i}"
                owner = "team"
            }}
        }}
"""


def big_project(flags: int) -> str:
    body = "".join(FLAG.format(i=i, pct=i % 100) for i in range(flags))
    return "feature_flags = {\n    flags = {\n" + body + "    }\n}\n"


def job(path: str, text: str) -> LintJob:
    return LintJob((path,), {path: text})


async def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("use_process", [True, False])
async def test_a_job_gives_what_tusk_check_gives(use_process: bool) -> None:
    results: list[tuple[str, LintResult]] = []
    linter = Linter(lambda key, _, result: results.append((key, result)), use_process=use_process)
    linter.start()
    try:
        linter.submit("doc", job("/tmp/tusk-worker-small.tsk", SMALL))
        await wait_for(lambda: bool(results))
        assert linter.mode == ("process" if use_process else "thread")
        ((key, result),) = results
        (found,) = result.by_path["/tmp/tusk-worker-small.tsk"]
        assert key == "doc" and found.code == "TSK301" and "did you mean `enabled`" in found.message
        assert result.files == ("/tmp/tusk-worker-small.tsk",)
    finally:
        linter.stop()


async def test_a_stale_job_is_cancelled_not_finished() -> None:
    results: list[tuple[str, LintResult, float]] = []
    linter = Linter(lambda key, _, result: results.append((key, result, time.perf_counter())))
    linter.start()
    try:
        big = big_project(3000)  # about 30,000 lines: a second or more of linting
        linter.submit("warm", job("/tmp/tusk-worker-warm.tsk", SMALL))
        await wait_for(lambda: bool(results))
        timed = time.perf_counter()
        linter.submit("solo", job("/tmp/tusk-worker-solo.tsk", big))
        await wait_for(lambda: len(results) == 2)
        whole = results[-1][2] - timed  # one big job, start to end, nothing cancelled
        started = time.perf_counter()
        linter.submit("doc", job("/tmp/tusk-worker-big.tsk", big))
        await asyncio.sleep(min(0.3, whole / 3))
        linter.submit("doc", job("/tmp/tusk-worker-big.tsk", SMALL))  # the user kept typing
        await wait_for(lambda: len(results) == 3)
        key, result, finished = results[-1]
        assert key == "doc" and linter.cancelled == 1
        assert [d.code for d in result.by_path["/tmp/tusk-worker-big.tsk"]] == ["TSK301"]  # the newest text's
        assert finished - started < whole, (finished - started, whole)  # the stale job did not run to its end
    finally:
        linter.stop()


async def test_a_worker_that_dies_is_replaced() -> None:
    results: list[str] = []
    linter = Linter(lambda key, _, result: results.append(key))
    linter.start()
    try:
        linter.submit("first", job("/tmp/tusk-worker-1.tsk", SMALL))
        await wait_for(lambda: results == ["first"])
        backend = linter._backend
        assert backend is not None and hasattr(backend, "proc")
        os.kill(backend.proc.pid, signal.SIGKILL)
        await wait_for(lambda: linter._backend is not backend)
        linter.submit("second", job("/tmp/tusk-worker-2.tsk", SMALL))
        await wait_for(lambda: results == ["first", "second"])
        assert linter.mode == "process"
    finally:
        linter.stop()
