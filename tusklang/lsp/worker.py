"""Linting off the event loop: a child process runs `diagnose`, one job at a time, and stale jobs are cancelled.

Why a process and not a thread: linting a 20,000-line project takes about a second of pure Python. On a
thread it would hold the GIL in 5 ms slices for that whole second and every request would compete with it;
in a process the event loop never waits on it, and on a multi-core machine both run at once.

Why cancellation: every keystroke makes the running job stale. As rust-analyzer and pyright do, stale work
is abandoned rather than finished: the parent sends the child SIGUSR1, whose handler raises `Cancelled`
(a BaseException, so no `except Exception` in the pipeline swallows it) at the next bytecode boundary, and
the newest job starts right away. The child raises only while a job runs, and the parent sends the next
job only after the previous one reported back, so a late signal can never cancel the wrong job.

The parent keeps the queue (`Linter`): at most one job running, at most one waiting per key (the newest),
the most recently submitted first. A result that is stale when it arrives is dropped. If the child cannot
be started (or keeps dying) the jobs run on a thread instead, without cancellation.

Wire format, both ways: an 8-byte big-endian length, then a pickle. Parent to child: (job_id, LintJob).
Child to parent: ("ready",), ("done", job_id, LintResult), ("cancelled", job_id) or ("failed", job_id, text).
The two ends are this module's two halves, in one process tree: pickle is safe here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from .diagnose import LintJob, LintResult, diagnose, warm_up

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">Q")
_CANCEL_SIGNAL = getattr(signal, "SIGUSR1", None)
_MAX_RESTARTS = 5  # within _RESTART_WINDOW seconds; after that, jobs run on a thread
_RESTART_WINDOW = 60.0

ResultCallback = Callable[[str, LintJob, LintResult], None]


class Cancelled(BaseException):
    """The job was superseded; raised inside it by the signal handler."""


# --- framing -------------------------------------------------------------------------------------------


def write_message(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def read_message(stream: IO[bytes]) -> Any | None:
    """The next message, or None at end of input (or on a torn frame: the other end died)."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (length,) = _HEADER.unpack(header)
    data = stream.read(length)
    if len(data) < length:
        return None
    return pickle.loads(data)


# --- the child -----------------------------------------------------------------------------------------


class _State:
    running = False


def _on_cancel(signum: int, frame: Any) -> None:
    if _State.running:
        _State.running = False
        raise Cancelled


def child_main() -> None:
    """`python -m tusklang.lsp.worker`: serve jobs on stdin/stdout until stdin closes."""
    channel_out = os.fdopen(os.dup(1), "wb")
    channel_in = os.fdopen(os.dup(0), "rb")
    os.dup2(2, 1)  # a stray print must not corrupt the channel
    logging.basicConfig(level=logging.WARNING, format="tusk-lsp worker: %(levelname)s %(message)s")
    if _CANCEL_SIGNAL is not None:
        signal.signal(_CANCEL_SIGNAL, _on_cancel)
    warm_up()
    gc.freeze()  # modules, schema models and parser tables: no collection needs to walk them again
    write_message(channel_out, ("ready",))
    while True:
        message = read_message(channel_in)
        if message is None:
            return
        job_id, job = message
        write_message(channel_out, _run(job_id, job))


def _run(job_id: int, job: LintJob) -> tuple[Any, ...]:
    try:
        try:
            _State.running = True
            result = diagnose(job)
            _State.running = False
            return ("done", job_id, result)
        except Exception as exc:  # a bug: reported to the parent, which logs it; the worker goes on
            _State.running = False
            log.exception("lint job failed")
            return ("failed", job_id, f"{type(exc).__name__}: {exc}")
    except Cancelled:
        _State.running = False
        return ("cancelled", job_id)


# --- the parent ----------------------------------------------------------------------------------------


