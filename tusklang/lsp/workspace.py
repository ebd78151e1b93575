"""The workspace's `.tsk` files and their indexes.

The file set is found once, on a worker thread and within bounds (files, directories, seconds: a root of
`file:///` must not cost a request anything), then kept current from `workspace/didChangeWatchedFiles`,
open and save events. Indexes of files that are not open are read from disk on the same thread, cached by
modification time, so a request costs a `stat` per file at most. Everything here that touches the disk
runs off the event loop (the server calls it through `run_in_executor`).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from .index import FileIndex, build_index

log = logging.getLogger(__name__)

MAX_FILES = 2000
MAX_DIRECTORIES = 20_000
SCAN_SECONDS = 5.0
MAX_FILE_BYTES = 8 * 1024 * 1024  # a larger file is not indexed from disk (an open one always is)
_SKIP_DIRECTORIES = frozenset({"node_modules", "__pycache__", "venv", "site-packages", "dist", "build", "target"})


def normalise(path: str | os.PathLike[str]) -> str:
    """One spelling per file: absolute, `..` folded, symlinks kept (the editor names files as it opened them)."""
    return os.path.abspath(path)


class WorkspaceFiles:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: set[str] = set()
        self._roots: tuple[str, ...] = ()
        self._cache: dict[str, tuple[int, int, FileIndex]] = {}
        self.complete = True  # False when a bound stopped the scan

    # --- the file set ---------------------------------------------------------------------------

    def set_roots(self, roots: Iterable[str]) -> None:
        with self._lock:
            self._roots = tuple(normalise(root) for root in roots)

    def scan(self) -> None:
        """Find the `.tsk` files under the roots (blocking: run on a thread)."""
        with self._lock:
            roots = self._roots
        found: set[str] = set()
        directories = 0
        deadline = time.monotonic() + SCAN_SECONDS
        complete = True
        for root in roots:
            for dirpath, dirnames, filenames in os.walk(root):
                directories += 1
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRECTORIES)
                found.update(normalise(os.path.join(dirpath, f)) for f in filenames if f.endswith(".tsk"))
                if len(found) >= MAX_FILES or directories >= MAX_DIRECTORIES or time.monotonic() > deadline:
                    complete = False
                    break
            if not complete:
                break
        if not complete:
            log.warning(
                "workspace scan stopped after %d files in %d directories: cross-file features see only those",
                len(found),
                directories,
            )
        with self._lock:
            self._paths |= set(sorted(found)[:MAX_FILES])
            self.complete = complete

    def add(self, path: str) -> None:
        """A file created or saved: one of the workspace's when it is under a workspace folder."""
        path = normalise(path)
        if not path.endswith(".tsk"):
            return
        with self._lock:
            if _under(path, self._roots) and len(self._paths) < MAX_FILES:
                self._paths.add(path)

    def remove(self, path: str) -> None:
        path = normalise(path)
        with self._lock:
            self._paths.discard(path)
            self._cache.pop(path, None)

    def changed(self, path: str) -> None:
        with self._lock:
            self._cache.pop(normalise(path), None)

    def paths(self) -> list[str]:
        with self._lock:
            return sorted(self._paths)

    # --- indexes of files on disk ---------------------------------------------------------------

    def index(self, path: str) -> FileIndex | None:
        """The index of the file on disk (blocking); None when it is not a readable regular text file."""
        path = normalise(path)
        try:
            info = os.stat(path)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
                return None  # a FIFO or device named *.tsk would block the read, and the server with it
            with self._lock:
                cached = self._cache.get(path)
            if cached is not None and cached[0] == info.st_mtime_ns and cached[1] == info.st_size:
                return cached[2]
            with open(path, encoding="utf-8-sig") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        built = build_index(text, path)
        with self._lock:
            self._cache[path] = (info.st_mtime_ns, info.st_size, built)
        return built

    def indexes(self, skip: Iterable[str]) -> list[tuple[str, FileIndex]]:
        """(uri, index) of every workspace file but those in ``skip`` (normalised paths; blocking)."""
        excluded = set(skip)
        out = []
        for path in self.paths():
            if path in excluded:
                continue
            built = self.index(path)
            if built is not None:
                out.append((Path(path).as_uri(), built))
        return out


def _under(path: str, roots: Iterable[str]) -> bool:
    for root in roots:
        try:
            if os.path.commonpath([root, path]) == root:
                return True
        except ValueError:  # another drive
            continue
    return False
