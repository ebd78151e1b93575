"""Open documents and their indexes: built on a thread, once per version, and used before they are current.

Building the index (the recovered syntax tree, its symbols, keys and references) of a 20,000-line file is a
few hundred milliseconds of pure Python. A request does not wait for it: it is answered from the newest
index there is, positions mapped through the edits since (positions.py), unless it asks about text edited
since. A small document is indexed after every edit; a big one once the user pauses for as long as its
last index took, so building does not compete with the requests it would serve.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types

from .._gc import gc_paused
from . import outline
from .index import FileIndex, build_index
from .positions import Change, Mapper
from .workspace import normalise

log = logging.getLogger(__name__)

BUILD_AT_ONCE = 0.05  # seconds: a document whose index takes less is indexed after every edit
MAX_MAPPED_EDITS = 32  # edits since the last index before the next is built without waiting for a pause

Built = tuple[int | None, FileIndex]  # (the document version it was built from, the index)


def file_path(uri: str) -> str | None:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else None


def path_of(uri: str) -> str:
    """The file path of a document (the URI itself for one that is not a file, e.g. `untitled:`)."""
    path = file_path(uri)
    return normalise(path) if path is not None else uri


class DocumentClosed(LookupError):
    """The client closed the document while a request about it was waiting."""


class Documents:
    def __init__(self, workspace: Callable[[], Any]) -> None:
        self._workspace = workspace  # the pygls workspace, once the server has one
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tusk-lsp-index")
        self.indexes: dict[str, Built] = {}
        self.building: dict[str, asyncio.Future[Built]] = {}
        self.build_cost: dict[str, float] = {}  # seconds the last index of a document took
        self.build_timers: dict[str, asyncio.TimerHandle] = {}
        # uri -> the edits since its newest index: (version they made, the change; None for a whole-text one)
        self.edits: dict[str, list[tuple[int | None, Change | None]]] = {}

    # --- what is open -----------------------------------------------------------------------------

    def uris(self) -> list[str]:
        return list(self._workspace().text_documents)

    def is_open(self, uri: str) -> bool:
        return uri in self._workspace().text_documents

    def paths(self) -> dict[str, str]:
        """path -> URI of every open document."""
        return {path_of(uri): uri for uri in self.uris()}

    def get(self, uri: str) -> Any:
        """An open document. Never pygls' `get_text_document` of a closed one: that reads the URI's path
        from disk (a FIFO or /dev/zero would stall the server), so a document closed while a request
        about it waited is DocumentClosed."""
        workspace = self._workspace()
        if uri not in workspace.text_documents:
            raise DocumentClosed(uri)
        return workspace.get_text_document(uri)

    def changed(self, uri: str, version: int | None, changes: Sequence[Any]) -> None:
        self.edits.setdefault(uri, []).extend((version, Change.of(change)) for change in changes)

    def closed(self, uri: str) -> None:
        for table in (self.indexes, self.building, self.edits, self.build_cost):
            table.pop(uri, None)
        timer = self.build_timers.pop(uri, None)
        if timer is not None:
            timer.cancel()

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    # --- indexes ----------------------------------------------------------------------------------

    async def index(self, uri: str) -> FileIndex:
        """The index of the document as it is now."""
        wanted = self.get(uri).version
        while True:
            cached = self.indexes.get(uri)
            if cached is not None and _at_least(cached[0], wanted):
                return cached[1]
            version, built = await asyncio.shield(self.build_now(uri))
            if _at_least(version, wanted):
                return built

    async def view(self, uri: str, *positions: types.Position, wait: bool = True) -> tuple[FileIndex, Mapper]:
        """The newest index there is and the way from its text to the current one, as long as none of
        ``positions`` lies in text edited since (with ``wait=False``: whatever they are); else the index
        of the current text, once built."""
        cached = self.indexes.get(uri)
        current = self.get(uri).version
        if cached is not None and cached[0] is not None and cached[0] != current:
            mapper = self.mapper(uri, cached[0])
            if mapper is not None and (not wait or all(mapper.to_old(p) is not None for p in positions)):
                self.build_soon(uri, postpone=False)
                return cached[1], mapper
        return await self.index(uri), Mapper(())

    def mapper(self, uri: str, since: int) -> Mapper | None:
        changes = []
        for version, change in self.edits.get(uri, ()):
            if version is None or version <= since:
                continue
            if change is None:
                return None
            changes.append(change)
        return Mapper(changes)

    async def outline(self, index: FileIndex) -> outline.Outline:
        """The index's outline, built on the index thread once: it is most of a documentSymbol's work."""
        if index.outline is None:
            index.outline = await asyncio.get_running_loop().run_in_executor(self.pool, _outline, index)
        return index.outline

    def build_soon(self, uri: str, *, postpone: bool = True) -> None:
        """Index the current text once the user pauses for as long as the last build took; a small
        document (or many edits piled up, which make each mapping slower) at once."""
        cost = self.build_cost.get(uri, 0.0)
        if cost < BUILD_AT_ONCE or len(self.edits.get(uri, ())) >= MAX_MAPPED_EDITS:
            self.build_now(uri)
            return
        timer = self.build_timers.get(uri)
        if timer is not None:
            if not postpone:
                return
            timer.cancel()
        self.build_timers[uri] = asyncio.get_running_loop().call_later(cost, self.build_now, uri)

    def build_now(self, uri: str) -> asyncio.Future[Built]:
        """The build in flight for ``uri``, or a new one of its current text: at most one at a time per
        document, so typing fast into a big file never queues up builds of texts that are already gone."""
        timer = self.build_timers.pop(uri, None)
        if timer is not None:
            timer.cancel()
        building = self.building.get(uri)
        if building is not None and not building.done():
            # A finished build whose done-callback has not run yet must not be handed out again: awaiting
            # a done future never yields, so `index()` would spin on its old version forever.
            return building
        document = self.get(uri)
        version = document.version
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Built] = loop.run_in_executor(self.pool, _build, version, document.source, path_of(uri))
        self.building[uri] = future
        started = loop.time()

        def done(fut: asyncio.Future[Built]) -> None:
            if self.building.get(uri) is fut:
                del self.building[uri]
            if fut.cancelled() or fut.exception() is not None:
                if not fut.cancelled():
                    log.error("indexing %s failed", uri, exc_info=fut.exception())
                return
            if not self.is_open(uri):
                return
            self.build_cost[uri] = loop.time() - started
            self.indexes[uri] = fut.result()
            self.edits[uri] = [e for e in self.edits.get(uri, ()) if e[0] is None or e[0] > (version or 0)]
            if self.get(uri).version != version:
                self.build_soon(uri)  # edited while building

        future.add_done_callback(done)
        return future


def _build(version: int | None, text: str, path: str) -> Built:
    with gc_paused():
        index = build_index(text, path)
    # The index lives until the next one replaces it, and is freed then by reference counting (it holds no
    # cycle). Left to the collector, its million objects would be walked by each full collection: pauses
    # of 300 ms on a 20,000-line file, measured, on whichever thread triggers them (often the event
    # loop's). Frozen, no collection walks it; the server sweeps what a freeze may have caught when idle.
    gc.freeze()
    return version, index


def _outline(index: FileIndex) -> outline.Outline:
    with gc_paused():
        symbols = outline.document_symbols(index)
    gc.freeze()  # long-lived with its index: see _build
    return symbols


def _at_least(version: int | None, wanted: int | None) -> bool:
    return wanted is None or (version is not None and version >= wanted)