class _Process:
    """The child process, its reader and writer threads."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_message: Callable[[Any], None]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tusklang.lsp.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        self.outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._loop = loop
        self._on_message = on_message
        threading.Thread(target=self._read, name="tusk-lsp-worker-reader", daemon=True).start()
        threading.Thread(target=self._write, name="tusk-lsp-worker-writer", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            try:
                message = read_message(self.proc.stdout)
            except Exception:  # a torn pickle: the child died mid-write
                message = None
            try:
                self._loop.call_soon_threadsafe(self._on_message, message if message is not None else ("exit", self))
            except RuntimeError:  # the loop is closed: the server is exiting
                return
            if message is None:
                return

    def _write(self) -> None:
        assert self.proc.stdin is not None
        while True:
            message = self.outbox.get()
            if message is None:
                break
            try:
                write_message(self.proc.stdin, message)
            except (OSError, ValueError):  # the child is gone; the reader reports it
                return
        try:
            self.proc.stdin.close()  # end of input: the child exits after its current job
        except OSError:
            pass

    def send(self, message: Any) -> None:
        self.outbox.put(message)

    def cancel(self) -> None:
        if _CANCEL_SIGNAL is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, _CANCEL_SIGNAL)
            except OSError:
                pass

    def stop(self) -> None:
        self.outbox.put(None)
        try:
            self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class _Thread:
    """The fallback: jobs on one thread in this process (no cancellation: stale results are dropped)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_message: Callable[[Any], None]) -> None:
        self._loop = loop
        self._on_message = on_message
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tusk-lsp-lint")
        loop.call_soon(on_message, ("ready",))

    def send(self, message: Any) -> None:
        job_id, job = message
        future = self._executor.submit(_run, job_id, job)
        future.add_done_callback(lambda done: self._loop.call_soon_threadsafe(self._on_message, done.result()))

    def cancel(self) -> None:
        pass

    def stop(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class Linter:
    """The job queue in front of the worker. Call from the event loop thread only."""

    def __init__(self, on_result: ResultCallback, *, use_process: bool = True) -> None:
        self._on_result = on_result
        self._use_process = use_process
        self._backend: _Process | _Thread | None = None
        self._ready = False
        self._pending: dict[str, LintJob] = {}
        self._running: tuple[int, str, LintJob] | None = None
        self._next_id = 0
        self._restarts: list[float] = []
        self._stopped = False
        self.completed = 0  # jobs finished (for tests and the benchmark)
        self.cancelled = 0

    @property
    def mode(self) -> str:
        return "process" if isinstance(self._backend, _Process) else "thread"

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._ready = False
        if self._use_process:
            try:
                self._backend = _Process(loop, self._on_message)
                return
            except OSError as exc:
                log.warning("cannot start the lint worker process (%s); linting on a thread", exc)
                self._use_process = False
        self._backend = _Thread(loop, self._on_message)

    def submit(self, key: str, job: LintJob) -> None:
        """Lint ``job`` for ``key`` (a document URI), replacing any waiting or running job for the same key."""
        if self._stopped:
            return
        self._pending.pop(key, None)
        self._pending[key] = job  # last in, first out: the document just edited comes first
        if self._running is not None and self._running[1] == key:
            self.cancelled += 1
            assert self._backend is not None
            self._backend.cancel()
        self._pump()

    def forget(self, key: str) -> None:
        """The document was closed: drop its waiting job and stop its running one."""
        self._pending.pop(key, None)
        if self._running is not None and self._running[1] == key and self._backend is not None:
            self._backend.cancel()

    def busy(self) -> bool:
        return self._running is not None or bool(self._pending)

    def stop(self) -> None:
        self._stopped = True
        self._pending.clear()
        if self._backend is not None:
            self._backend.stop()

    def _pump(self) -> None:
        if self._running is not None or not self._pending or not self._ready or self._backend is None:
            return
        key = next(reversed(self._pending))
        job = self._pending.pop(key)
        self._next_id += 1
        self._running = (self._next_id, key, job)
        self._backend.send((self._next_id, job))

    def _on_message(self, message: Any) -> None:
        kind = message[0]
        if kind == "ready":
            self._ready = True
        elif kind == "exit":
            self._on_exit(message[1])
        elif self._running is not None and message[1] == self._running[0]:
            _, key, job = self._running
            self._running = None
            if kind == "done":
                self.completed += 1
                if key not in self._pending:  # else a newer job for the same document is waiting
                    self._on_result(key, job, message[2])
            elif kind == "failed":
                log.error("linting %s failed: %s", key, message[2])
        self._pump()

    def _on_exit(self, backend: _Process) -> None:
        if backend is not self._backend or self._stopped:
            return
        log.error("the lint worker process exited (code %s); restarting it", backend.proc.poll())
        if self._running is not None:  # not run again: if it killed the worker, it would again
            log.error("the job for %s was lost; the next edit lints it again", self._running[1])
            self._running = None
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < _RESTART_WINDOW] + [now]
        if len(self._restarts) > _MAX_RESTARTS:
            log.error("the lint worker keeps exiting; linting on a thread from now on")
            self._use_process = False
        self.start()


if __name__ == "__main__":
    child_main()
